//! End-to-end tests of the partner API with the token service, both in-process over real HTTP.

use crate::common;
use crate::common::system;

use common::{Backend, TestAuth};
use reqwest::StatusCode;
use serde_json::{Value, json};
use system::{TestApi, spawn_system};

on_both_backends!(
    a_token_opens_every_route_its_scopes_allow_and_only_those,
    partners_never_see_each_others_orders_or_invoices,
    lists_paginate_with_opaque_cursors_and_refuse_bad_parameters,
);

const ALL_ROUTES: [(&str, Option<&str>); 8] = [
    ("/v1/me", None),
    ("/v1/products", Some("catalog:read")),
    ("/v1/products/prd_0001", Some("catalog:read")),
    ("/v1/inventory", Some("inventory:read")),
    ("/v1/orders", Some("orders:read")),
    ("/v1/orders/ord_00001", Some("orders:read")),
    ("/v1/invoices", Some("invoices:read")),
    ("/v1/invoices/inv_00001", Some("invoices:read")),
];

async fn get_json(api: &TestApi, path: &str, token: &str) -> Value {
    let response = common::get(api, path, token).await;
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    response.json().await.expect("JSON body")
}

async fn token_for(auth: &TestAuth, partner: &str, scopes: &str) -> String {
    let (client, secret) = auth.client(partner, scopes).await;
    common::token(auth, client.client_id.as_str(), secret.expose()).await
}

async fn a_token_opens_every_route_its_scopes_allow_and_only_those(backend: Backend) {
    let Some((auth, api)) = spawn_system(backend).await else {
        return;
    };
    // ord_00001 and inv_00001 belong to acme in the seeded data.
    for scopes in [
        "catalog:read inventory:read orders:read invoices:read",
        "catalog:read",
        "orders:read invoices:read",
    ] {
        let token = token_for(&auth, "acme", scopes).await;
        for (path, needed) in ALL_ROUTES {
            let response = common::get(&api, path, &token).await;
            let allowed = needed.is_none_or(|scope| scopes.split(' ').any(|s| s == scope));
            if allowed {
                assert_eq!(response.status(), StatusCode::OK, "{scopes}: {path}");
                assert!(response.headers().get("x-ratelimit-remaining").is_some());
            } else {
                assert_eq!(response.status(), StatusCode::FORBIDDEN, "{scopes}: {path}");
                let challenge = response.headers()["www-authenticate"]
                    .to_str()
                    .unwrap()
                    .to_owned();
                assert_eq!(
                    challenge,
                    format!(
                        "Bearer realm=\"partner-api\", error=\"insufficient_scope\", scope=\"{}\"",
                        needed.unwrap()
                    )
                );
                assert_eq!(
                    response.headers()["content-type"],
                    "application/problem+json"
                );
                let body: Value = response.json().await.unwrap();
                assert_eq!(body["status"], 403);
            }
        }
    }
    let (client, secret) = auth.client("globex", "catalog:read orders:read").await;
    let token = common::token(&auth, client.client_id.as_str(), secret.expose()).await;
    let me = get_json(&api, "/v1/me", &token).await;
    assert_eq!(me["client_id"], client.client_id.as_str());
    assert_eq!(me["partner_id"], "globex");
    assert_eq!(me["scopes"], json!(["catalog:read", "orders:read"]));
    assert!(me["expires_at"].as_str().unwrap().contains('T'));
    let product = get_json(&api, "/v1/products/prd_0001", &token).await;
    assert_eq!(product["id"], "prd_0001");
    api.stop().await;
    auth.stop().await;
}

/// Every item of a list, following `next_cursor`.
async fn collect(api: &TestApi, path: &str, token: &str) -> Vec<Value> {
    let mut items = Vec::new();
    let mut url = format!("{path}?limit=7");
    loop {
        let page = get_json(api, &url, token).await;
        items.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(cursor) => url = format!("{path}?limit=7&cursor={cursor}"),
            None => return items,
        }
    }
}

async fn partners_never_see_each_others_orders_or_invoices(backend: Backend) {
    let Some((auth, api)) = spawn_system(backend).await else {
        return;
    };
    let scopes = "orders:read invoices:read";
    let tokens = [
        ("acme", token_for(&auth, "acme", scopes).await),
        ("globex", token_for(&auth, "globex", scopes).await),
        ("initech", token_for(&auth, "initech", scopes).await),
    ];
    for kind in ["orders", "invoices"] {
        let mut seen: Vec<(String, String)> = Vec::new();
        for (partner, token) in &tokens {
            let items = collect(&api, &format!("/v1/{kind}"), token).await;
            assert!(!items.is_empty(), "{partner} has {kind}");
            for item in &items {
                assert_eq!(item["partner_id"], *partner, "{kind} list of {partner}");
                let id = item["id"].as_str().unwrap().to_owned();
                let one = get_json(&api, &format!("/v1/{kind}/{id}"), token).await;
                assert_eq!(one["partner_id"], *partner);
                seen.push((partner.to_string(), id));
            }
        }
        // Another partner's id answers exactly like an id that does not exist.
        let unknown = common::get(
            &api,
            &format!("/v1/{kind}/{}_99999", &kind[..3]),
            &tokens[0].1,
        )
        .await;
        assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
        let unknown_body = unknown.text().await.unwrap();
        for (owner, id) in &seen {
            for (partner, token) in &tokens {
                if partner == owner {
                    continue;
                }
                let response = common::get(&api, &format!("/v1/{kind}/{id}"), token).await;
                assert_eq!(
                    response.status(),
                    StatusCode::NOT_FOUND,
                    "{partner} reading {owner}'s {id}"
                );
                assert_eq!(
                    response.headers()["content-type"],
                    "application/problem+json"
                );
                assert_eq!(response.text().await.unwrap(), unknown_body);
            }
        }
    }
    api.stop().await;
    auth.stop().await;
}

async fn lists_paginate_with_opaque_cursors_and_refuse_bad_parameters(backend: Backend) {
    let Some((auth, api)) = spawn_system(backend).await else {
        return;
    };
    let token = token_for(&auth, "initech", "catalog:read inventory:read").await;
    let products = collect(&api, "/v1/products", &token).await;
    assert_eq!(products.len(), 50, "seeded products, each once");
    let mut ids: Vec<&str> = products.iter().map(|p| p["id"].as_str().unwrap()).collect();
    ids.dedup();
    assert_eq!(ids.len(), 50);
    let stock = collect(&api, "/v1/inventory", &token).await;
    assert_eq!(stock.len(), 50);
    let first = get_json(&api, "/v1/products", &token).await;
    assert_eq!(
        first["items"].as_array().unwrap().len(),
        20,
        "default page size"
    );
    let all = get_json(&api, "/v1/products?limit=100", &token).await;
    assert_eq!(all["items"].as_array().unwrap().len(), 50);
    assert!(all["next_cursor"].is_null());
    let sneaky = "x%27%20OR%20%271%27%3D%271";
    for query in [
        "limit=0",
        "limit=101",
        "limit=-1",
        "limit=ten",
        "cursor=%%%",
        &format!("cursor={sneaky}"),
    ] {
        let response = common::get(&api, &format!("/v1/products?{query}"), &token).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
    }
    let response = common::get(&api, "/v1/products/nope%27%20OR%201=1", &token).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let response = common::get(&api, &format!("/v1/products/{}", "x".repeat(500)), &token).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    api.stop().await;
    auth.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reused_token_is_verified_once_and_refused_once_it_expires() {
    let auth = common::spawn_auth_server(Backend::Sqlite).await.unwrap();
    let api = system::spawn_resource_api(Backend::Sqlite, &auth, |settings| {
        settings.leeway_secs = 0;
    })
    .await
    .unwrap();
    api.wait_ready().await;
    // A token of the default lifetime (ten minutes), so the loop's length does not matter.
    let token = token_for(&auth, "acme", "orders:read").await;
    let checks_before = api.state.verifier.full_checks();
    for _ in 0..50 {
        assert_eq!(
            common::get(&api, "/v1/me", &token).await.status(),
            StatusCode::OK
        );
    }
    assert_eq!(
        api.state.verifier.full_checks() - checks_before,
        1,
        "50 uses of one token, one signature check"
    );
    // A one-character change is a different token: verified in full, and refused.
    let mut forged = token.clone().into_bytes();
    let last = forged.len() - 1;
    forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    assert_eq!(
        common::get(&api, "/v1/me", &forged).await.status(),
        StatusCode::UNAUTHORIZED
    );

    // A cached token stops working when it expires (no leeway here). It is used every 100 ms
    // until a request goes out a second after `exp`; each answer is judged by the clock, not by
    // how many requests were expected to fit: one that arrived before `exp` must be 200, one
    // sent after `exp + 1` must be 401, and one that straddles `exp` may be either.
    let (client, secret) = auth
        .client_with("acme", "orders:read", |spec| {
            spec.access_token_ttl = Some(5)
        })
        .await;
    let short = common::token(&auth, client.client_id.as_str(), secret.expose()).await;
    let exp = common::claims_of(&short)["exp"].as_f64().unwrap();
    let (mut served, mut refused) = (0, 0);
    loop {
        let sent = common::unix_time();
        let response = common::get(&api, "/v1/me", &short).await;
        let answered = common::unix_time();
        if answered < exp {
            assert_eq!(response.status(), StatusCode::OK, "before exp");
            served += 1;
        } else if sent >= exp + 1.0 {
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "after exp");
            let challenge = response.headers()["www-authenticate"].to_str().unwrap();
            assert!(challenge.contains("invalid_token"), "{challenge}");
            refused += 1;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(served > 0, "no answer arrived within the token's 5 s");
    assert_eq!(refused, 1);
    api.stop().await;
    auth.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_cache_off_every_request_is_verified_in_full() {
    let auth = common::spawn_auth_server(Backend::Sqlite).await.unwrap();
    let api = system::spawn_resource_api(Backend::Sqlite, &auth, |settings| {
        settings.token_cache_size = 0;
    })
    .await
    .unwrap();
    api.wait_ready().await;
    let token = token_for(&auth, "acme", "orders:read").await;
    let checks_before = api.state.verifier.full_checks();
    for _ in 0..10 {
        assert_eq!(
            common::get(&api, "/v1/me", &token).await.status(),
            StatusCode::OK
        );
    }
    assert_eq!(api.state.verifier.full_checks() - checks_before, 10);
    api.stop().await;
    auth.stop().await;
}
