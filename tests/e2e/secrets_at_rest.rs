//! Secrets and private keys never sit in the database in plaintext; the master key guards the keys;
//! key changes made by an admin reach a running server within seconds.

use crate::common;

use common::kid_of;

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use common::{Backend, TestAuth, spawn_auth_server, spawn_auth_with, test_db};
use keys::{Algorithm, MasterKey};
use serde_json::Value;

on_both_backends!(
    a_cli_key_rotation_reaches_the_running_server_within_seconds,
    a_wrong_master_key_stops_the_start_with_a_clear_error,
);

/// Every byte the SQLite database holds on disk: the main file and its write-ahead log.
fn database_bytes(path: &std::path::Path) -> Vec<u8> {
    let mut bytes = std::fs::read(path).expect("database file");
    let wal = path.with_file_name(format!(
        "{}-wal",
        path.file_name().unwrap().to_string_lossy()
    ));
    if let Ok(more) = std::fs::read(wal) {
        bytes.extend(more);
    }
    bytes
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_client_secret_or_private_key_is_stored_in_plaintext() {
    let app = spawn_auth_server(Backend::Sqlite).await.unwrap();
    let (client, secret) = app.client("acme", "orders:read").await;
    let issued = common::token(&app, client.client_id.as_str(), secret.expose()).await;
    assert!(!issued.is_empty());
    common::force_rotate(&app, Algorithm::EdDSA).await;
    app.state.audit.flush().await;

    let master = app_master(&app);
    let rows = app.state.db.list_signing_keys().await.unwrap();
    assert_eq!(rows.len(), 3, "retired, active and pending keys");
    let db = app.stop().await;
    let bytes = database_bytes(&db.sqlite_path().unwrap());
    assert!(bytes.len() > 4096, "the scan reads a real database file");

    // The secret, in any encoding a careless implementation might store.
    let plain = secret.expose().as_bytes();
    assert!(!contains(&bytes, plain), "client secret in plaintext");
    assert!(
        !contains(&bytes, &plain[4..]),
        "client secret body in plaintext"
    );
    assert!(
        !contains(&bytes, STANDARD.encode(plain).as_bytes()),
        "client secret in base64"
    );
    // The hash is there (so the scan can find stored values at all).
    assert!(
        contains(&bytes, &secret.hash()),
        "the stored hash is found by the scan"
    );

    for row in &rows {
        let der = keys::dangerous::reveal_pkcs8(&row.sealed(), &master).unwrap();
        assert!(
            contains(&bytes, &row.private_key_sealed),
            "the sealed key is found by the scan"
        );
        // No 16-byte run of the PKCS#8 document (which holds the private scalar) appears anywhere.
        for window in der.windows(16) {
            assert!(
                !contains(&bytes, window),
                "private key material of {} in plaintext",
                row.kid
            );
        }
        assert!(!contains(&bytes, STANDARD.encode(&*der).as_bytes()));
        assert!(!contains(&bytes, URL_SAFE_NO_PAD.encode(&*der).as_bytes()));
    }
    let key_file = std::fs::read_to_string(db.master_key_path()).unwrap();
    assert!(
        !contains(&bytes, key_file.trim().as_bytes()),
        "master key in the database"
    );
}

fn app_master(app: &TestAuth) -> std::sync::Arc<MasterKey> {
    std::sync::Arc::new(MasterKey::load(&app.db.master_key_path()).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_master_key_file_is_created_with_mode_0600() {
    use std::os::unix::fs::PermissionsExt;
    let app = spawn_auth_server(Backend::Sqlite).await.unwrap();
    let mode = std::fs::metadata(app.db.master_key_path())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    app.stop().await;
}

async fn a_cli_key_rotation_reaches_the_running_server_within_seconds(backend: Backend) {
    let Some(app) = spawn_auth_server(backend).await else {
        return;
    };
    let (client, secret) = app.client("acme", "orders:read").await;
    let id = client.client_id.as_str();
    let first = kid_of(&common::token(&app, id, secret.expose()).await);

    // The rotation happens outside the server, as `auth-server keys rotate` would do it.
    // Two rotations: the first promotes the bootstrap pending key and queues an EdDSA key, the
    // second makes that EdDSA key active.
    let middle = common::force_rotate(&app, Algorithm::EdDSA).await;
    let row = common::force_rotate(&app, Algorithm::ES256).await;
    assert_ne!(row.active, first);

    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let kid = kid_of(&common::token(&app, id, secret.expose()).await);
        if kid == row.active {
            break;
        }
        // The server may reload between the two rotations (every 200 ms here) and sign with
        // the key the first one made active for a moment.
        assert!(
            kid == first || kid == middle.active,
            "signed by {kid}, neither an old key nor the new one"
        );
        assert!(
            tokio::time::Instant::now() < deadline,
            "the server did not pick up the new key"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let issued = common::token(&app, id, secret.expose()).await;
    let header: Value = common::header_of(&issued);
    assert_eq!(header["alg"], "EdDSA");
    // The retired key stays published so tokens it signed keep verifying until they expire.
    let jwks: Value = common::get_json(app.url("/.well-known/jwks.json")).await;
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert!(kids.contains(&first.as_str()) && kids.contains(&row.active.as_str()));
    let states = app.state.db.signing_key_states().await.unwrap();
    assert!(states.contains(&(first.clone(), keys::KeyState::Retired)));
    assert!(states.contains(&(row.active.clone(), keys::KeyState::Active)));
    app.stop().await;
}

async fn a_wrong_master_key_stops_the_start_with_a_clear_error(backend: Backend) {
    let Some(db) = test_db(backend).await else {
        return;
    };
    let settings = TestAuth::settings(&db);
    let app = spawn_auth_with(db, settings.clone()).await;
    let db = app.stop().await;
    // Replace the master key file with another key: the stored signing key no longer opens.
    std::fs::write(
        db.master_key_path(),
        MasterKey::generate().unwrap().to_file_contents().as_bytes(),
    )
    .unwrap();
    let err = match auth_server::Application::build(settings).await {
        Ok(_) => panic!("a server started with the wrong master key"),
        Err(err) => format!("{err:#}"),
    };
    assert!(err.contains("master key cannot open signing key"), "{err}");
    assert!(!err.contains('\n'), "one line: {err}");
}
