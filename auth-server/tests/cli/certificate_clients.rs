//! Certificate clients enrolled from the command line: `tls_client_auth` by subject DN or SAN,
//! `self_signed_tls_client_auth` by its certificates; what `client create` and `client show`
//! print for them and what they refuse. Their rotation is in `certificate_rotation`.

use serde_json::Value;
use test_support::pki::{Leaf, Subject, self_signed};

use crate::support::{Backend, TestAuth, spawn_auth_server};
use crate::{audit_actions, cli, client_count, failure_line, json_of, write_file};

on_both_backends!(
    a_self_signed_client_is_enrolled_with_its_certificate_and_shown_without_a_secret,
    a_tls_client_auth_client_is_enrolled_by_subject_dn_or_by_san,
    certificate_enrolment_refusals_are_one_line_and_create_nothing,
);

pub(crate) const CREATE: [&str; 8] = [
    "client",
    "create",
    "--name",
    "Acme ERP",
    "--partner",
    "acme",
    "--scopes",
    "orders:read",
];

/// `client create` for the standard test client, with `more` arguments.
pub(crate) fn create(app: &TestAuth, more: &[&str]) -> std::process::Output {
    let args: Vec<&str> = CREATE.iter().chain(more).copied().collect();
    cli(app, &args)
}

/// A self-signed client certificate, valid now.
pub(crate) fn cert(common_name: &str) -> Leaf {
    self_signed(&Subject::cn(common_name), false)
}

/// The thumbprints of the certificates `client show` (or `create`, `update`) lists.
pub(crate) fn thumbprints(shown: &Value) -> Vec<&str> {
    shown["certs"]
        .as_array()
        .expect("a certs array")
        .iter()
        .map(|c| c["thumbprint"].as_str().unwrap())
        .collect()
}

async fn a_self_signed_client_is_enrolled_with_its_certificate_and_shown_without_a_secret(
    backend: Backend,
) {
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
    assert_eq!(created["auth_method"], "self_signed_tls_client_auth");
    assert_eq!(thumbprints(&created), [a.x5t_s256()]);
    assert_eq!(created["certs"][0]["subject"], "CN=acme-2026");
    assert!(created["certs"][0]["not_after"].is_i64(), "{created}");
    assert!(
        created.get("client_secret").is_none(),
        "a certificate client holds no secret: {created}"
    );
    assert_eq!(created["keys"], serde_json::json!([]));
    let id = created["client_id"].as_str().unwrap();

    let shown = json_of(&cli(&app, &["client", "show", id, "--json"]));
    assert_eq!(shown["auth_method"], "self_signed_tls_client_auth");
    assert_eq!(shown["certs"], created["certs"]);
    assert!(shown.get("client_secret").is_none());

    // The human forms: the thumbprint to compare with the partner's, never a secret or a key.
    let b = cert("acme-2027");
    let b_pem = write_file(&app, "b.pem", &b.cert_pem);
    let output = create(
        &app,
        &[
            "--auth-method",
            "self_signed_tls_client_auth",
            "--cert-file",
            &b_pem,
        ],
    );
    assert!(output.status.success(), "{output:?}");
    let text = String::from_utf8(output.stdout).unwrap();
    let shown_text = String::from_utf8(cli(&app, &["client", "show", id]).stdout).unwrap();
    for (text, leaf) in [(&text, &b), (&shown_text, &a)] {
        assert!(text.contains(&leaf.x5t_s256()), "{text}");
        assert!(text.contains("CERTIFICATE (x5t#S256)"), "{text}");
        assert!(
            text.contains("auth method: self_signed_tls_client_auth"),
            "{text}"
        );
        assert!(!text.contains("client_secret") && !text.contains("shown only once"));
        assert!(!text.contains("PRIVATE KEY"), "{text}");
        // Neither the certificate's body nor its key's: a thumbprint identifies it.
        for pem in [&leaf.cert_pem, &leaf.key_pem] {
            let body = pem.lines().nth(1).unwrap();
            assert!(!text.contains(body), "{text}");
        }
    }

    // Several --cert-file, one certificate each, all registered.
    let (c, d) = (cert("globex-1"), cert("globex-2"));
    let c_pem = write_file(&app, "c.pem", &c.cert_pem);
    let d_pem = write_file(&app, "d.pem", &d.cert_pem);
    let two = json_of(&create(
        &app,
        &[
            "--auth-method",
            "self_signed_tls_client_auth",
            "--cert-file",
            &c_pem,
            "--cert-file",
            &d_pem,
            "--json",
        ],
    ));
    let mut listed = thumbprints(&two);
    listed.sort_unstable();
    let mut expected = [c.x5t_s256(), d.x5t_s256()];
    expected.sort_unstable();
    assert_eq!(listed, expected);
    assert_eq!(client_count(&app), 3);
    app.stop().await;
}

async fn a_tls_client_auth_client_is_enrolled_by_subject_dn_or_by_san(backend: Backend) {
    let Some(app) = spawn_auth_server(backend).await else {
        return;
    };
    let by_dn = json_of(&create(
        &app,
        &[
            "--auth-method",
            "tls_client_auth",
            "--tls-subject",
            "CN=x,O=y",
            "--json",
        ],
    ));
    assert_eq!(by_dn["auth_method"], "tls_client_auth");
    assert_eq!(by_dn["tls_subject"], "CN=x,O=y");
    assert_eq!(by_dn["tls_san"], Value::Null);
    assert_eq!(by_dn["certs"], serde_json::json!([]));
    assert!(by_dn.get("client_secret").is_none(), "{by_dn}");

    let by_san = json_of(&create(
        &app,
        &[
            "--auth-method",
            "tls_client_auth",
            "--tls-san",
            "client.example",
            "--json",
        ],
    ));
    assert_eq!(by_san["tls_san"], "client.example");
    assert_eq!(by_san["tls_subject"], Value::Null);
    assert!(by_san.get("client_secret").is_none(), "{by_san}");

    let id = by_dn["client_id"].as_str().unwrap();
    let shown = json_of(&cli(&app, &["client", "show", id, "--json"]));
    assert_eq!(
        (&shown["auth_method"], &shown["tls_subject"]),
        (&by_dn["auth_method"], &by_dn["tls_subject"])
    );
    let text = String::from_utf8(cli(&app, &["client", "show", id]).stdout).unwrap();
    assert!(
        text.contains("auth method: tls_client_auth")
            && text.contains("certificate subject: CN=x,O=y"),
        "{text}"
    );
    let id = by_san["client_id"].as_str().unwrap();
    let text = String::from_utf8(cli(&app, &["client", "show", id]).stdout).unwrap();
    assert!(text.contains("certificate SAN: client.example"), "{text}");

    // The registered name can be changed, DN for SAN, and the change is audited.
    let changed = json_of(&cli(
        &app,
        &[
            "client",
            "update",
            id,
            "--tls-subject",
            "CN=acme,O=Acme",
            "--json",
        ],
    ));
    assert_eq!(
        (&changed["tls_subject"], &changed["tls_san"]),
        (&Value::from("CN=acme,O=Acme"), &Value::Null)
    );
    assert_eq!(
        audit_actions(&app, id).await,
        ["client.update", "client.create"]
    );
    app.stop().await;
}

async fn certificate_enrolment_refusals_are_one_line_and_create_nothing(backend: Backend) {
    let Some(app) = spawn_auth_server(backend).await else {
        return;
    };
    let a = cert("acme-2026");
    let with_key = write_file(&app, "with-key.pem", &a.identity_pem());
    let key_only = write_file(&app, "key.pem", &a.key_pem);
    let garbage = write_file(&app, "garbage.pem", "this is not a certificate\n");
    let armoured_garbage = write_file(
        &app,
        "armoured.pem",
        "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n",
    );
    let bad_base64 = write_file(
        &app,
        "base64.pem",
        "-----BEGIN CERTIFICATE-----\n%%%\n-----END CERTIFICATE-----\n",
    );
    let a_pem = write_file(&app, "a.pem", &a.cert_pem);
    let five: Vec<String> = (0..5)
        .map(|i| write_file(&app, &format!("{i}.pem"), &cert(&format!("c{i}")).cert_pem))
        .collect();
    let missing = app.db.dir.path().join("missing.pem");
    let missing = missing.to_str().unwrap();
    let self_signed_with = |file: &str| -> Vec<String> {
        [
            "--auth-method",
            "self_signed_tls_client_auth",
            "--cert-file",
            file,
        ]
        .map(str::to_owned)
        .to_vec()
    };
    let mut beyond_the_limit = vec![
        "--auth-method".to_owned(),
        "self_signed_tls_client_auth".into(),
    ];
    for file in &five {
        beyond_the_limit.extend(["--cert-file".to_owned(), file.clone()]);
    }
    let strings = |args: &[&str]| args.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>();

    let cases: Vec<(Vec<String>, &str)> = vec![
        (self_signed_with(&with_key), "holds a private key"),
        (self_signed_with(&key_only), "holds a private key"),
        (self_signed_with(&garbage), "no certificate found"),
        (
            self_signed_with(&armoured_garbage),
            "armoured.pem: certificate 1 cannot be parsed",
        ),
        (self_signed_with(&bad_base64), "malformed PEM"),
        (self_signed_with(missing), "cannot read certificate file"),
        (
            strings(&["--cert-file", &a_pem]),
            "--cert-file is for self_signed_tls_client_auth clients, not client_secret_basic",
        ),
        (
            strings(&["--auth-method", "client_secret_post", "--cert-file", &a_pem]),
            "--cert-file is for self_signed_tls_client_auth clients, not client_secret_post",
        ),
        (
            strings(&[
                "--auth-method",
                "tls_client_auth",
                "--tls-subject",
                "CN=x",
                "--cert-file",
                &a_pem,
            ]),
            "--cert-file is for self_signed_tls_client_auth clients",
        ),
        (
            strings(&[
                "--auth-method",
                "self_signed_tls_client_auth",
                "--cert-file",
                &a_pem,
                "--tls-subject",
                "CN=x",
            ]),
            "--tls-subject/--tls-san is for tls_client_auth clients, not self_signed_tls_client_auth",
        ),
        (
            strings(&["--tls-san", "client.example"]),
            "is for tls_client_auth clients, not client_secret_basic",
        ),
        (
            strings(&["--auth-method", "self_signed_tls_client_auth"]),
            "needs --cert-file",
        ),
        (
            strings(&["--auth-method", "tls_client_auth"]),
            "tls_client_auth needs --tls-subject DN or --tls-san VALUE",
        ),
        (
            strings(&[
                "--auth-method",
                "tls_client_auth",
                "--tls-subject",
                "CN=x,O=y",
                "--tls-san",
                "client.example",
            ]),
            "cannot be used with",
        ),
        (
            strings(&[
                "--auth-method",
                "tls_client_auth",
                "--tls-subject",
                "no equals sign",
            ]),
            "--tls-subject must be a distinguished name",
        ),
        (
            strings(&["--auth-method", "tls_client_auth", "--tls-san", "two words"]),
            "--tls-san must be a DNS name or a URI",
        ),
        (beyond_the_limit, "at most 4 certificates"),
        (
            strings(&[
                "--auth-method",
                "self_signed_tls_client_auth",
                "--cert-file",
                &a_pem,
                "--cert-file",
                &a_pem,
            ]),
            "given twice",
        ),
    ];
    for (args, expected) in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let line = failure_line(&create(&app, &args));
        assert!(
            line.starts_with("error: ") && line.contains(expected),
            "{args:?}: {line}"
        );
        // Whatever the file held, the message quotes none of it.
        for body in [&a.key_pem, &a.cert_pem].map(|pem| pem.lines().nth(1).unwrap()) {
            assert!(!line.contains(body), "{args:?}: {line}");
        }
    }
    assert_eq!(client_count(&app), 0, "a refused create creates nothing");
    app.stop().await;
}
