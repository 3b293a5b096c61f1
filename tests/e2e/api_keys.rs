//! API keys end to end. At the token service: an `api_key` client's key gets no token, and
//! introspection tells a resource server whose key it is, until the key is disabled, deleted or
//! rotated out. At the partner API (keys on, resolved at the real token service): the same
//! scopes, isolation and answers as a token, one introspection call per key per cache period,
//! refusal within the cache time, remembered keys through an outage, and a per-address lockout.

use crate::common;

use std::time::Duration;

use common::system::{TestApi, resource_settings, spawn_resource_with};
use common::{Backend, TestAuth, http, spawn_auth_server, test_db};
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
    let keyed = auth.state.api_keys.hash(key.as_bytes()).unwrap();
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

// ---- The partner API with keys on, resolving them at the real token service ----

/// A token service and a partner API with API keys on (its introspection client created on
/// the token service), remembering answers for `cache`, with a metrics listener.
async fn keyed_api(cache: Duration) -> (TestAuth, TestApi) {
    let auth = spawn_auth_server(Backend::Sqlite).await.unwrap();
    let api = keyed_api_for(&auth, cache).await;
    (auth, api)
}

async fn keyed_api_for(auth: &TestAuth, cache: Duration) -> TestApi {
    let (client_id, secret) = introspector(auth, "partner-api").await;
    let db = test_db(Backend::Sqlite).await.unwrap();
    let mut settings = resource_settings(auth, &db);
    settings.api_keys = Some(resource_api::config::ApiKeySettings {
        url: auth.url("/oauth2/introspect"),
        client_id,
        client_secret: zeroize::Zeroizing::new(secret),
        cache,
    });
    settings.metrics_bind = Some("127.0.0.1:0".parse().unwrap());
    let api = spawn_resource_with(db, settings).await;
    api.wait_ready().await;
    api
}

/// `GET path` with `key` in `X-API-Key`.
async fn with_key(api: &TestApi, path: &str, key: &str) -> reqwest::Response {
    http()
        .get(api.url(path))
        .header("x-api-key", key)
        .send()
        .await
        .unwrap()
}

/// Introspection calls the partner API has made for keys (its metrics).
async fn introspections(api: &TestApi) -> f64 {
    let base = api.metrics_base_url.as_deref().expect("a metrics listener");
    let text = http()
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|line| line.starts_with("resource_api_key_introspections_total"))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Polls `GET /v1/me` with `key` until it answers `want` (30 s deadline for a hang).
async fn settles(api: &TestApi, key: &str, want: StatusCode) {
    common::eventually(Duration::from_secs(30), "the key's new state", || async {
        (with_key(api, "/v1/me", key).await.status() == want).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_reads_its_own_partners_data_with_its_clients_scopes() {
    let (auth, api) = keyed_api(Duration::from_secs(30)).await;
    let (client, key) = auth.api_key_client("acme", "orders:read").await;
    // Both headers.
    for response in [
        with_key(&api, "/v1/me", &key).await,
        http()
            .get(api.url("/v1/me"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap(),
    ] {
        assert_eq!(response.status(), StatusCode::OK);
        let me: Value = response.json().await.unwrap();
        assert_eq!(me["client_id"], client.client_id.as_str());
        assert_eq!(me["partner_id"], "acme");
        assert!(!me.to_string().contains(&key));
    }
    // Its own partner's order; another partner's is 404 like an unknown one.
    assert_eq!(
        with_key(&api, "/v1/orders/ord_00001", &key).await.status(),
        StatusCode::OK
    );
    let (_, globex) = auth.api_key_client("globex", "orders:read").await;
    let other = with_key(&api, "/v1/orders/ord_00001", &globex).await;
    assert_eq!(other.status(), StatusCode::NOT_FOUND);
    // Without the route's scope: 403 insufficient_scope.
    let (_, catalog_only) = auth.api_key_client("acme", "catalog:read").await;
    let refused = with_key(&api, "/v1/orders", &catalog_only).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let challenge = refused.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.contains("insufficient_scope"), "{challenge}");
    api.stop().await;
    auth.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_keys_secrets_and_key_plus_token_are_refused() {
    let (auth, api) = keyed_api(Duration::from_secs(30)).await;
    let (_, key) = auth.api_key_client("acme", "orders:read").await;
    let (secret_client, secret) = auth.client("acme", "orders:read").await;
    let token = common::token(&auth, secret_client.client_id.as_str(), secret.expose()).await;
    // A wrong key, a secret client's secret and a token sent as a key: 401 invalid_token.
    let guess = format!("pak_{}", "Q".repeat(43));
    for wrong in [guess.as_str(), secret.expose(), token.as_str()] {
        let refused = with_key(&api, "/v1/me", wrong).await;
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED, "{wrong:.6}…");
        let challenge = refused.headers()["www-authenticate"].to_str().unwrap();
        assert!(challenge.contains("invalid_token"), "{challenge}");
        let body = refused.text().await.unwrap();
        assert!(!body.contains(wrong), "the credential is echoed: {body}");
    }
    // A key and a token in one request: 400.
    let both = http()
        .get(api.url("/v1/me"))
        .bearer_auth(&token)
        .header("x-api-key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(both.status(), StatusCode::BAD_REQUEST);
    // The token alone still works: keys are beside tokens, not instead.
    assert_eq!(
        common::get(&api, "/v1/me", &token).await.status(),
        StatusCode::OK
    );
    api.stop().await;
    auth.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_requests_with_one_key_make_one_introspection_call() {
    let (auth, api) = keyed_api(Duration::from_secs(30)).await;
    let (_, key) = auth.api_key_client("acme", "orders:read").await;
    let before = introspections(&api).await;
    // 50 at once on a cold cache, then 950 one after another.
    let first = futures::future::join_all((0..50).map(|_| with_key(&api, "/v1/me", &key))).await;
    assert!(first.iter().all(|r| r.status() == StatusCode::OK));
    for _ in 0..950 {
        assert_eq!(
            with_key(&api, "/v1/me", &key).await.status(),
            StatusCode::OK
        );
    }
    let calls = introspections(&api).await - before;
    assert!(
        (1.0..=2.0).contains(&calls),
        "{calls} introspection calls for 1,000 requests"
    );
    api.stop().await;
    auth.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_and_rotated_out_keys_stop_within_the_cache_time() {
    let cache = Duration::from_secs(2);
    let (auth, api) = keyed_api(cache).await;
    let (client, key) = auth.api_key_client("acme", "orders:read").await;
    let id = client.client_id.as_str();
    assert_eq!(
        with_key(&api, "/v1/me", &key).await.status(),
        StatusCode::OK
    );
    // Disabled at the token service: refused once the partner API's entry runs out.
    auth_server::admin::set_disabled(&auth.state.db, id, true)
        .await
        .unwrap();
    settles(&api, &key, StatusCode::UNAUTHORIZED).await;
    auth_server::admin::set_disabled(&auth.state.db, id, false)
        .await
        .unwrap();
    settles(&api, &key, StatusCode::OK).await;

    // Rotated with a grace period: the old and the new key both work.
    let new = auth.rotate(id, 3600).await;
    assert_eq!(
        with_key(&api, "/v1/me", &new).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        with_key(&api, "/v1/me", &key).await.status(),
        StatusCode::OK
    );
    // Rotated again without grace: only the newest works (the others once their entries end).
    let newest = auth.rotate(id, 0).await;
    settles(&api, &key, StatusCode::UNAUTHORIZED).await;
    settles(&api, &new, StatusCode::UNAUTHORIZED).await;
    assert_eq!(
        with_key(&api, "/v1/me", &newest).await.status(),
        StatusCode::OK
    );
    api.stop().await;
    auth.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_the_token_service_is_down_remembered_keys_work_and_unknown_keys_get_503() {
    let (auth, api) = keyed_api(Duration::from_secs(3600)).await;
    let (_, key) = auth.api_key_client("acme", "orders:read").await;
    let (_, unused) = auth.api_key_client("acme", "orders:read").await;
    assert_eq!(
        with_key(&api, "/v1/me", &key).await.status(),
        StatusCode::OK
    );
    auth.stop().await;
    assert_eq!(
        with_key(&api, "/v1/me", &key).await.status(),
        StatusCode::OK,
        "a remembered key"
    );
    let unknown = with_key(&api, "/v1/me", &unused).await;
    assert_eq!(unknown.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(unknown.headers().contains_key("retry-after"));
    assert_eq!(
        unknown.headers()["content-type"],
        "application/problem+json"
    );
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_wrong_keys_from_one_address_are_429_while_another_address_is_served() {
    let (auth, api) = keyed_api(Duration::from_secs(30)).await;
    let (_, key) = auth.api_key_client("acme", "orders:read").await;
    let flooder = common::http_from("127.0.0.5");
    let mut statuses = std::collections::BTreeMap::new();
    for n in 0..1000 {
        let guess = format!("pak_{n:043}");
        let status = flooder
            .get(api.url("/v1/me"))
            .header("x-api-key", &guess)
            .send()
            .await
            .unwrap()
            .status();
        *statuses.entry(status.as_u16()).or_insert(0) += 1;
    }
    let locked = statuses.get(&429).copied().unwrap_or(0);
    assert!(locked >= 800, "{statuses:?}");
    assert_eq!(statuses.keys().copied().collect::<Vec<_>>(), [401, 429]);
    // The flooding address is refused even with a right key; another address is served.
    let refused = flooder
        .get(api.url("/v1/me"))
        .header("x-api-key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(refused.headers().contains_key("retry-after"));
    let partner = common::http_from("127.0.0.6");
    let served = partner
        .get(api.url("/v1/me"))
        .header("x-api-key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(served.status(), StatusCode::OK);
    api.stop().await;
    auth.stop().await;
}
