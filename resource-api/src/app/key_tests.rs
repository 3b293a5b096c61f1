//! API keys at the partner API: router tests (`oneshot`) over the state of `tests`, with keys
//! resolved at an introspection stub on loopback ([`IntrospectionStub`], which counts its
//! calls), and a server on loopback for what depends on the client's address.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::response::Response;
use tower::ServiceExt;

use super::introspection_stub::{CLIENT_ID, CLIENT_SECRET, IntrospectionStub};
use super::router;
use super::tests::{TestApi, body, header_of, series};
use crate::config::ApiKeySettings;

/// The partner API with keys on (cached for `cache`), and the stub it asks.
struct KeyApi {
    api: TestApi,
    stub: IntrospectionStub,
}

fn key_settings(url: &str, cache: Duration) -> ApiKeySettings {
    ApiKeySettings {
        url: url.to_owned(),
        client_id: CLIENT_ID.into(),
        client_secret: zeroize::Zeroizing::new(CLIENT_SECRET.into()),
        cache,
    }
}

impl KeyApi {
    async fn start(cache: Duration) -> KeyApi {
        let stub = IntrospectionStub::start().await;
        let api = TestApi::build(None, Some(key_settings(&stub.url, cache)), None).await;
        KeyApi { api, stub }
    }

    /// A new active key of `client_id` at `partner` with `scope`.
    fn key(&self, client_id: &str, partner: &str, scope: &str) -> String {
        let key = IntrospectionStub::new_key();
        self.stub.activate(&key, client_id, partner, scope);
        key
    }

    async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Response {
        send(&self.api, path, headers, None).await
    }
}

/// `GET path` with `headers` through the router, from `from` as the edge would have seen it.
async fn send(
    api: &TestApi,
    path: &str,
    headers: &[(&str, &str)],
    from: Option<IpAddr>,
) -> Response {
    let mut request = Request::get(path);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let mut request = request.body(Body::empty()).unwrap();
    if let Some(ip) = from {
        request.extensions_mut().insert(edge::ClientIp(ip));
    }
    router(api.state.clone())
        .unwrap()
        .oneshot(request)
        .await
        .unwrap()
}

fn bearer(credential: &str) -> String {
    format!("Bearer {credential}")
}

fn assert_invalid_token(response: &Response, what: &str) {
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{what}");
    assert!(
        header_of(response, "www-authenticate")
            .starts_with(r#"Bearer realm="partner-api", error="invalid_token""#),
        "{what}: {:?}",
        response.headers()
    );
    assert_eq!(
        header_of(response, "content-type"),
        "application/problem+json",
        "{what}"
    );
}

#[tokio::test]
async fn a_key_in_either_header_reads_me_as_its_client() {
    let api = KeyApi::start(Duration::from_secs(30)).await;
    let key = api.key("cl_acme_key", "acme", "orders:read catalog:read");
    let as_bearer = bearer(&key);
    for headers in [
        [("authorization", as_bearer.as_str())],
        [("x-api-key", key.as_str())],
        [("X-API-Key", key.as_str())],
    ] {
        let response = api.get("/v1/me", &headers).await;
        assert_eq!(response.status(), StatusCode::OK, "{:?}", headers[0].0);
        assert!(response.headers().contains_key("x-ratelimit-remaining"));
        let me = body(response).await;
        assert_eq!(me["client_id"], "cl_acme_key");
        assert_eq!(me["partner_id"], "acme");
        assert_eq!(
            me["scopes"],
            serde_json::json!(["catalog:read", "orders:read"])
        );
    }
    assert_eq!(api.stub.calls(), 1, "one resolution for the three requests");
    let response = api.get("/v1/orders?limit=2", &[("x-api-key", &key)]).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(body(response).await["items"].is_array());
}

#[tokio::test]
async fn a_keys_client_shares_one_rate_limit_with_its_tokens() {
    let stub = IntrospectionStub::start().await;
    let api = TestApi::build(
        None,
        Some(key_settings(&stub.url, Duration::from_secs(30))),
        Some(3),
    )
    .await;
    // The tokens of `TestApi` are those of `cl_test`; the key is of the same client.
    let key = IntrospectionStub::new_key();
    stub.activate(&key, "cl_test", "acme", "orders:read");
    let token = bearer(&api.token("acme", "orders:read"));
    let mut statuses = Vec::new();
    for headers in [
        [("x-api-key", key.as_str())],
        [("authorization", token.as_str())],
        [("x-api-key", key.as_str())],
        [("authorization", token.as_str())],
    ] {
        let response = send(&api, "/v1/me", &headers, None).await;
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            assert!(response.headers().contains_key("retry-after"));
        }
        statuses.push(response.status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 200, 429]);
    // Another client's key has its own budget.
    let other = IntrospectionStub::new_key();
    stub.activate(&other, "cl_other", "acme", "orders:read");
    let response = send(&api, "/v1/me", &[("x-api-key", &other)], None).await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_key_without_the_routes_scope_is_insufficient_scope() {
    let api = KeyApi::start(Duration::from_secs(30)).await;
    let key = api.key("cl_acme_key", "acme", "orders:read");
    for headers in [
        [("x-api-key", key.clone())],
        [("authorization", bearer(&key))],
    ] {
        let headers = [(headers[0].0, headers[0].1.as_str())];
        let response = api.get("/v1/invoices", &headers).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            header_of(&response, "www-authenticate"),
            r#"Bearer realm="partner-api", error="insufficient_scope", scope="invoices:read""#
        );
        assert_eq!(
            header_of(&response, "content-type"),
            "application/problem+json"
        );
    }
}

#[tokio::test]
async fn a_key_reads_its_partners_order_and_another_partners_answers_404() {
    let api = KeyApi::start(Duration::from_secs(30)).await;
    let acme = api.key("cl_acme_key", "acme", "orders:read");
    let globex = api.key("cl_globex_key", "globex", "orders:read");
    // ord_00001 belongs to acme in the seeded data.
    let response = api
        .get("/v1/orders/ord_00001", &[("x-api-key", &acme)])
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body(response).await["partner_id"], "acme");
    let theirs = api
        .get("/v1/orders/ord_00001", &[("x-api-key", &globex)])
        .await;
    let unknown = api
        .get("/v1/orders/ord_99999", &[("x-api-key", &globex)])
        .await;
    assert_eq!(theirs.status(), StatusCode::NOT_FOUND);
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    assert_eq!(body(theirs).await, body(unknown).await);
}

#[tokio::test]
async fn wrong_keys_are_invalid_tokens_and_a_malformed_one_is_never_looked_up() {
    let api = KeyApi::start(Duration::from_secs(30)).await;
    let unknown = IntrospectionStub::new_key();
    let elsewhere = IntrospectionStub::new_key();
    api.stub.answer(
        &elsewhere,
        serde_json::json!({ "active": true, "token_type": "api_key", "client_id": "cl_x",
                            "scope": "orders:read", "partner_id": "acme",
                            "aud": ["billing-api", "other-api"] }),
    );
    let not_a_key = IntrospectionStub::new_key();
    api.stub.answer(
        &not_a_key,
        serde_json::json!({ "active": true, "token_type": "access_token", "client_id": "cl_x",
                            "scope": "orders:read", "partner_id": "acme", "aud": "partner-api" }),
    );
    for (what, key) in [
        ("unknown", &unknown),
        ("for other audiences", &elsewhere),
        ("not of type api_key", &not_a_key),
    ] {
        let response = api.get("/v1/me", &[("x-api-key", key)]).await;
        assert_invalid_token(&response, what);
        let response = api.get("/v1/me", &[("authorization", &bearer(key))]).await;
        assert_invalid_token(&response, what);
        let text = String::from_utf8_lossy(
            &axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .unwrap(),
        )
        .into_owned();
        assert!(!text.contains(&key[4..]), "the key is never echoed: {text}");
    }
    assert_eq!(
        api.stub.calls(),
        3,
        "each wrong key asked once, then remembered"
    );

    // An audience list that holds ours is fine.
    let listed = IntrospectionStub::new_key();
    api.stub.answer(
        &listed,
        serde_json::json!({ "active": true, "token_type": "api_key", "client_id": "cl_x",
                            "scope": "orders:read", "partner_id": "acme",
                            "aud": ["billing-api", "partner-api"] }),
    );
    assert_eq!(
        api.get("/v1/me", &[("x-api-key", &listed)]).await.status(),
        200
    );

    let calls = api.stub.calls();
    let long = format!("{unknown}A");
    for malformed in [
        "pak_x",
        "pak_",
        long.as_str(),
        "pak_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "not-a-key",
        "",
    ] {
        let response = api.get("/v1/me", &[("x-api-key", malformed)]).await;
        assert_invalid_token(&response, malformed);
        if malformed.starts_with("pak_") {
            let response = api
                .get("/v1/me", &[("authorization", &bearer(malformed))])
                .await;
            assert_invalid_token(&response, malformed);
        }
    }
    assert_eq!(
        api.stub.calls(),
        calls,
        "malformed keys are refused without a call"
    );
}

#[tokio::test]
async fn a_key_beside_another_credential_or_twice_is_an_invalid_request() {
    let api = KeyApi::start(Duration::from_secs(30)).await;
    let key = api.key("cl_acme_key", "acme", "orders:read");
    let other = api.key("cl_acme_key", "acme", "orders:read");
    let token = bearer(&api.api.token("acme", "orders:read"));
    let key_bearer = bearer(&key);
    let cases: [(&str, Vec<(&str, &str)>); 5] = [
        (
            "a token and a key",
            vec![("authorization", &token), ("x-api-key", &key)],
        ),
        (
            "a key in both headers",
            vec![("authorization", &key_bearer), ("x-api-key", &key)],
        ),
        (
            "two X-API-Key fields",
            vec![("x-api-key", &key), ("x-api-key", &other)],
        ),
        (
            "two equal X-API-Key fields",
            vec![("x-api-key", &key), ("x-api-key", &key)],
        ),
        (
            "an empty bearer and a key",
            vec![("authorization", "Bearer "), ("x-api-key", &key)],
        ),
    ];
    for (what, headers) in cases {
        let response = api.get("/v1/me", &headers).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{what}");
        assert!(
            header_of(&response, "www-authenticate")
                .starts_with(r#"Bearer realm="partner-api", error="invalid_request""#),
            "{what}"
        );
        assert_eq!(
            header_of(&response, "content-type"),
            "application/problem+json"
        );
    }
    assert_eq!(
        api.stub.calls(),
        0,
        "nothing is looked up for an ambiguous request"
    );
    // Another scheme beside a key is no second credential.
    let response = api
        .get(
            "/v1/me",
            &[("authorization", "Basic Y2w6c2VjcmV0"), ("x-api-key", &key)],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    // Tokens are unaffected by keys being on.
    assert_eq!(
        api.get("/v1/me", &[("authorization", &token)])
            .await
            .status(),
        200
    );

    let text = api.api.state.metrics.registry().render();
    let rejected = |reason: &str| {
        series(
            &text,
            "resource_token_rejections_total",
            &format!("reason=\"{reason}\""),
        )
    };
    assert_eq!(rejected("ambiguous_credentials"), Some(5.0), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_requests_with_one_key_and_concurrent_first_requests_make_one_call() {
    let api = KeyApi::start(Duration::from_secs(3600)).await;
    let key = api.key("cl_acme_key", "acme", "orders:read");
    for _ in 0..1000 {
        let response = api.get("/v1/me", &[("x-api-key", &key)]).await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    assert_eq!(api.stub.calls(), 1);

    // Fifty first requests at once with a new key, the answer held back so they overlap.
    api.stub.delay(Duration::from_millis(300));
    let fresh = Arc::new(api.key("cl_acme_key", "acme", "orders:read"));
    let state = api.api.state.clone();
    let requests = (0..50).map(|_| {
        let state = state.clone();
        let fresh = fresh.clone();
        tokio::spawn(async move {
            let request = Request::get("/v1/me")
                .header("x-api-key", fresh.as_str())
                .body(Body::empty())
                .unwrap();
            router(state)
                .unwrap()
                .oneshot(request)
                .await
                .unwrap()
                .status()
        })
    });
    let requests: Vec<_> = requests.collect();
    for request in requests {
        assert_eq!(request.await.unwrap(), StatusCode::OK);
    }
    assert_eq!(api.stub.calls(), 2, "one call for the fifty");

    let text = api.api.state.metrics.registry().render();
    assert_eq!(
        series(
            &text,
            "resource_api_key_introspections_total",
            "outcome=\"active\""
        ),
        Some(2.0),
        "{text}"
    );
}

#[tokio::test]
async fn while_the_token_service_cannot_be_asked_remembered_keys_work_and_others_get_503() {
    let mut api = KeyApi::start(Duration::from_secs(3600)).await;
    let known = api.key("cl_acme_key", "acme", "orders:read");
    assert_eq!(
        api.get("/v1/me", &[("x-api-key", &known)]).await.status(),
        200
    );

    // The token service answers 500: an outage costs one call per key per second.
    api.stub.fail(true);
    let unknown = IntrospectionStub::new_key();
    let began = Instant::now();
    for _ in 0..20 {
        assert_eq!(
            api.get("/v1/me", &[("x-api-key", &known)]).await.status(),
            200
        );
        let response = api.get("/v1/me", &[("x-api-key", &unknown)]).await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(response.headers().contains_key("retry-after"));
        assert_eq!(
            header_of(&response, "content-type"),
            "application/problem+json"
        );
    }
    let calls = api.stub.calls() - 1;
    assert!(
        calls >= 1 && calls as u64 <= began.elapsed().as_secs() + 1,
        "{calls} calls in {:?}",
        began.elapsed()
    );

    // The token service is gone: the same.
    api.stub.stop().await;
    let response = api
        .get("/v1/me", &[("authorization", &bearer(&known))])
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let another = IntrospectionStub::new_key();
    let response = api.get("/v1/me", &[("x-api-key", &another)]).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.headers().contains_key("retry-after"));
    assert!(!response.headers().contains_key("www-authenticate"));

    let text = api.api.state.metrics.registry().render();
    let reason = |reason: &str| {
        series(
            &text,
            "resource_token_rejections_total",
            &format!("reason=\"{reason}\""),
        )
    };
    assert_eq!(reason("api_key_lookup_unavailable"), Some(21.0), "{text}");
    assert_eq!(
        reason("wrong_api_key"),
        Some(0.0),
        "an outage is no wrong key: {text}"
    );
}

#[tokio::test]
async fn a_resolved_key_is_asked_again_once_its_cache_time_is_over() {
    let api = KeyApi::start(Duration::from_secs(1)).await;
    let key = api.key("cl_acme_key", "acme", "orders:read");
    assert_eq!(
        api.get("/v1/me", &[("x-api-key", &key)]).await.status(),
        200
    );
    let resolved = Instant::now();
    api.stub.deactivate(&key);
    // Until the entry expires the key still works; then the token service's answer counts.
    let deadline = resolved + Duration::from_secs(10);
    let refused_at = loop {
        let response = api.get("/v1/me", &[("x-api-key", &key)]).await;
        if response.status() == StatusCode::UNAUTHORIZED {
            break Instant::now();
        }
        assert_eq!(response.status(), StatusCode::OK);
        assert!(
            Instant::now() < deadline,
            "the key was never asked about again"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        refused_at - resolved >= Duration::from_millis(900),
        "{:?}",
        refused_at - resolved
    );
    assert_eq!(api.stub.calls(), 2);
    // An inactive answer is remembered for at most the cache time (here 1 s): reactivated, the
    // key works again.
    api.stub
        .activate(&key, "cl_acme_key", "acme", "orders:read");
    let deadline = Instant::now() + Duration::from_secs(10);
    while api.get("/v1/me", &[("x-api-key", &key)]).await.status() != StatusCode::OK {
        assert!(
            Instant::now() < deadline,
            "the inactive answer was never forgotten"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn with_keys_off_a_key_is_an_invalid_token_and_x_api_key_is_not_read() {
    let stub = IntrospectionStub::start().await;
    let api = TestApi::build(None, None, None).await;
    let key = IntrospectionStub::new_key();
    stub.activate(&key, "cl_acme_key", "acme", "orders:read");
    let response = send(&api, "/v1/me", &[("authorization", &bearer(&key))], None).await;
    assert_invalid_token(&response, "a pak_ bearer");
    assert_eq!(
        header_of(&response, "www-authenticate"),
        r#"Bearer realm="partner-api", error="invalid_token", error_description="the token is not a well-formed JWS: expected three dot-separated parts""#
    );
    let response = send(&api, "/v1/me", &[("x-api-key", &key)], None).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        header_of(&response, "www-authenticate"),
        r#"Bearer realm="partner-api""#
    );
    // A token with an X-API-Key beside it: the header is ignored.
    let token = bearer(&api.token("acme", "orders:read"));
    let response = send(
        &api,
        "/v1/me",
        &[("authorization", &token), ("x-api-key", &key)],
        None,
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let response = send(
        &api,
        "/v1/me",
        &[("x-api-key", &key), ("x-api-key", &key)],
        None,
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(stub.calls(), 0);
}

#[tokio::test]
async fn a_key_on_an_online_route_is_not_checked_again_as_a_token() {
    let stub = IntrospectionStub::start().await;
    // The online token check asks an address that cannot answer: a key must not reach it.
    let api = TestApi::build(
        Some(vec!["/v1/orders".into()]),
        Some(key_settings(&stub.url, Duration::from_secs(30))),
        None,
    )
    .await;
    let key = IntrospectionStub::new_key();
    stub.activate(&key, "cl_acme_key", "acme", "orders:read");
    for headers in [
        [("x-api-key", key.clone())],
        [("authorization", bearer(&key))],
    ] {
        let response = send(&api, "/v1/orders", &[(headers[0].0, &headers[0].1)], None).await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    let token = bearer(&api.token("acme", "orders:read"));
    let response = send(&api, "/v1/orders", &[("authorization", &token)], None).await;
    assert_eq!(
        response.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "tokens still are"
    );
}

#[tokio::test]
async fn the_description_names_the_key_scheme_only_when_keys_are_on() {
    let on = KeyApi::start(Duration::from_secs(30)).await;
    let off = TestApi::build(None, None, None).await;
    let description = |api: &TestApi| {
        let api = api.state.clone();
        async move {
            let request = Request::get("/openapi.json").body(Body::empty()).unwrap();
            body(router(api).unwrap().oneshot(request).await.unwrap()).await
        }
    };
    let on = description(&on.api).await;
    let off = description(&off).await;
    let scheme = &on["components"]["securitySchemes"]["partner_api_key"];
    assert_eq!(scheme["type"], "apiKey");
    assert_eq!(scheme["in"], "header");
    assert_eq!(scheme["name"], "X-API-Key");
    let orders = &on["paths"]["/v1/orders"]["get"];
    assert_eq!(
        orders["security"],
        serde_json::json!([{ "partner_token": ["orders:read"] }, { "partner_api_key": ["orders:read"] }])
    );
    for status in ["400", "401", "403", "429", "503"] {
        assert!(orders["responses"][status].is_object(), "{status}");
    }
    assert!(
        orders["responses"]["503"]["description"]
            .as_str()
            .unwrap()
            .contains("API key"),
    );
    assert!(orders["responses"]["429"]["headers"]["Retry-After"].is_object());
    assert!(off["components"]["securitySchemes"]["partner_api_key"].is_null());
    assert_eq!(
        off["paths"]["/v1/orders"]["get"]["security"],
        serde_json::json!([{ "partner_token": ["orders:read"] }])
    );
    assert!(!off.to_string().contains("X-API-Key"));
}

/// `GET url` over a connection from `from` (a loopback address of its own), as a partner machine.
fn client_from(from: &str) -> reqwest::Client {
    edge::http_client(Duration::from_secs(5), Duration::from_secs(10))
        .local_address(from.parse::<IpAddr>().unwrap())
        .build()
        .unwrap()
}

/// A wrong-key flood from one address locks that address out (429 with `Retry-After`, before
/// any introspection call) with the token service's budget for failed client authentication (a
/// hundred, then one a second), while other addresses are served: a real server, whose client
/// address comes from the connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_wrong_keys_lock_out_their_address_and_other_addresses_are_served() {
    keys::install_crypto_provider();
    let stub = IntrospectionStub::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut settings = crate::Settings::with_defaults(
        "http://auth.test",
        "http://127.0.0.1:9/jwks.json",
        &format!("sqlite://{}", dir.path().join("resource.db").display()),
    );
    settings.bind = "127.0.0.1:0".parse().unwrap();
    settings.api_keys = Some(key_settings(&stub.url, Duration::from_secs(30)));
    let app = crate::Application::build(settings).await.unwrap();
    let port = app.local_addr().port();
    let server = tokio::spawn(app.run_until(std::future::pending()));

    let valid = IntrospectionStub::new_key();
    stub.activate(&valid, "cl_acme_key", "acme", "orders:read");
    let attacker = client_from("127.0.0.2");
    let partner = client_from("127.0.0.3");
    let url = |host: &str| format!("http://{host}:{port}/v1/me");

    let began = Instant::now();
    let (mut refused, mut locked) = (0u64, 0u64);
    for _ in 0..1000 {
        let response = attacker
            .get(url("127.0.0.1"))
            .header("x-api-key", IntrospectionStub::new_key())
            .send()
            .await
            .unwrap();
        match response.status().as_u16() {
            401 => refused += 1,
            429 => {
                locked += 1;
                assert!(response.headers().contains_key("retry-after"));
                assert_eq!(
                    response.headers()["content-type"],
                    "application/problem+json"
                );
            }
            other => panic!("{other}"),
        }
    }
    // A hundred at once, then about one a second (GCRA's edges allow a few more).
    let most = 105 + 2 * began.elapsed().as_secs();
    assert!(
        (100..=most).contains(&refused),
        "{refused} refused, at most {most}"
    );
    assert_eq!(refused + locked, 1000);
    assert_eq!(
        stub.calls() as u64,
        refused,
        "a locked address causes no introspection call"
    );
    // Locked out with a valid key too (it is the address that is locked, before any lookup).
    let response = attacker
        .get(url("127.0.0.1"))
        .header("x-api-key", &valid)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);

    let response = partner
        .get(url("127.0.0.1"))
        .header("x-api-key", &valid)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "another address is served");
    let response = partner
        .get(url("127.0.0.1"))
        .header("x-api-key", IntrospectionStub::new_key())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401, "and judged on its own budget");
    server.abort();
}
