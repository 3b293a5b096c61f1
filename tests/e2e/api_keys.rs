//! API keys at the token service: an `api_key` client's key gets no token, and introspection
//! tells a resource server whose key it is, until the key is disabled, deleted or rotated out.

use crate::common;

use common::{Backend, TestAuth, http, spawn_auth_server};
use reqwest::StatusCode;
use serde_json::{Value, json};

on_both_backends!(
    a_key_is_refused_at_the_token_endpoint_with_unauthorized_client,
    introspection_describes_a_live_key_and_nothing_else,
    a_disabled_deleted_or_rotated_out_key_is_inactive_at_once,
);

/// A resource server's introspection client (audience `partner-api`): its id and secret.
async fn introspector(auth: &TestAuth, audience: &str) -> (String, String) {
    let (client, secret) = auth
        .client_with("platform", "introspect", |c| {
            c.introspect_allowed = true;
            c.audiences = vec![audience.to_owned()];
        })
        .await;
    (client.client_id.to_string(), secret.expose().to_owned())
}

async fn introspect(auth: &TestAuth, caller: &(String, String), token: &str) -> Value {
    let response = http()
        .post(auth.url("/oauth2/introspect"))
        .basic_auth(&caller.0, Some(&caller.1))
        .form(&[("token", token), ("token_type_hint", "api_key")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

async fn a_key_is_refused_at_the_token_endpoint_with_unauthorized_client(backend: Backend) {
    let auth = spawn_auth_server(backend).await.unwrap();
    let (client, key) = auth.api_key_client("acme", "orders:read").await;
    assert!(key.starts_with("pak_") && key.len() == 47, "{}", key.len());
    let id = client.client_id.as_str();
    for answer in [
        http()
            .post(auth.url("/oauth2/token"))
            .basic_auth(id, Some(&key))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap(),
        http()
            .post(auth.url("/oauth2/token"))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", id),
                ("client_secret", key.as_str()),
            ])
            .send()
            .await
            .unwrap(),
    ] {
        assert_eq!(answer.status(), StatusCode::BAD_REQUEST);
        assert_eq!(answer.headers()["cache-control"], "no-store");
        let body: Value = answer.json().await.unwrap();
        assert_eq!(body["error"], "unauthorized_client", "{body}");
        assert!(!body.to_string().contains(&key));
    }
    // A wrong key for the same client is a failed authentication like any other.
    let wrong = http()
        .post(auth.url("/oauth2/token"))
        .basic_auth(id, Some(format!("pak_{}", "A".repeat(43))))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let body: Value = wrong.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");
    // No token was issued to it, and the metadata does not offer keys at the token endpoint.
    let issued = auth
        .state
        .db
        .list_audit(Some(id), 50)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "token.issue")
        .count();
    assert_eq!(issued, 0);
    let metadata: Value =
        common::get_json(auth.url("/.well-known/oauth-authorization-server")).await;
    let methods = metadata["token_endpoint_auth_methods_supported"].to_string();
    assert!(!methods.contains("api_key"), "{methods}");
    auth.stop().await;
}

async fn introspection_describes_a_live_key_and_nothing_else(backend: Backend) {
    let auth = spawn_auth_server(backend).await.unwrap();
    let caller = introspector(&auth, "partner-api").await;
    let (client, key) = auth
        .api_key_client("acme", "orders:read catalog:read")
        .await;
    let answer = introspect(&auth, &caller, &key).await;
    assert_eq!(
        answer,
        json!({
            "active": true,
            "token_type": "api_key",
            "client_id": client.client_id.as_str(),
            "sub": client.client_id.as_str(),
            "scope": "catalog:read orders:read",
            "partner_id": "acme",
            "aud": "partner-api",
            "iss": common::ISSUER,
        })
    );

    // A secret client's secret, a refresh token, a key-shaped guess and a malformed key are
    // never taken for a key.
    let (secret_client, secret) = auth.client("acme", "orders:read").await;
    let refresh = common::token_grant(&auth, secret_client.client_id.as_str(), secret.expose())
        .await["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let guess = format!("pak_{}", "x".repeat(43));
    let truncated = &key[..46];
    for token in [secret.expose(), refresh.as_str(), guess.as_str(), truncated] {
        assert_eq!(
            introspect(&auth, &caller, token).await,
            json!({ "active": false }),
            "{token:.6}…"
        );
    }
    // The key's own client may not introspect; a resource server of another audience learns
    // nothing about it.
    let own = http()
        .post(auth.url("/oauth2/introspect"))
        .basic_auth(client.client_id.as_str(), Some(&key))
        .form(&[("token", key.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), StatusCode::BAD_REQUEST);
    let stranger = introspector(&auth, "billing-api").await;
    assert_eq!(
        introspect(&auth, &stranger, &key).await,
        json!({ "active": false })
    );
    auth.stop().await;
}

async fn a_disabled_deleted_or_rotated_out_key_is_inactive_at_once(backend: Backend) {
    let auth = spawn_auth_server(backend).await.unwrap();
    let caller = introspector(&auth, "partner-api").await;
    let (client, key) = auth.api_key_client("acme", "orders:read").await;
    let id = client.client_id.as_str();
    let active = async |token: &str| introspect(&auth, &caller, token).await["active"] == true;
    assert!(active(&key).await);

    // Disabled, then enabled: the answer follows at once (no reload interval in between).
    auth_server::admin::set_disabled(&auth.state.db, id, true)
        .await
        .unwrap();
    assert!(!active(&key).await);
    auth_server::admin::set_disabled(&auth.state.db, id, false)
        .await
        .unwrap();
    assert!(active(&key).await);

    // Rotated with a grace period: both work, the old one with its end as `exp`; rotated again
    // without grace: only the newest.
    let rotated = auth.rotate(id, 3600).await;
    assert!(rotated.starts_with("pak_") && rotated != key);
    let old = introspect(&auth, &caller, &key).await;
    assert_eq!(old["active"], true);
    let exp = old["exp"].as_i64().expect("exp while in grace");
    assert!((exp - auth_server::now() - 3600).abs() <= 5, "{exp}");
    let new = introspect(&auth, &caller, &rotated).await;
    assert_eq!(new["active"], true);
    assert!(new.get("exp").is_none(), "{new}");
    let newest = auth.rotate(id, 0).await;
    assert!(!active(&key).await && !active(&rotated).await);
    assert!(active(&newest).await);

    // Deleted: gone.
    auth_server::admin::delete_client(&auth.state.db, id)
        .await
        .unwrap();
    assert!(!active(&newest).await);
    auth.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_is_stored_only_as_its_keyed_hash_and_survives_a_master_key_rewrap() {
    let auth = spawn_auth_server(Backend::Sqlite).await.unwrap();
    let caller = introspector(&auth, "partner-api").await;
    let (_, key) = auth.api_key_client("acme", "orders:read").await;
    let path = auth.db.sqlite_path().expect("a SQLite file");
    let bytes = std::fs::read(&path).unwrap();
    let wal = std::fs::read(format!("{}-wal", path.display())).unwrap_or_default();
    let sha256 = ring::digest::digest(&ring::digest::SHA256, key.as_bytes());
    for (what, needle) in [
        ("the key", key.as_bytes()),
        ("the key without its prefix", &key.as_bytes()[4..]),
        ("the key's plain SHA-256", sha256.as_ref()),
    ] {
        for file in [&bytes, &wal] {
            assert!(
                !file.windows(needle.len()).any(|w| w == needle),
                "{what} is in the database file"
            );
        }
    }
    // The stored value is the HMAC under the hash key: it matches what the server computes.
    let keyed = auth.state.api_keys.hash(key.as_bytes());
    assert!(
        bytes.windows(32).any(|w| w == keyed) || wal.windows(32).any(|w| w == keyed),
        "the keyed hash is what is stored"
    );

    // A new master key re-seals the hash key: every stored key keeps working under it.
    let dir = tempfile::tempdir().unwrap();
    let new_file = dir.path().join("new.key");
    let new_master = keys::MasterKey::load_or_create(&new_file).unwrap().key;
    let current = auth.state.master.get();
    auth_server::signing::rewrap_keys(&auth.state.db, &current, &new_master)
        .await
        .unwrap();
    let reopened = auth_server::api_key::hash_key(&auth.state.db, &new_master)
        .await
        .unwrap();
    assert_eq!(reopened.hash(key.as_bytes()), keyed);
    assert!(
        auth_server::api_key::hash_key(&auth.state.db, &current)
            .await
            .is_err(),
        "the old master key no longer opens it"
    );
    assert_eq!(introspect(&auth, &caller, &key).await["active"], true);
    auth.stop().await;
}
