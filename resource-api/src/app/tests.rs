//! Router tests: requests go through [`router`] with `oneshot`, no listener and no network. The
//! state is real except where the network would come in: the JWKS is preloaded with the public
//! key of a key generated here, and the store is a seeded SQLite file in a temporary folder.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use axum::response::Response;
use keys::{Algorithm, SigningKey};
use serde_json::{Value, json};
use shared_claims::{AccessTokenClaims, Audience, ClientId, PartnerId, ScopeSet};
use tower::ServiceExt;

use super::router;
use crate::introspection::Introspector;
use crate::jwks::JwksCache;
use crate::metrics::ApiMetrics;
use crate::state::{AppState, Introspection, Shared};
use crate::store::Store;
use crate::verify::Verifier;

const ISSUER: &str = "http://auth.test";
const AUDIENCE: &str = "partner-api";

/// A partner API state over its own database, trusting `key` only. The folder holds the database
/// and must outlive the state.
pub(super) struct TestApi {
    pub(super) state: AppState,
    key: SigningKey,
    _dir: tempfile::TempDir,
}

impl TestApi {
    async fn new(online_routes: Option<Vec<String>>) -> TestApi {
        TestApi::build(online_routes, None, None).await
    }

    /// With API keys resolved at `keys`' URL when given (see `key_tests`), and a burst of
    /// `burst` requests per client (then one a minute) when given; else no effective limit.
    pub(super) async fn build(
        online_routes: Option<Vec<String>>,
        keys: Option<crate::config::ApiKeySettings>,
        burst: Option<u32>,
    ) -> TestApi {
        keys::install_crypto_provider();
        let key = SigningKey::generate(Algorithm::ES256).unwrap();
        let jwks = serde_json::to_vec(&keys::jwk_set([key.public_jwk()])).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&format!(
            "sqlite://{}",
            dir.path().join("resource.db").display()
        ))
        .await
        .unwrap();
        let verifier = Verifier::new(
            JwksCache::preloaded(&jwks).unwrap(),
            ISSUER.into(),
            AUDIENCE.into(),
            shared_claims::DEFAULT_LEEWAY_SECS,
            100,
        );
        // An introspector only sends requests when an online route is called, which these tests
        // do not do; its URL cannot answer.
        let introspection = online_routes.map(|routes| {
            Arc::new(Introspection {
                introspector: Introspector::new(
                    "http://introspection.invalid/".into(),
                    "cl_api".into(),
                    zeroize::Zeroizing::new("pcs_x".into()),
                    Duration::from_secs(1),
                )
                .unwrap(),
                routes,
            })
        });
        let unlimited = NonZeroU32::new(1_000_000).unwrap();
        // Metrics on, as a server with RESOURCE_METRICS_BIND has them.
        let metrics = ApiMetrics::new_registry();
        let api_metrics = ApiMetrics::new(metrics.clone());
        let api_keys = keys.map(|keys| {
            Arc::new(
                crate::api_keys::ApiKeys::new(
                    &keys,
                    ISSUER,
                    AUDIENCE,
                    None,
                    api_metrics.key_introspections().clone(),
                )
                .unwrap(),
            )
        });
        let state = AppState::new(Shared {
            envelope: edge::Envelope::new(
                &edge::Transport::default(),
                Duration::from_secs(10),
                1024,
                16 * 1024,
            )
            .no_store_by_default()
            .with_metrics(metrics.clone()),
            store,
            verifier,
            rate_limit: shared_limits::RateLimiter::new(
                burst.map_or(
                    shared_limits::Rate::per_second(unlimited, unlimited),
                    |burst| shared_limits::Rate::every(Duration::from_secs(60), burst),
                ),
                None,
            ),
            introspection,
            api_keys,
            metrics: api_metrics,
        });
        TestApi {
            state,
            key,
            _dir: dir,
        }
    }

    /// A token as the token service would issue it, valid for ten minutes from now.
    pub(super) fn token(&self, partner: &str, scopes: &str) -> String {
        let now = chrono::Utc::now().timestamp();
        self.token_with(partner, scopes, |_| {}, now)
    }

    fn token_with(
        &self,
        partner: &str,
        scopes: &str,
        adjust: impl FnOnce(&mut AccessTokenClaims),
        now: i64,
    ) -> String {
        let mut claims = AccessTokenClaims {
            iss: ISSUER.into(),
            sub: "cl_test".into(),
            aud: Audience::One(AUDIENCE.into()),
            exp: now + 600,
            iat: now,
            nbf: now,
            jti: "jti_test".into(),
            client_id: ClientId::parse("cl_test").unwrap(),
            scope: ScopeSet::parse(scopes).unwrap(),
            partner_id: PartnerId::parse(partner).unwrap(),
            cnf: None,
        };
        adjust(&mut claims);
        self.key.sign_jwt(&claims).unwrap()
    }

    pub(super) async fn get(&self, path: &str, authorization: Option<&str>) -> Response {
        let mut request = Request::get(path);
        if let Some(value) = authorization {
            request = request.header(header::AUTHORIZATION, value);
        }
        router(self.state.clone())
            .unwrap()
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap()
    }
}

pub(super) fn header_of<'a>(response: &'a Response, name: &str) -> &'a str {
    response.headers()[name].to_str().unwrap()
}

pub(super) async fn body(response: Response) -> Value {
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn a_request_without_a_token_gets_the_bare_bearer_challenge() {
    let api = TestApi::new(None).await;
    for authorization in [None, Some("Basic Y2xfdGVzdDpzZWNyZXQ=")] {
        let response = api.get("/v1/orders", authorization).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            header_of(&response, "www-authenticate"),
            r#"Bearer realm="partner-api""#
        );
        assert_eq!(
            header_of(&response, "content-type"),
            "application/problem+json"
        );
        assert_eq!(body(response).await["status"], 401);
    }
}

#[tokio::test]
async fn malformed_expired_and_misaddressed_tokens_are_invalid_tokens() {
    let api = TestApi::new(None).await;
    let now = chrono::Utc::now().timestamp();
    let expired = api.token_with("acme", "orders:read", |_| {}, now - 3600);
    let elsewhere = api.token_with(
        "acme",
        "orders:read",
        |c| c.aud = Audience::One("another-api".into()),
        now,
    );
    for token in ["not-a-jwt", "a.b.c", &expired, &elsewhere] {
        let response = api
            .get("/v1/orders", Some(&format!("Bearer {token}")))
            .await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{token}");
        assert!(
            header_of(&response, "www-authenticate")
                .starts_with(r#"Bearer realm="partner-api", error="invalid_token""#),
            "{token}"
        );
        assert_eq!(
            header_of(&response, "content-type"),
            "application/problem+json"
        );
    }
}

#[tokio::test]
async fn an_unknown_route_is_a_problem_404_with_or_without_a_token() {
    let api = TestApi::new(None).await;
    let token = format!("Bearer {}", api.token("acme", "orders:read"));
    for (path, authorization) in [("/v1/nope", Some(token.as_str())), ("/nope", None)] {
        let response = api.get(path, authorization).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        assert_eq!(
            header_of(&response, "content-type"),
            "application/problem+json"
        );
        assert_eq!(
            body(response).await,
            json!({ "type": "about:blank", "title": "Not Found", "status": 404 })
        );
    }
}

#[tokio::test]
async fn a_valid_token_without_the_routes_scope_is_insufficient_scope() {
    let api = TestApi::new(None).await;
    let token = format!("Bearer {}", api.token("acme", "catalog:read"));
    let response = api.get("/v1/orders", Some(&token)).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        header_of(&response, "www-authenticate"),
        r#"Bearer realm="partner-api", error="insufficient_scope", scope="orders:read""#
    );
    assert_eq!(
        header_of(&response, "content-type"),
        "application/problem+json"
    );
    assert_eq!(body(response).await["status"], 403);
}

#[tokio::test]
async fn a_partner_reads_its_own_order_and_another_partners_answers_404() {
    let api = TestApi::new(None).await;
    // ord_00001 belongs to acme in the seeded data.
    let acme = format!("Bearer {}", api.token("acme", "orders:read"));
    let response = api.get("/v1/orders/ord_00001", Some(&acme)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header_of(&response, "content-type"), "application/json");
    assert!(response.headers().contains_key("x-ratelimit-remaining"));
    let order = body(response).await;
    assert_eq!(order["id"], "ord_00001");
    assert_eq!(order["partner_id"], "acme");

    let globex = format!("Bearer {}", api.token("globex", "orders:read"));
    let theirs = api.get("/v1/orders/ord_00001", Some(&globex)).await;
    let unknown = api.get("/v1/orders/ord_99999", Some(&globex)).await;
    assert_eq!(theirs.status(), StatusCode::NOT_FOUND);
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    assert_eq!(body(theirs).await, body(unknown).await);
}

#[tokio::test]
async fn an_online_route_that_is_not_declared_refuses_the_router() {
    let api = TestApi::new(Some(vec!["/v1/invoices".into(), "/v1/invoice".into()])).await;
    let err = router(api.state.clone()).expect_err("a misspelt route");
    assert_eq!(err.route, "/v1/invoice");
    assert!(err.to_string().contains("not a route"), "{err}");

    let declared = TestApi::new(Some(vec!["/v1/invoices/{id}".into()])).await;
    assert!(router(declared.state.clone()).is_ok());
}

/// The value of the series `name{labels}` in `text` (labels as rendered, after `service`).
pub(super) fn series(text: &str, name: &str, labels: &str) -> Option<f64> {
    let prefix = format!("{name}{{service=\"resource\",{labels}}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .map(|value| value.parse().unwrap())
}

#[tokio::test]
async fn requests_are_counted_by_route_template_and_refusals_by_reason() {
    let api = TestApi::new(None).await;
    let acme = format!("Bearer {}", api.token("acme", "orders:read"));
    let catalog = format!("Bearer {}", api.token("acme", "catalog:read"));
    let now = chrono::Utc::now().timestamp();
    let expired = format!(
        "Bearer {}",
        api.token_with("acme", "orders:read", |_| {}, now - 3600)
    );
    assert_eq!(
        api.get("/v1/orders/ord_00001", Some(&acme)).await.status(),
        200
    );
    assert_eq!(
        api.get("/v1/orders/ord_99999", Some(&acme)).await.status(),
        404
    );
    assert_eq!(api.get("/v1/orders", None).await.status(), 401);
    assert_eq!(api.get("/v1/orders", Some(&expired)).await.status(), 401);
    assert_eq!(
        api.get("/v1/orders", Some("Bearer a.b.c")).await.status(),
        401
    );
    assert_eq!(api.get("/v1/orders", Some(&catalog)).await.status(), 403);
    assert_eq!(api.get("/v1/nope/../x", None).await.status(), 404);

    let text = api.state.metrics.registry().render();
    let requests = |labels: &str| series(&text, "resource_requests_total", labels);
    assert_eq!(
        requests("route=\"/v1/orders/{id}\",status=\"200\""),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        requests("route=\"/v1/orders/{id}\",status=\"404\""),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        requests("route=\"/v1/orders\",status=\"401\""),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        requests("route=\"/v1/orders\",status=\"403\""),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        requests("route=\"unmatched\",status=\"404\""),
        Some(1.0),
        "{text}"
    );
    assert!(
        !text.contains("ord_0000") && !text.contains("/v1/nope"),
        "{text}"
    );
    let rejected = |reason: &str| {
        series(
            &text,
            "resource_token_rejections_total",
            &format!("reason=\"{reason}\""),
        )
    };
    assert_eq!(rejected("missing"), Some(1.0), "{text}");
    assert_eq!(rejected("expired"), Some(1.0), "{text}");
    assert_eq!(rejected("malformed"), Some(1.0), "{text}");
    assert_eq!(rejected("insufficient_scope"), Some(1.0), "{text}");
    assert_eq!(rejected("bad_signature"), Some(0.0), "{text}");
    let durations = |labels: &str| series(&text, "http_request_duration_seconds_count", labels);
    assert_eq!(
        durations("route=\"/v1/orders/{id}\",method=\"GET\",status=\"200\""),
        Some(1.0),
        "{text}"
    );
    assert!(
        text.contains("http_request_duration_seconds_bucket{service=\"resource\",route=\"/v1/orders/{id}\",method=\"GET\",status=\"200\",le=\"0.005\"}"),
        "a histogram with buckets, not a summary: {text}"
    );
}
