//! `api_key` clients from the command line: created with `--auth-method api_key`, their key shown
//! once as `api_key`, rotated with a grace period by `client rotate-secret`, still valid after the
//! master key is rewrapped, refused at the token endpoint, and what `client create` refuses for
//! them.

use reqwest::StatusCode;
use serde_json::Value;

use crate::support::{Backend, TestAuth, http, spawn_auth_server};
use crate::{cli, cli_command, client_count, failure_line, json_of};

on_both_backends!(
    an_api_key_client_is_created_rotated_and_rewrapped_from_the_cli,
    api_key_refusals_are_one_line_and_create_nothing,
);

const CREATE: [&str; 10] = [
    "client",
    "create",
    "--name",
    "Acme shop",
    "--partner",
    "acme",
    "--scopes",
    "orders:read",
    "--auth-method",
    "api_key",
];

/// Whether the token service's introspection endpoint (asked by `caller`) calls `key` active.
async fn active(app: &TestAuth, caller: &(String, String), key: &str) -> bool {
    let answer: Value = http()
        .post(app.url("/oauth2/introspect"))
        .basic_auth(&caller.0, Some(&caller.1))
        .form(&[("token", key)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["active"] == true && answer["token_type"] == "api_key"
}

async fn an_api_key_client_is_created_rotated_and_rewrapped_from_the_cli(backend: Backend) {
    let Some(app) = spawn_auth_server(backend).await else {
        return;
    };
    let introspector = json_of(&cli(
        &app,
        &[
            "client",
            "create",
            "--name",
            "partner api",
            "--partner",
            "platform",
            "--scopes",
            "introspect",
            "--introspect",
            "--json",
        ],
    ));
    let caller = (
        introspector["client_id"].as_str().unwrap().to_owned(),
        introspector["client_secret"].as_str().unwrap().to_owned(),
    );

    let created = json_of(&cli(&app, &[&CREATE[..], &["--json"]].concat()));
    assert_eq!(created["auth_method"], "api_key");
    assert!(created.get("client_secret").is_none(), "{created}");
    assert_eq!(created["refresh_enabled"], false);
    let id = created["client_id"].as_str().unwrap().to_owned();
    let key = created["api_key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("pak_") && key.len() == 47);
    assert!(active(&app, &caller, &key).await);

    // The key gets no token.
    let refused = http()
        .post(app.url("/oauth2/token"))
        .basic_auth(&id, Some(&key))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "unauthorized_client");

    // The human form says what it is and that it is shown once.
    let human = cli(&app, &CREATE);
    let text = String::from_utf8(human.stdout).unwrap();
    assert!(
        text.contains("api_key: pak_") && text.contains("shown only once"),
        "{text}"
    );
    assert!(!text.contains("client_secret"), "{text}");

    // Rotation with a grace period: both keys work; without: only the newest.
    let rotated = json_of(&cli(
        &app,
        &["client", "rotate-secret", &id, "--grace", "3600", "--json"],
    ));
    let second = rotated["api_key"].as_str().unwrap().to_owned();
    assert!(second.starts_with("pak_") && second != key);
    assert!(rotated["previous_key_valid_until"].as_i64().unwrap() > auth_server::now());
    assert!(active(&app, &caller, &key).await && active(&app, &caller, &second).await);
    let table = String::from_utf8(cli(&app, &["client", "rotate-secret", &id]).stdout).unwrap();
    assert!(
        table.contains("api_key: pak_") && table.contains("previous key works until"),
        "{table}"
    );
    assert!(!active(&app, &caller, &key).await, "rotated twice: gone");

    // A new master key: the hash key is re-sealed with the signing keys, so the keys stored
    // keep working and a rotation under the new master key hashes the same way.
    let new_master = app.db.dir.path().join("rotated.key");
    let rewrapped = json_of(&cli(
        &app,
        &[
            "keys",
            "rewrap",
            "--new-master-key-file",
            new_master.to_str().unwrap(),
            "--json",
        ],
    ));
    assert!(rewrapped["rewrapped"].as_u64().unwrap() >= 1);
    let output = cli_command(
        &app.db,
        &["client", "rotate-secret", &id, "--grace", "3600", "--json"],
    )
    .env("AUTH_MASTER_KEY_FILE", &new_master)
    .output()
    .unwrap();
    let third = json_of(&output)["api_key"].as_str().unwrap().to_owned();
    assert!(active(&app, &caller, &third).await);
    // The old master key opens nothing any more.
    let stale = failure_line(&cli(&app, &["client", "rotate-secret", &id]));
    assert!(stale.contains("master key"), "{stale}");
    app.stop().await;
}

async fn api_key_refusals_are_one_line_and_create_nothing(backend: Backend) {
    let Some(app) = spawn_auth_server(backend).await else {
        return;
    };
    let before = client_count(&app);
    for (extra, expected) in [
        (&["--introspect"][..], "introspection"),
        (&["--access-ttl", "60"][..], "--access-ttl"),
        (&["--tls-subject", "CN=x"][..], "tls_client_auth"),
        (
            &["--jwks-uri", "https://example.com/jwks"][..],
            "private_key_jwt",
        ),
    ] {
        let line = failure_line(&cli(&app, &[&CREATE[..], extra].concat()));
        assert!(line.contains(expected), "{extra:?}: {line}");
        assert!(!line.contains("pak_"), "{line}");
    }
    assert_eq!(client_count(&app), before);
    app.stop().await;
}
