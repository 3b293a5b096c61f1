//! The `partner-client` crate against the real services on loopback: tokens reused, renewed
//! before they expire (by the refresh token, or the client credentials when it is refused), one
//! token request however many tasks ask, one retry when the API refuses a token, no failed call
//! while tokens expire or keys rotate, and each error a partner meets as its typed `Error`.
//!
//! Token requests are counted by the token service's own `token.issue` audit events for the
//! client (written before the token response is sent), refresh-token use by the rows of the
//! `refresh_tokens` table.

use crate::common;
use crate::common::system::{TestApi, spawn_resource_api, spawn_system};
use crate::key_lifecycle::{fast_auth, rotate_when_safe};

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{Backend, TestAuth, claims_of, kid_of};
use partner_client::{Client, Config, Error, PageRequest, SecretString};
use reqwest::StatusCode;
use serde_json::Value;

fn config(auth: &TestAuth, api: &TestApi, id: &str, secret: &str) -> Config {
    Config::new(
        auth.url("/oauth2/token"),
        api.base_url.clone(),
        id,
        SecretString::from(secret.to_owned()),
    )
}

/// A partner client for `id`, over the tests' one HTTP client.
fn client(auth: &TestAuth, api: &TestApi, id: &str, secret: &str) -> Client {
    Client::with_http(config(auth, api, id, secret), common::http()).expect("a client")
}

/// How many tokens the token service has issued to `id`.
async fn issued(auth: &TestAuth, id: &str) -> usize {
    // Audit events are written in batches; this waits for those queued so far.
    auth.state.audit.flush().await;
    let trail = auth.state.db.list_audit(Some(id), 10_000).await.unwrap();
    trail.iter().filter(|e| e.action == "token.issue").count()
}

/// The client's refresh tokens as stored: (family, spent) per row.
async fn refresh_rows(auth: &TestAuth, id: &str) -> Vec<(String, bool)> {
    let pool = sqlx::SqlitePool::connect(&auth.db.url).await.unwrap();
    let rows: Vec<(String, Option<i64>)> = sqlx::query_as(
        "SELECT family_id, used_at FROM refresh_tokens WHERE client_id = $1 ORDER BY created_at, id",
    )
    .bind(id)
    .fetch_all(&pool)
    .await
    .unwrap();
    pool.close().await;
    rows.into_iter()
        .map(|(family, used)| (family, used.is_some()))
        .collect()
}

/// Polls the client's current token until it is another than `previous`.
async fn next_token(client: &Client, previous: &str) -> String {
    common::eventually(Duration::from_secs(60), "the token was renewed", || async {
        let token = client.access_token().await.expect("a token");
        (token.secret() != previous).then(|| token.secret().to_owned())
    })
    .await
}

/// A client with an access-token lifetime of `ttl` seconds (and refresh tokens as `refresh`).
async fn short_lived_client(
    auth: &TestAuth,
    scopes: &str,
    ttl: i64,
    refresh: bool,
) -> (String, String) {
    let (client, secret) = auth
        .client_with("acme", scopes, |spec| {
            spec.access_token_ttl = Some(ttl);
            spec.refresh_enabled = refresh;
        })
        .await;
    (
        client.client_id.as_str().to_owned(),
        secret.expose().to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_is_reused_across_calls() {
    let (auth, api) = spawn_system(Backend::Sqlite).await.unwrap();
    let (c, secret) = auth.client("acme", "orders:read").await;
    let id = c.client_id.as_str();
    let client = client(&auth, &api, id, secret.expose());

    let me = client.me().await.unwrap();
    assert_eq!(
        (me.client_id.as_str(), me.partner_id.as_str()),
        (id, "acme")
    );
    let orders = client.orders(&PageRequest::first()).await.unwrap();
    assert!(!orders.items.is_empty());
    assert_eq!(issued(&auth, id).await, 1, "one token for both calls");
    api.stop().await;
    auth.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_typed_call_reads_what_the_api_answers_and_pages_follow_the_cursor() {
    let (auth, api) = spawn_system(Backend::Sqlite).await.unwrap();
    let scopes = "orders:read invoices:read catalog:read inventory:read";
    let (c, secret) = auth.client("globex", scopes).await;
    let client = client(&auth, &api, c.client_id.as_str(), secret.expose());
    let token = client.access_token().await.unwrap();
    // What the API answers, as JSON, for the same token.
    let raw = async |path: &str| -> Value {
        let response = common::get(&api, path, token.secret()).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        response.json().await.unwrap()
    };

    let first = PageRequest::first().limit(2);
    let products = client.products(&first).await.unwrap();
    assert_eq!(json(&products), raw("/v1/products?limit=2").await);
    let second = products.next(&first).expect("more than two products");
    let next = client.products(&second).await.unwrap();
    let cursor = second.cursor.clone().unwrap();
    assert_eq!(
        json(&next),
        raw(&format!("/v1/products?limit=2&cursor={cursor}")).await
    );
    assert_ne!(next.items, products.items);
    let product = client.product(&products.items[0].id).await.unwrap();
    assert_eq!(product, products.items[0]);

    let inventory = client.inventory(&PageRequest::first()).await.unwrap();
    assert_eq!(json(&inventory), raw("/v1/inventory").await);

    let orders = client.orders(&PageRequest::first()).await.unwrap();
    assert_eq!(json(&orders), raw("/v1/orders").await);
    assert!(orders.items.iter().all(|o| o.partner_id == "globex"));
    let order = client.order(&orders.items[0].id).await.unwrap();
    assert_eq!(order, orders.items[0]);

    let invoices = client.invoices(&PageRequest::first()).await.unwrap();
    assert_eq!(json(&invoices), raw("/v1/invoices").await);
    assert!(invoices.items.iter().all(|i| i.partner_id == "globex"));
    let invoice = client.invoice(&invoices.items[0].id).await.unwrap();
    assert_eq!(invoice, invoices.items[0]);

    let me = client.me().await.unwrap();
    assert_eq!(json(&me), raw("/v1/me").await);
    assert_eq!(issued(&auth, c.client_id.as_str()).await, 1);
    api.stop().await;
    auth.stop().await;
}

/// A typed answer as JSON, to compare with what the API sent.
fn json(value: &impl serde::Serialize) -> Value {
    serde_json::to_value(value).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_is_renewed_before_it_expires() {
    let (auth, api) = spawn_system(Backend::Sqlite).await.unwrap();
    // 10 s tokens: renewed when half their life is left (5 s before expiry).
    let (id, secret) = short_lived_client(&auth, "orders:read", 10, false).await;
    let client = client(&auth, &api, &id, &secret);
    let first = client.access_token().await.unwrap().secret().to_owned();
    let second = next_token(&client, &first).await;
    // Judged by the token service's clock: the new token was issued before the first expired.
    let (first, second) = (claims_of(&first), claims_of(&second));
    assert!(
        second["iat"].as_i64().unwrap() < first["exp"].as_i64().unwrap(),
        "renewed at {} while the first token expired at {}",
        second["iat"],
        first["exp"]
    );
    assert_eq!(issued(&auth, &id).await, 2);
    api.stop().await;
    auth.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewal_uses_the_refresh_token_and_falls_back_to_client_credentials_when_it_is_refused() {
    let (auth, api) = spawn_system(Backend::Sqlite).await.unwrap();
    let (id, secret) = short_lived_client(&auth, "orders:read", 4, true).await;
    let client = client(&auth, &api, &id, &secret);

    let first = client.access_token().await.unwrap().secret().to_owned();
    let second = next_token(&client, &first).await;
    // The renewal spent the first refresh token and got its successor in the same family.
    let rows = refresh_rows(&auth, &id).await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[0].0, rows[1].0, "one family: {rows:?}");
    assert_eq!((rows[0].1, rows[1].1), (true, false), "{rows:?}");

    // An admin revokes the client's refresh tokens: the next renewal is refused
    // (invalid_grant) and falls back to the client credentials, which start a new family.
    let revoked = auth_server::admin::revoke_client_tokens(&auth.state.db, &id)
        .await
        .unwrap();
    assert!(revoked >= 1, "{revoked}");
    let third = next_token(&client, &second).await;
    let rows = refresh_rows(&auth, &id).await;
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert_ne!(rows[2].0, rows[0].0, "a new family: {rows:?}");
    assert_eq!(issued(&auth, &id).await, 3);
    assert_eq!(
        common::get(&api, "/v1/orders", &third).await.status(),
        StatusCode::OK
    );
    assert!(client.orders(&PageRequest::first()).await.is_ok());
    api.stop().await;
    auth.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_calls_on_a_cold_cache_make_one_token_request() {
    let (auth, api) = spawn_system(Backend::Sqlite).await.unwrap();
    let (c, secret) = auth.client("acme", "orders:read").await;
    let id = c.client_id.as_str();
    let client = client(&auth, &api, id, secret.expose());
    let calls: Vec<_> = (0..50)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.orders(&PageRequest::first()).await })
        })
        .collect();
    for call in calls {
        let page = call.await.unwrap().expect("every call succeeds");
        assert!(page.items.iter().all(|o| o.partner_id == "acme"));
    }
    assert_eq!(issued(&auth, id).await, 1, "one token request for 50 calls");
    api.stop().await;
    auth.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_refused_after_its_key_is_revoked_is_renewed_and_the_call_retried_once() {
    let auth = fast_auth(Backend::Sqlite).await.unwrap();
    let api = spawn_resource_api(Backend::Sqlite, &auth, |_| {})
        .await
        .unwrap();
    api.wait_ready().await;
    let (c, secret) = auth.client("acme", "orders:read").await;
    let id = c.client_id.as_str();
    let client = client(&auth, &api, id, secret.expose());
    client.me().await.unwrap();
    let cached = client.access_token().await.unwrap().secret().to_owned();
    let compromised = kid_of(&cached);

    let master = keys::MasterKey::load(&auth.db.master_key_path()).unwrap();
    let revocation = auth_server::signing::revoke_key(&auth.state.db, &master, &compromised)
        .await
        .unwrap();
    let promoted = revocation.active.unwrap();
    // The token service signs with the promoted key, and the API refuses the cached token.
    common::eventually(
        Duration::from_secs(30),
        "the token service signs with the promoted key",
        || async { (auth.state.keys.get().active()?.kid() == promoted).then_some(()) },
    )
    .await;
    common::eventually(
        Duration::from_secs(30),
        "the partner API refuses the revoked key's token",
        || async {
            let status = common::get(&api, "/v1/me", &cached).await.status();
            (status == StatusCode::UNAUTHORIZED).then_some(())
        },
    )
    .await;
    assert_eq!(issued(&auth, id).await, 1);

    // The client still holds the refused token (it is far from expiry); the call succeeds.
    assert_eq!(client.access_token().await.unwrap().secret(), cached);
    let me = client
        .me()
        .await
        .expect("the call succeeds after one retry");
    assert_eq!(me.client_id, id);
    assert_eq!(issued(&auth, id).await, 2, "exactly one new token");
    let renewed = client.access_token().await.unwrap();
    assert_eq!(kid_of(renewed.secret()), promoted);
    api.stop().await;
    auth.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_the_api_never_accepts_is_retried_once_then_reported_as_invalid_token() {
    let (auth, api) = spawn_system(Backend::Sqlite).await.unwrap();
    // Tokens addressed to another API: the partner API refuses every one of them.
    let (c, secret) = auth
        .client_with("acme", "orders:read", |spec| {
            spec.audiences = vec!["billing-api".into()];
        })
        .await;
    let id = c.client_id.as_str();
    let client = client(&auth, &api, id, secret.expose());
    let err = client.orders(&PageRequest::first()).await.unwrap_err();
    let Error::Api {
        status, challenge, ..
    } = &err
    else {
        panic!("an API error: {err:?}");
    };
    assert_eq!(*status, StatusCode::UNAUTHORIZED);
    assert_eq!(err.oauth_error(), Some("invalid_token"), "{challenge:?}");
    assert_eq!(issued(&auth, id).await, 2, "one retry with one new token");
    api.stop().await;
    auth.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_go_on_without_failure_while_tokens_expire() {
    let (auth, api) = spawn_system(Backend::Sqlite).await.unwrap();
    // 2-second tokens: each lives through a part of the loop below.
    let (id, secret) = short_lived_client(&auth, "orders:read", 2, false).await;
    let client = client(&auth, &api, &id, &secret);
    let calls = std::sync::atomic::AtomicU64::new(0);
    common::eventually(Duration::from_secs(60), "four tokens in turn", || async {
        client
            .orders(&PageRequest::first().limit(1))
            .await
            .expect("no call fails");
        calls.fetch_add(1, Ordering::Relaxed);
        (issued(&auth, &id).await >= 4).then_some(())
    })
    .await;
    let calls = calls.into_inner();
    eprintln!("partner client: {calls} calls over 4 tokens, none failed");
    api.stop().await;
    auth.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_go_on_without_failure_through_key_rotations() {
    let auth = fast_auth(Backend::Sqlite).await.unwrap();
    let api = spawn_resource_api(Backend::Sqlite, &auth, |_| {})
        .await
        .unwrap();
    api.wait_ready().await;
    // 2-second tokens, so tokens of each new key are in use while the next rotation happens.
    let (id, secret) = short_lived_client(&auth, "orders:read", 2, true).await;
    let client = client(&auth, &api, &id, &secret);
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (client, stop) = (client.clone(), stop.clone());
            tokio::spawn(async move {
                let (mut calls, mut failures, mut kids) = (0u64, Vec::new(), BTreeSet::new());
                while !stop.load(Ordering::Relaxed) {
                    match client.orders(&PageRequest::first().limit(1)).await {
                        Ok(_) => {}
                        Err(err) => failures.push(err.to_string()),
                    }
                    calls += 1;
                    let token = client.access_token().await.unwrap();
                    kids.insert(kid_of(token.secret()));
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                (calls, failures, kids)
            })
        })
        .collect();

    let mut active = vec![auth.state.keys.get().active().unwrap().kid().to_owned()];
    for _ in 0..2 {
        active.push(rotate_when_safe(&auth).await.active);
    }
    // Until the client's tokens are signed by the last key.
    let last = active.last().unwrap().clone();
    common::eventually(Duration::from_secs(60), "a token of the last key", || {
        let (client, last) = (&client, &last);
        async move {
            let token = client.access_token().await.unwrap();
            (kid_of(token.secret()) == *last).then_some(())
        }
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    let (mut calls, mut failures, mut kids) = (0, Vec::new(), BTreeSet::new());
    for worker in workers {
        let (c, f, k) = worker.await.unwrap();
        calls += c;
        failures.extend(f);
        kids.extend(k);
    }
    assert!(
        failures.is_empty(),
        "{} failed: {failures:?}",
        failures.len()
    );
    for kid in &active {
        assert!(kids.contains(kid), "no call used a token of {kid}");
    }
    eprintln!("partner client: {calls} calls through 2 rotations, none failed");
    api.stop().await;
    auth.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_secret_is_an_invalid_client_error_that_never_shows_the_secret() {
    let (auth, api) = spawn_system(Backend::Sqlite).await.unwrap();
    let (c, secret) = auth.client("acme", "orders:read").await;
    let wrong = format!("{}x", secret.expose());
    let client = client(&auth, &api, c.client_id.as_str(), &wrong);
    let err = client.me().await.unwrap_err();
    let Error::OAuth { status, error, .. } = &err else {
        panic!("an OAuth error: {err:?}");
    };
    assert_eq!(
        (*status, error.as_str()),
        (StatusCode::UNAUTHORIZED, "invalid_client")
    );
    for shown in [
        err.to_string(),
        format!("{err:?}"),
        format!("{client:?}"),
        format!("{:?}", config(&auth, &api, "id", &wrong)),
    ] {
        assert!(!shown.contains(&wrong), "the secret is shown: {shown}");
        assert!(
            !shown.contains(secret.expose()),
            "the secret is shown: {shown}"
        );
    }
    assert_eq!(issued(&auth, c.client_id.as_str()).await, 0);
    api.stop().await;
    auth.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_scope_is_a_403_insufficient_scope_error_naming_the_scope() {
    let (auth, api) = spawn_system(Backend::Sqlite).await.unwrap();
    let (c, secret) = auth.client("acme", "catalog:read").await;
    let client = client(&auth, &api, c.client_id.as_str(), secret.expose());
    let err = client.orders(&PageRequest::first()).await.unwrap_err();
    let Error::Api {
        status,
        challenge: Some(challenge),
        ..
    } = &err
    else {
        panic!("an API error with a challenge: {err:?}");
    };
    assert_eq!(*status, StatusCode::FORBIDDEN);
    assert_eq!(challenge.error.as_deref(), Some("insufficient_scope"));
    assert_eq!(challenge.scope.as_deref(), Some("orders:read"));
    assert!(err.to_string().contains("orders:read"), "{err}");
    // A 403 is not retried: the token was fine.
    assert_eq!(issued(&auth, c.client_id.as_str()).await, 1);
    api.stop().await;
    auth.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_id_and_another_partners_order_are_404_problems() {
    let (auth, api) = spawn_system(Backend::Sqlite).await.unwrap();
    let (acme, acme_secret) = auth.client("acme", "orders:read").await;
    let (globex, globex_secret) = auth.client("globex", "orders:read").await;
    let acme = client(&auth, &api, acme.client_id.as_str(), acme_secret.expose());
    let globex = client(
        &auth,
        &api,
        globex.client_id.as_str(),
        globex_secret.expose(),
    );
    let theirs = globex.orders(&PageRequest::first()).await.unwrap().items[0]
        .id
        .clone();
    for id in ["ord_99999", theirs.as_str(), "../v1/me"] {
        let err = acme.order(id).await.unwrap_err();
        let Error::Api {
            status,
            problem: Some(problem),
            ..
        } = &err
        else {
            panic!("an API problem for {id}: {err:?}");
        };
        assert_eq!(*status, StatusCode::NOT_FOUND, "{id}");
        assert_eq!(problem.status, Some(404), "{id}");
    }
    api.stop().await;
    auth.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_rate_limit_is_a_rate_limited_error_with_retry_after() {
    let auth = common::spawn_auth_server(Backend::Sqlite).await.unwrap();
    let api = spawn_resource_api(Backend::Sqlite, &auth, |settings| {
        let one = std::num::NonZeroU32::new(1).unwrap();
        settings.rate_limit_per_second = one;
        settings.rate_limit_burst = one;
    })
    .await
    .unwrap();
    api.wait_ready().await;
    let (c, secret) = auth.client("acme", "orders:read").await;
    let client = client(&auth, &api, c.client_id.as_str(), secret.expose());
    // One request a second, no burst: of ten in a row, some are refused.
    let mut refused = None;
    for _ in 0..10 {
        if let Err(err) = client.me().await {
            refused = Some(err);
            break;
        }
    }
    let err = refused.expect("a call over the limit is refused");
    let Error::RateLimited { retry_after } = err else {
        panic!("rate limited: {err:?}");
    };
    assert!(retry_after.is_some_and(|after| after >= Duration::from_secs(1)));
    api.stop().await;
    auth.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_api_is_a_transport_error_and_a_bad_url_a_config_error() {
    let (auth, api) = spawn_system(Backend::Sqlite).await.unwrap();
    let (c, secret) = auth.client("acme", "orders:read").await;
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let mut unreachable = config(&auth, &api, c.client_id.as_str(), secret.expose());
    unreachable.api_url = format!("http://{closed}");
    let client = Client::with_http(unreachable, common::http()).unwrap();
    let err = client.me().await.unwrap_err();
    assert!(matches!(err, Error::Transport(_)), "{err:?}");

    let mut bad = config(&auth, &api, c.client_id.as_str(), secret.expose());
    bad.token_url = "auth.example.com/oauth2/token".into();
    let err = Client::new(bad).unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err:?}");
    api.stop().await;
    auth.stop().await;
}
