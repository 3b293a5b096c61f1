//! Router tests: requests go through [`router`] with `oneshot`, no listener and no network, to
//! check how the token service maps requests to statuses, headers and bodies. The state is the
//! one [`Application::build`] makes (it binds a loopback port, which these tests never serve)
//! over a SQLite file in a temporary folder.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use axum::response::Response;
use base64::Engine;
use serde_json::Value;
use shared_claims::{PartnerId, ScopeSet};
use tower::ServiceExt;

use super::{Application, router};
use crate::admin::{self, ClientSpec};
use crate::config::Settings;
use crate::state::AppState;

const FORM: &str = "application/x-www-form-urlencoded";

/// A token service's state over its own database. The folder holds the database and the master
/// key and must outlive the state.
struct TestAuth {
    state: AppState,
    _dir: tempfile::TempDir,
}

impl TestAuth {
    async fn new() -> TestAuth {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = Settings::with_defaults(
            format!("sqlite://{}", dir.path().join("auth.db").display()),
            dir.path().join("master.key"),
        );
        settings.bind = "127.0.0.1:0".parse().unwrap();
        settings.issuer = "http://auth.test".into();
        let app = Application::build(settings).await.unwrap();
        TestAuth {
            state: app.state().clone(),
            _dir: dir,
        }
    }

    /// A client allowed `orders:read`, with its id and secret.
    async fn client(&self) -> (String, String) {
        let spec = ClientSpec {
            name: "acme test client".into(),
            partner_id: PartnerId::parse("acme").unwrap(),
            scopes: ScopeSet::parse("orders:read").unwrap(),
            audiences: vec!["partner-api".into()],
            access_token_ttl: None,
            refresh_enabled: false,
            introspect_allowed: false,
        };
        let (client, secret) = admin::create_client(&self.state.db, spec).await.unwrap();
        (
            client.client_id.as_str().to_owned(),
            secret.expose().to_owned(),
        )
    }

    async fn send(&self, request: axum::http::request::Builder, body: &str) -> Response {
        router(self.state.clone())
            .oneshot(request.body(Body::from(body.to_owned())).unwrap())
            .await
            .unwrap()
    }

    /// A POST of `body` to the token endpoint as a form, with `authorization` if any.
    async fn token(&self, body: &str, authorization: Option<&str>) -> Response {
        let mut request = Request::post("/oauth2/token").header(header::CONTENT_TYPE, FORM);
        if let Some(value) = authorization {
            request = request.header(header::AUTHORIZATION, value);
        }
        self.send(request, body).await
    }
}

fn basic(id: &str, secret: &str) -> String {
    let credentials = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
    format!("Basic {credentials}")
}

fn header_of<'a>(response: &'a Response, name: &str) -> Option<&'a str> {
    response
        .headers()
        .get(name)
        .map(|value| value.to_str().unwrap())
}

async fn json_body(response: Response) -> Value {
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// Checks an RFC 6749 §5.2 error: status, `no-store`, a JSON body and its `error`.
async fn assert_oauth_error(response: Response, status: StatusCode, error: &str) {
    assert_eq!(response.status(), status, "{error}");
    assert_eq!(header_of(&response, "cache-control"), Some("no-store"));
    assert!(
        header_of(&response, "content-type")
            .unwrap()
            .starts_with("application/json")
    );
    assert_eq!(json_body(response).await["error"], error);
}

#[tokio::test]
async fn a_client_credentials_grant_answers_a_bearer_token_not_to_be_stored() {
    let auth = TestAuth::new().await;
    let (id, secret) = auth.client().await;
    let response = auth
        .token("grant_type=client_credentials", Some(&basic(&id, &secret)))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header_of(&response, "cache-control"), Some("no-store"));
    let body = json_body(response).await;
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "orders:read");
    assert!(body["access_token"].as_str().is_some_and(|t| !t.is_empty()));
}

#[tokio::test]
async fn an_unsupported_grant_type_is_unsupported_grant_type() {
    let auth = TestAuth::new().await;
    let response = auth.token("grant_type=password", None).await;
    assert_oauth_error(response, StatusCode::BAD_REQUEST, "unsupported_grant_type").await;
}

#[tokio::test]
async fn missing_credentials_are_invalid_client_without_a_basic_challenge() {
    let auth = TestAuth::new().await;
    let response = auth.token("grant_type=client_credentials", None).await;
    assert_eq!(header_of(&response, "www-authenticate"), None);
    assert_oauth_error(response, StatusCode::UNAUTHORIZED, "invalid_client").await;
}

#[tokio::test]
async fn a_wrong_basic_secret_is_invalid_client_with_a_basic_challenge() {
    let auth = TestAuth::new().await;
    let (id, _) = auth.client().await;
    let response = auth
        .token(
            "grant_type=client_credentials",
            Some(&basic(&id, "pcs_wrong")),
        )
        .await;
    assert!(
        header_of(&response, "www-authenticate")
            .unwrap()
            .starts_with("Basic")
    );
    assert_oauth_error(response, StatusCode::UNAUTHORIZED, "invalid_client").await;
}

#[tokio::test]
async fn a_body_that_is_not_a_form_is_invalid_request() {
    let auth = TestAuth::new().await;
    let (id, secret) = auth.client().await;
    let request = Request::post("/oauth2/token")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::AUTHORIZATION, basic(&id, &secret));
    let response = auth
        .send(request, r#"{"grant_type":"client_credentials"}"#)
        .await;
    assert_oauth_error(response, StatusCode::BAD_REQUEST, "invalid_request").await;
}

#[tokio::test]
async fn a_get_of_the_token_endpoint_is_405() {
    let auth = TestAuth::new().await;
    let response = auth.send(Request::get("/oauth2/token"), "").await;
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn an_unknown_path_is_404_problem_json() {
    let auth = TestAuth::new().await;
    let response = auth.send(Request::get("/v2/nothing"), "").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        header_of(&response, "content-type"),
        Some("application/problem+json")
    );
    assert_eq!(json_body(response).await["status"], 404);
}

#[tokio::test]
async fn the_jwks_is_public_and_cacheable_for_its_max_age() {
    let auth = TestAuth::new().await;
    let response = auth.send(Request::get("/.well-known/jwks.json"), "").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        header_of(&response, "cache-control"),
        Some("public, max-age=300")
    );
    let body = json_body(response).await;
    let keys = body["keys"].as_array().unwrap();
    assert!(!keys.is_empty(), "the first start publishes its keys");
    assert!(
        keys.iter().all(|key| key.get("d").is_none()),
        "public keys only"
    );
}

#[tokio::test]
async fn the_metadata_names_the_issuer_and_its_endpoints() {
    let auth = TestAuth::new().await;
    let response = auth
        .send(Request::get("/.well-known/oauth-authorization-server"), "")
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = json_body(response).await;
    assert_eq!(body["issuer"], "http://auth.test");
    assert_eq!(body["token_endpoint"], "http://auth.test/oauth2/token");
    assert_eq!(body["jwks_uri"], "http://auth.test/.well-known/jwks.json");
}

#[tokio::test]
async fn openid_discovery_answers_the_rfc_8414_document_with_the_same_headers() {
    let auth = TestAuth::new().await;
    // A client makes `scopes_supported` non-empty, so the comparison covers a database read.
    auth.client().await;
    let rfc8414 = auth
        .send(Request::get("/.well-known/oauth-authorization-server"), "")
        .await;
    let openid = auth
        .send(Request::get("/.well-known/openid-configuration"), "")
        .await;
    assert_eq!(openid.status(), StatusCode::OK);
    for name in ["cache-control", "content-type", "x-content-type-options"] {
        assert_eq!(
            header_of(&openid, name),
            header_of(&rfc8414, name),
            "{name}"
        );
    }
    assert_eq!(header_of(&openid, "content-type"), Some("application/json"));
    let (openid, rfc8414) = (json_body(openid).await, json_body(rfc8414).await);
    assert_eq!(openid, rfc8414, "one document in both places");
    // What API Gateway's JWT authorizer reads: the issuer it was configured with (the `iss` of
    // every token) and where the keys are.
    assert_eq!(openid["issuer"], "http://auth.test");
    assert_eq!(openid["jwks_uri"], "http://auth.test/.well-known/jwks.json");
    assert_eq!(openid["token_endpoint"], "http://auth.test/oauth2/token");
    assert_eq!(
        openid["scopes_supported"],
        serde_json::json!(["orders:read"])
    );
    assert!(
        openid["access_token_signing_alg_values_supported"]
            .as_array()
            .unwrap()
            .contains(&"RS256".into())
    );
    // The JWKS it points to is served where it says.
    let jwks = auth.send(Request::get("/.well-known/jwks.json"), "").await;
    assert_eq!(jwks.status(), StatusCode::OK);
}
