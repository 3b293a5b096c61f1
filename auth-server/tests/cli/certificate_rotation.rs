//! Certificate maintenance from the command line: `client update --add-cert/--remove-cert` and
//! `client rotate-secret` on certificate clients, what they refuse without changing anything,
//! and a rotation while the token service serves the client on its mutual-TLS listener.

use reqwest::StatusCode;
use serde_json::Value;

use crate::certificate_clients::{cert, create, thumbprints};
use crate::support::{Backend, spawn_auth_server, spawn_auth_server_with_mtls};
use crate::{audit_actions, cli, failure_line, json_of, write_file};

on_both_backends!(
    certificate_maintenance_refusals_are_one_line_and_change_nothing,
    a_self_signed_client_rotates_its_certificate_from_the_cli_while_the_server_runs,
);

async fn certificate_maintenance_refusals_are_one_line_and_change_nothing(backend: Backend) {
    let Some(app) = spawn_auth_server(backend).await else {
        return;
    };
    let a = cert("acme-2026");
    let a_pem = write_file(&app, "a.pem", &a.cert_pem);
    let created = json_of(&create(
        &app,
        &[
            "--auth-method",
            "self_signed_tls_client_auth",
            "--cert-file",
            &a_pem,
            "--json",
        ],
    ));
    let id = created["client_id"].as_str().unwrap().to_owned();
    let id = id.as_str();
    let a_thumbprint = a.x5t_s256();
    let with_key = write_file(&app, "with-key.pem", &a.identity_pem());
    let two_certs = write_file(
        &app,
        "two.pem",
        &format!("{}{}", cert("x").cert_pem, cert("y").cert_pem),
    );
    let tls = json_of(&create(
        &app,
        &[
            "--auth-method",
            "tls_client_auth",
            "--tls-san",
            "client.example",
            "--json",
        ],
    ));
    let tls_id = tls["client_id"].as_str().unwrap();

    let refused = |args: &[&str], expected: &str| {
        let line = failure_line(&cli(&app, args));
        assert!(
            line.starts_with("error: ") && line.contains(expected),
            "{args:?}: {line}"
        );
    };
    refused(
        &["client", "rotate-secret", id],
        "holds no secret: rotate its certificates (--add-cert, --remove-cert)",
    );
    refused(
        &["client", "update", id, "--remove-cert", &a_thumbprint],
        "this is the client's last certificate",
    );
    refused(
        &["client", "update", id, "--add-cert", &a_pem],
        "this certificate is registered for the client already",
    );
    refused(
        &["client", "update", id, "--add-cert", &with_key],
        "holds a private key",
    );
    refused(
        &["client", "update", id, "--add-cert", &two_certs],
        "exactly one certificate",
    );
    refused(
        &[
            "client",
            "update",
            id,
            "--remove-cert",
            "not-a-registered-thumbprint",
        ],
        "the client has no certificate with thumbprint not-a-registered-thumbprint",
    );
    refused(
        &["client", "update", id, "--tls-subject", "CN=x"],
        "--tls-subject and --tls-san are for tls_client_auth clients; this one uses \
         self_signed_tls_client_auth",
    );
    refused(
        &["client", "update", tls_id, "--add-cert", &a_pem],
        "--add-cert is for self_signed_tls_client_auth clients; this one uses tls_client_auth",
    );
    refused(
        &[
            "client",
            "update",
            tls_id,
            "--tls-subject",
            "CN=x",
            "--tls-san",
            "y",
        ],
        "cannot be used with",
    );
    refused(
        &["client", "rotate-secret", tls_id],
        "holds no secret: rotate its certificates",
    );
    // A refused certificate change refuses the whole update: nothing else changes with it.
    let spare = write_file(&app, "spare.pem", &cert("acme-spare").cert_pem);
    refused(
        &[
            "client",
            "update",
            id,
            "--scopes",
            "orders:read orders:write",
            "--add-cert",
            &a_pem,
        ],
        "this certificate is registered for the client already",
    );
    refused(
        &[
            "client",
            "update",
            id,
            "--name",
            "Renamed",
            "--add-cert",
            &with_key,
        ],
        "holds a private key",
    );
    refused(
        &[
            "client",
            "update",
            id,
            "--name",
            "Renamed",
            "--remove-cert",
            "unknown",
        ],
        "the client has no certificate with thumbprint unknown",
    );
    refused(
        &[
            "client",
            "update",
            id,
            "--add-cert",
            &spare,
            "--remove-cert",
            "unknown",
        ],
        "the client has no certificate with thumbprint unknown",
    );
    refused(
        &[
            "client",
            "update",
            tls_id,
            "--tls-san",
            "other.example",
            "--add-cert",
            &spare,
        ],
        "--add-cert is for self_signed_tls_client_auth clients",
    );
    let unchanged = json_of(&cli(&app, &["client", "show", id, "--json"]));
    assert_eq!(
        (&unchanged["name"], &unchanged["scopes"]),
        (&created["name"], &created["scopes"])
    );
    assert_eq!(thumbprints(&unchanged), [a_thumbprint.as_str()]);
    let unchanged = json_of(&cli(&app, &["client", "show", tls_id, "--json"]));
    assert_eq!(unchanged["tls_san"], "client.example");

    // Up to the limit, then refused.
    let mut held = vec![a_thumbprint.clone()];
    for i in 1..4 {
        let next = cert(&format!("acme-{i}"));
        let path = write_file(&app, &format!("{i}.pem"), &next.cert_pem);
        let shown = json_of(&cli(
            &app,
            &["client", "update", id, "--add-cert", &path, "--json"],
        ));
        held.push(next.x5t_s256());
        assert_eq!(thumbprints(&shown).len(), held.len(), "{shown}");
    }
    let fifth = write_file(&app, "5.pem", &cert("acme-5").cert_pem);
    refused(
        &["client", "update", id, "--add-cert", &fifth],
        "a client holds at most 4 certificates: remove one first",
    );

    let shown = json_of(&cli(&app, &["client", "show", id, "--json"]));
    let mut listed = thumbprints(&shown);
    listed.sort_unstable();
    held.sort_unstable();
    assert_eq!(listed, held, "only the accepted additions were made");
    assert_eq!(
        audit_actions(&app, id).await,
        [
            "client.cert_add",
            "client.cert_add",
            "client.cert_add",
            "client.create"
        ],
        "refusals leave no trace but their absence"
    );
    assert_eq!(audit_actions(&app, tls_id).await, ["client.create"]);
    app.stop().await;
}

/// The claims of a JWT, unverified.
fn claims_of(token: &str) -> Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

async fn a_self_signed_client_rotates_its_certificate_from_the_cli_while_the_server_runs(
    backend: Backend,
) {
    let Some(sys) = spawn_auth_server_with_mtls(backend).await else {
        return;
    };
    let app = &sys.auth;
    let (a, b, c) = (cert("acme-2026"), cert("acme-2027"), cert("acme-2028"));
    let a_pem = write_file(app, "a.pem", &a.cert_pem);
    let b_pem = write_file(app, "b.pem", &b.cert_pem);
    let c_pem = write_file(app, "c.pem", &c.cert_pem);
    let created = json_of(&create(
        app,
        &[
            "--auth-method",
            "self_signed_tls_client_auth",
            "--cert-file",
            &a_pem,
            "--json",
        ],
    ));
    let id = created["client_id"].as_str().unwrap().to_owned();
    let id = id.as_str();
    // The new client gets a token bound to its certificate at the mutual-TLS listener.
    let response = sys.token(&a, id).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    let claims = claims_of(body["access_token"].as_str().unwrap());
    assert_eq!(claims["cnf"]["x5t#S256"], a.x5t_s256());
    assert_eq!(sys.token(&b, id).await.status(), StatusCode::UNAUTHORIZED);

    // The successor is added: both work, so the partner can switch when it likes.
    let added = json_of(&cli(
        app,
        &["client", "update", id, "--add-cert", &b_pem, "--json"],
    ));
    let mut listed = thumbprints(&added);
    listed.sort_unstable();
    let mut both = [a.x5t_s256(), b.x5t_s256()];
    both.sort_unstable();
    assert_eq!(listed, both);
    app.sync_clients().await;
    for leaf in [&a, &b] {
        let response = sys.token(leaf, id).await;
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        let claims = claims_of(body["access_token"].as_str().unwrap());
        assert_eq!(claims["cnf"]["x5t#S256"], leaf.x5t_s256());
    }

    // The old one is withdrawn: refused from then on.
    let removed = json_of(&cli(
        app,
        &[
            "client",
            "update",
            id,
            "--remove-cert",
            &a.x5t_s256(),
            "--json",
        ],
    ));
    assert_eq!(thumbprints(&removed), [b.x5t_s256()]);
    app.sync_clients().await;
    assert_eq!(sys.token(&a, id).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(sys.token(&b, id).await.status(), StatusCode::OK);

    // Both halves in one command: added before removed, so the client is never left without.
    let swapped = json_of(&cli(
        app,
        &[
            "client",
            "update",
            id,
            "--add-cert",
            &c_pem,
            "--remove-cert",
            &b.x5t_s256(),
            "--json",
        ],
    ));
    assert_eq!(thumbprints(&swapped), [c.x5t_s256()]);
    app.sync_clients().await;
    assert_eq!(sys.token(&c, id).await.status(), StatusCode::OK);
    assert_eq!(sys.token(&b, id).await.status(), StatusCode::UNAUTHORIZED);

    // The trail names each certificate by its thumbprint, in order.
    app.state.audit.flush().await;
    let trail = json_of(&cli(app, &["audit", "--client", id, "--json"]));
    let changes: Vec<(String, String)> = trail
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"].as_str().unwrap().starts_with("client.cert_"))
        .map(|e| {
            let detail: Value = serde_json::from_str(e["detail"].as_str().unwrap()).unwrap();
            (
                e["action"].as_str().unwrap().to_owned(),
                detail["thumbprint"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        changes,
        [
            ("client.cert_remove".to_owned(), b.x5t_s256()),
            ("client.cert_add".to_owned(), c.x5t_s256()),
            ("client.cert_remove".to_owned(), a.x5t_s256()),
            ("client.cert_add".to_owned(), b.x5t_s256()),
        ]
    );
    let raw = trail.to_string();
    for leaf in [&a, &b, &c] {
        for pem in [&leaf.cert_pem, &leaf.key_pem] {
            assert!(!raw.contains(pem.lines().nth(1).unwrap()), "{raw}");
        }
    }
    sys.auth.stop().await;
}

/// Thumbprints are base64url, so one in 64 begins with `-`: `--remove-cert` takes it as a value,
/// not as an unknown option (a random thumbprint failed this way once in CI).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thumbprint_beginning_with_a_hyphen_is_removed_like_any_other() {
    let Some(app) = spawn_auth_server(Backend::Sqlite).await else {
        return;
    };
    let hyphen = (0..10_000)
        .map(|i| cert(&format!("acme-{i}")))
        .find(|leaf| leaf.x5t_s256().starts_with('-'))
        .expect("one in 64 thumbprints begins with '-'");
    let other = cert("acme-next");
    let first = write_file(&app, "hyphen.pem", &hyphen.cert_pem);
    let second = write_file(&app, "next.pem", &other.cert_pem);
    let created = json_of(&create(
        &app,
        &[
            "--auth-method",
            "self_signed_tls_client_auth",
            "--cert-file",
            &first,
            "--cert-file",
            &second,
            "--json",
        ],
    ));
    let id = created["client_id"].as_str().unwrap();
    let thumbprint = hyphen.x5t_s256();
    let updated = json_of(&cli(
        &app,
        &[
            "client",
            "update",
            id,
            "--remove-cert",
            &thumbprint,
            "--json",
        ],
    ));
    assert_eq!(thumbprints(&updated), vec![other.x5t_s256().as_str()]);
}
