//! The partner API's key cache: it survives a token-service outage, picks up new keys on first use,
//! cannot be made to hammer the token service, and starts before the token service is reachable.

use crate::common;

use crate::common::system;
use common::kid_of;

use std::num::NonZeroU32;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{Backend, TestAuth, http, spawn_auth_server, spawn_auth_with, test_db};
use futures::StreamExt;
use keys::Algorithm;
use reqwest::StatusCode;
use system::{spawn_resource_api, spawn_system};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valid_tokens_keep_working_while_the_token_service_is_down() {
    let (auth, api) = spawn_system(Backend::Sqlite).await.unwrap();
    let (client, secret) = auth.client("acme", "orders:read").await;
    let token = common::token(&auth, client.client_id.as_str(), secret.expose()).await;
    assert_eq!(
        common::get(&api, "/v1/me", &token).await.status(),
        StatusCode::OK
    );
    auth.stop().await;
    // The token service is gone: no JWKS, no introspection; the cached keys still verify.
    for _ in 0..20 {
        assert_eq!(
            common::get(&api, "/v1/me", &token).await.status(),
            StatusCode::OK
        );
    }
    let orders = common::get(&api, "/v1/orders", &token).await;
    assert_eq!(orders.status(), StatusCode::OK);
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_signing_key_is_picked_up_on_the_first_token_that_uses_it() {
    let (auth, api) = spawn_system(Backend::Sqlite).await.unwrap();
    let (client, secret) = auth.client("globex", "catalog:read").await;
    let id = client.client_id.as_str();
    let old = common::token(&auth, id, secret.expose()).await;
    assert_eq!(
        common::get(&api, "/v1/me", &old).await.status(),
        StatusCode::OK
    );

    // Two forced rotations in a row make active a key created after the API last fetched the
    // JWKS: a key it has never seen (routine rotations avoid exactly this with the pending stage).
    common::force_rotate(&auth, Algorithm::EdDSA).await;
    let new_key = common::force_rotate(&auth, Algorithm::ES256).await;
    let token = common::token_signed_by(&auth, id, secret.expose(), &new_key.active).await;
    assert_eq!(
        kid_of(&token),
        new_key.active,
        "the token service uses the new key"
    );
    let fetches = api.jwks_fetches();
    assert_eq!(
        common::get(&api, "/v1/me", &token).await.status(),
        StatusCode::OK,
        "accepted on first use"
    );
    assert_eq!(api.jwks_fetches(), fetches + 1, "exactly one refetch");
    // The retired key stays published, so tokens it signed still verify.
    assert_eq!(
        common::get(&api, "/v1/me", &old).await.status(),
        StatusCode::OK
    );
    api.stop().await;
    auth.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_unknown_key_ids_causes_at_most_a_couple_of_jwks_fetches() {
    let auth = spawn_auth_server(Backend::Sqlite).await.unwrap();
    // Unknown kids cause at most one fetch per cooldown. The cooldown here is far longer than
    // the flood can take on any machine, so the bound below does not depend on its speed.
    let api = spawn_resource_api(Backend::Sqlite, &auth, |s| {
        s.jwks_cooldown = Duration::from_secs(3600);
    })
    .await
    .unwrap();
    api.wait_ready().await;
    let (client, secret) = auth.client("initech", "catalog:read").await;
    let good = common::token(&auth, client.client_id.as_str(), secret.expose()).await;
    let (_, rest) = good.split_once('.').unwrap();
    let before = api.jwks_fetches();
    let began = std::time::Instant::now();
    let client = http();
    let statuses: Vec<StatusCode> = futures::stream::iter(0..1000)
        .map(|i| {
            let header = serde_json::json!({ "alg": "ES256", "typ": "at+jwt", "kid": format!("made-up-{i}-{}", uuid::Uuid::new_v4()) });
            let token = format!("{}.{rest}", URL_SAFE_NO_PAD.encode(header.to_string()));
            let request = client.get(api.url("/v1/me")).bearer_auth(token);
            async move { request.send().await.unwrap().status() }
        })
        .buffer_unordered(50)
        .collect()
        .await;
    assert!(statuses.iter().all(|s| *s == StatusCode::UNAUTHORIZED));
    let fetches = api.jwks_fetches() - before;
    let took = began.elapsed();
    assert!(
        fetches <= 2,
        "{fetches} JWKS fetches for 1000 unknown kids in {took:?}"
    );
    // Real tokens are unaffected.
    assert_eq!(
        common::get(&api, "/v1/me", &good).await.status(),
        StatusCode::OK
    );
    api.stop().await;
    auth.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_starts_without_the_token_service_and_becomes_ready_when_it_appears() {
    // Reserve a port for a token service that is not there yet.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let auth_db = test_db(Backend::Sqlite).await.unwrap();
    let mut auth_settings = TestAuth::settings(&auth_db);
    auth_settings.bind = format!("127.0.0.1:{port}").parse().unwrap();
    let jwks_url = format!("http://127.0.0.1:{port}/.well-known/jwks.json");

    let api_db = test_db(Backend::Sqlite).await.unwrap();
    let mut settings =
        resource_api::Settings::with_defaults(common::ISSUER, &jwks_url, &api_db.url);
    settings.bind = "127.0.0.1:0".parse().unwrap();
    let api = system::spawn_resource_with(api_db, settings).await;
    let ready = http().get(api.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        ready.json::<serde_json::Value>().await.unwrap()["jwks"],
        "not_loaded"
    );
    assert_eq!(
        common::get_status(api.url("/healthz")).await,
        StatusCode::OK
    );

    let auth = spawn_auth_with(auth_db, auth_settings).await;
    api.wait_ready().await;
    assert_eq!(common::get_status(api.url("/readyz")).await, StatusCode::OK);
    let (client, secret) = auth.client("acme", "orders:read").await;
    let token = common::token(&auth, client.client_id.as_str(), secret.expose()).await;
    assert_eq!(
        common::get(&api, "/v1/me", &token).await.status(),
        StatusCode::OK
    );
    api.stop().await;
    auth.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_jwks_is_refreshed_about_once_per_max_age() {
    let db = test_db(Backend::Sqlite).await.unwrap();
    let mut settings = TestAuth::settings(&db);
    settings.jwks_max_age = 1;
    let auth = spawn_auth_with(db, settings).await;
    let api = spawn_resource_api(Backend::Sqlite, &auth, |_| {})
        .await
        .unwrap();
    api.wait_ready().await;
    let (client, secret) = auth.client("acme", "orders:read").await;
    let token = common::token(&auth, client.client_id.as_str(), secret.expose()).await;
    let start = api.jwks_fetches();
    let began = tokio::time::Instant::now();
    let mut requests = 0;
    while began.elapsed() < Duration::from_millis(3500) {
        assert_eq!(
            common::get(&api, "/v1/me", &token).await.status(),
            StatusCode::OK
        );
        requests += 1;
    }
    let fetches = api.jwks_fetches() - start;
    let took = began.elapsed();
    // Judged against the time that really passed (the last request may end well after 3.5 s on
    // a slow machine): at most one fetch per started max-age, plus one in flight at the start;
    // and the cache does refresh, at least twice in 3.5 s.
    let most = took.as_secs() + 2;
    assert!(
        (2..=most).contains(&fetches),
        "{fetches} fetches in {took:?} with max-age 1 s ({requests} requests)"
    );
    api.stop().await;
    auth.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rate_limit_answers_429_per_client_without_affecting_others() {
    let auth = spawn_auth_server(Backend::Sqlite).await.unwrap();
    let api = spawn_resource_api(Backend::Sqlite, &auth, |s| {
        s.rate_limit_per_second = NonZeroU32::new(1).unwrap();
        s.rate_limit_burst = NonZeroU32::new(5).unwrap();
    })
    .await
    .unwrap();
    api.wait_ready().await;
    let (noisy, noisy_secret) = auth.client("acme", "catalog:read").await;
    let (quiet, quiet_secret) = auth.client("globex", "catalog:read").await;
    let noisy_token = common::token(&auth, noisy.client_id.as_str(), noisy_secret.expose()).await;
    let quiet_token = common::token(&auth, quiet.client_id.as_str(), quiet_secret.expose()).await;

    // Burst 5, then one more per second. The noisy client asks until it is refused; how many
    // requests get through depends on the time that passed (one refill per second), so it is
    // judged against that time, not assumed to be exactly 5.
    let began = std::time::Instant::now();
    let mut remaining = Vec::new();
    let limited = loop {
        let response = common::get(&api, "/v1/products", &noisy_token).await;
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            break response;
        }
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["x-ratelimit-limit"], "5");
        remaining.push(
            response.headers()["x-ratelimit-remaining"]
                .to_str()
                .unwrap()
                .parse::<u32>()
                .unwrap(),
        );
        assert!(
            remaining.len() as u64 <= 6 + began.elapsed().as_secs(),
            "{} requests in {:?} and no 429",
            remaining.len(),
            began.elapsed()
        );
    };
    let took = began.elapsed();
    assert!(
        (5..=6 + took.as_secs() as usize).contains(&remaining.len()),
        "{} requests let through in {took:?}",
        remaining.len()
    );
    assert_eq!(remaining.first(), Some(&4), "{remaining:?}");
    assert_eq!(remaining.last(), Some(&0), "{remaining:?}");
    let retry: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry), "Retry-After {retry}");
    assert_eq!(limited.headers()["x-ratelimit-remaining"], "0");
    assert_eq!(
        limited.headers()["content-type"],
        "application/problem+json"
    );
    // Another client is not slowed by the first one's burst.
    for _ in 0..5 {
        let response = common::get(&api, "/v1/products", &quiet_token).await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    // After the advertised delay the first client may go on.
    tokio::time::sleep(Duration::from_secs(retry)).await;
    let again = common::get(&api, "/v1/products", &noisy_token).await;
    assert_eq!(again.status(), StatusCode::OK);
    api.stop().await;
    auth.stop().await;
}
