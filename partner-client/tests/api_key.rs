//! The client with an API key, against a stand-in for the partner API on loopback that answers
//! as the API documents for keys: the page for a good key, 401 `invalid_token` for a wrong one,
//! 403 `insufficient_scope`, 429 and 503 with `Retry-After`. The stand-in also has a token
//! endpoint, which an API-key client must never call.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use partner_client::{ApiKeyConfig, Client, Config, Error, PageRequest, SecretString};
use serde_json::{Value, json};

const GOOD_KEY: &str = "pak_good_0123456789abcdefABCDEF";
const UNSCOPED_KEY: &str = "pak_unscoped_0123456789abcdef";
const LIMITED_KEY: &str = "pak_limited_0123456789abcdef";
const UNCHECKABLE_KEY: &str = "pak_uncheckable_0123456789abcdef";
const WRONG_KEY: &str = "pak_wrong_0123456789abcdef";

/// How the stand-in answers a credential (an API key, or the token it issued).
#[derive(Clone, Copy)]
enum Answer {
    Orders,
    NoScope,
    Limited,
    Unavailable,
}

struct Api {
    answers: HashMap<&'static str, Answer>,
    /// What the token endpoint issues, for the test that uses tokens.
    issued_token: &'static str,
    token_requests: AtomicUsize,
    api_requests: AtomicUsize,
    /// Requests to the API that carried an `Authorization` header.
    with_authorization: AtomicUsize,
    /// The query string of the last API request.
    last_query: std::sync::Mutex<Option<String>>,
}

struct Server {
    url: String,
    api: Arc<Api>,
}

impl Server {
    fn token_requests(&self) -> usize {
        self.api.token_requests.load(Ordering::SeqCst)
    }

    fn api_requests(&self) -> usize {
        self.api.api_requests.load(Ordering::SeqCst)
    }
}

async fn spawn_api(issued_token: &'static str, token_answer: Answer) -> Server {
    let answers = HashMap::from([
        (GOOD_KEY, Answer::Orders),
        (UNSCOPED_KEY, Answer::NoScope),
        (LIMITED_KEY, Answer::Limited),
        (UNCHECKABLE_KEY, Answer::Unavailable),
        (issued_token, token_answer),
    ]);
    let api = Arc::new(Api {
        answers,
        issued_token,
        token_requests: AtomicUsize::new(0),
        api_requests: AtomicUsize::new(0),
        with_authorization: AtomicUsize::new(0),
        last_query: std::sync::Mutex::new(None),
    });
    let router = Router::new()
        .route("/oauth2/token", post(token))
        .route("/v1/orders", get(orders))
        .route("/v1/me", get(me))
        .with_state(api.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    Server { url, api }
}

async fn token(State(api): State<Arc<Api>>) -> Json<Value> {
    api.token_requests.fetch_add(1, Ordering::SeqCst);
    Json(json!({"access_token": api.issued_token, "token_type": "Bearer", "expires_in": 300}))
}

fn page() -> Value {
    json!({
        "items": [{"created_at": "2026-01-01T00:00:00+00:00", "currency": "EUR",
                   "id": "ord_00001", "partner_id": "acme", "status": "shipped",
                   "total_cents": 145459}],
        "next_cursor": "b3JkXzAwMDAx"
    })
}

async fn orders(
    State(api): State<Arc<Api>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    *api.last_query.lock().unwrap() = query;
    answer(&api, &headers, Json(page()).into_response())
}

async fn me(State(api): State<Arc<Api>>, headers: HeaderMap) -> Response {
    let me = json!({"client_id": "cl_acme", "expires_at": "2026-01-01T00:00:00+00:00",
                    "partner_id": "acme", "scopes": ["orders:read"]});
    answer(&api, &headers, Json(me).into_response())
}

/// The API's authentication as documented: `X-API-Key`, or `Authorization: Bearer` with a key or
/// a token, then what the credential is set up to meet.
fn answer(api: &Api, headers: &HeaderMap, success: Response) -> Response {
    api.api_requests.fetch_add(1, Ordering::SeqCst);
    let bearer = headers
        .get(AUTHORIZATION)
        .inspect(|_| {
            api.with_authorization.fetch_add(1, Ordering::SeqCst);
        })
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    let credential = headers
        .get("x-api-key")
        .and_then(|value| value.to_str().ok())
        .or(bearer);
    let Some(credential) = credential else {
        return refusal(StatusCode::UNAUTHORIZED, "Bearer", None);
    };
    match api.answers.get(credential) {
        Some(Answer::Orders) => success,
        Some(Answer::NoScope) => refusal(
            StatusCode::FORBIDDEN,
            "Bearer error=\"insufficient_scope\", scope=\"orders:read\"",
            None,
        ),
        Some(Answer::Limited) => refusal(StatusCode::TOO_MANY_REQUESTS, "", Some("7")),
        Some(Answer::Unavailable) => refusal(StatusCode::SERVICE_UNAVAILABLE, "", Some("2")),
        None => refusal(
            StatusCode::UNAUTHORIZED,
            "Bearer error=\"invalid_token\", error_description=\"the key is not valid\"",
            None,
        ),
    }
}

/// An RFC 9457 refusal with its challenge and `Retry-After` when it has them.
fn refusal(status: StatusCode, challenge: &str, retry_after: Option<&str>) -> Response {
    let body = json!({"type": "about:blank", "title": status.canonical_reason(),
                      "status": status.as_u16(), "detail": "refused by the test API"});
    let mut response = (
        status,
        [(CONTENT_TYPE, "application/problem+json")],
        body.to_string(),
    )
        .into_response();
    if !challenge.is_empty() {
        response
            .headers_mut()
            .insert(WWW_AUTHENTICATE, challenge.parse().unwrap());
    }
    if let Some(seconds) = retry_after {
        response
            .headers_mut()
            .insert(RETRY_AFTER, seconds.parse().unwrap());
    }
    response
}

fn key_client(server: &Server, key: &str) -> Client {
    Client::with_api_key(ApiKeyConfig::new(
        server.url.clone(),
        SecretString::from(key),
    ))
    .unwrap()
}

#[tokio::test]
async fn an_api_key_client_sends_the_key_in_x_api_key_and_never_asks_for_a_token() {
    let server = spawn_api("unused-token", Answer::Orders).await;
    let client = key_client(&server, GOOD_KEY);

    let orders = client.orders(&PageRequest::first().limit(1)).await.unwrap();
    assert_eq!(serde_json::to_value(&orders).unwrap(), page());
    assert_eq!(
        server.api.last_query.lock().unwrap().as_deref(),
        Some("limit=1")
    );
    let me = client.me().await.unwrap();
    assert_eq!(me.partner_id, "acme");

    assert_eq!(server.api_requests(), 2);
    assert_eq!(server.token_requests(), 0, "no token was requested");
    assert_eq!(
        server.api.with_authorization.load(Ordering::SeqCst),
        0,
        "the key went in X-API-Key only"
    );
    let err = client.access_token().await.unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err:?}");
    assert_eq!(server.token_requests(), 0);
}

#[tokio::test]
async fn a_wrong_key_is_an_invalid_token_error_that_is_not_retried() {
    let server = spawn_api("unused-token", Answer::Orders).await;
    let client = key_client(&server, WRONG_KEY);

    let err = client.orders(&PageRequest::first()).await.unwrap_err();
    let Error::Api {
        status,
        challenge,
        problem,
    } = &err
    else {
        panic!("expected an API error, got {err:?}");
    };
    assert_eq!(*status, StatusCode::UNAUTHORIZED);
    assert_eq!(err.oauth_error(), Some("invalid_token"));
    assert_eq!(
        challenge.as_ref().unwrap().error_description.as_deref(),
        Some("the key is not valid")
    );
    assert_eq!(
        problem.as_ref().unwrap().detail.as_deref(),
        Some("refused by the test API")
    );
    assert_eq!(server.api_requests(), 1, "a refused key is not tried again");
    assert_eq!(server.token_requests(), 0);
    for shown in [err.to_string(), format!("{err:?}")] {
        assert!(!shown.contains(WRONG_KEY), "{shown}");
    }
}

#[tokio::test]
async fn a_key_without_the_scope_is_an_insufficient_scope_error_naming_the_scope() {
    let server = spawn_api("unused-token", Answer::Orders).await;
    let client = key_client(&server, UNSCOPED_KEY);

    let err = client.orders(&PageRequest::first()).await.unwrap_err();
    let Error::Api {
        status, challenge, ..
    } = &err
    else {
        panic!("expected an API error, got {err:?}");
    };
    assert_eq!(*status, StatusCode::FORBIDDEN);
    assert_eq!(err.oauth_error(), Some("insufficient_scope"));
    assert_eq!(
        challenge.as_ref().unwrap().scope.as_deref(),
        Some("orders:read")
    );
    assert!(err.to_string().contains("orders:read"), "{err}");
    assert_eq!(server.token_requests(), 0);
}

#[tokio::test]
async fn a_429_is_rate_limited_and_a_503_is_unavailable_each_with_its_retry_after() {
    let server = spawn_api("unused-token", Answer::Orders).await;

    let err = key_client(&server, LIMITED_KEY)
        .orders(&PageRequest::first())
        .await
        .unwrap_err();
    let Error::RateLimited { retry_after } = err else {
        panic!("expected RateLimited, got {err:?}");
    };
    assert_eq!(retry_after, Some(Duration::from_secs(7)));

    let err = key_client(&server, UNCHECKABLE_KEY)
        .orders(&PageRequest::first())
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::SERVICE_UNAVAILABLE));
    let Error::Unavailable { retry_after } = err else {
        panic!("expected Unavailable, got {err:?}");
    };
    assert_eq!(retry_after, Some(Duration::from_secs(2)));
    assert_eq!(server.api_requests(), 2, "neither was retried by the crate");
    assert_eq!(server.token_requests(), 0);
}

#[tokio::test]
async fn a_token_client_reads_the_apis_answers_the_same_way() {
    // The two modes share one request path: a token the API cannot check now is Unavailable too.
    let server = spawn_api("token-the-api-cannot-check", Answer::Unavailable).await;
    let config = Config::new(
        format!("{}/oauth2/token", server.url),
        server.url.clone(),
        "cl_acme",
        SecretString::from("s3cret"),
    );
    let client = Client::new(config).unwrap();

    let err = client.orders(&PageRequest::first()).await.unwrap_err();
    let Error::Unavailable { retry_after } = err else {
        panic!("expected Unavailable, got {err:?}");
    };
    assert_eq!(retry_after, Some(Duration::from_secs(2)));
    assert_eq!(server.token_requests(), 1);
    assert_eq!(
        server.api.with_authorization.load(Ordering::SeqCst),
        1,
        "the token went in Authorization"
    );
}

#[tokio::test]
async fn no_debug_output_or_error_shows_the_key() {
    let server = spawn_api("unused-token", Answer::Orders).await;
    let config = ApiKeyConfig::new(server.url.clone(), SecretString::from(GOOD_KEY));
    let shown = format!("{config:?}");
    assert!(!shown.contains(GOOD_KEY), "{shown}");
    assert!(shown.contains(&server.url), "the rest is shown: {shown}");

    let client = Client::with_api_key(config).unwrap();
    let shown = format!("{client:?}");
    assert!(!shown.contains(GOOD_KEY), "{shown}");

    // A key with a character no key has is refused when the client is built, without showing it.
    for bad in ["", "pak_abc\r\nX-Injected: 1", " pak_abc", "pak_abc\u{e9}"] {
        let err = Client::with_api_key(ApiKeyConfig::new(
            server.url.clone(),
            SecretString::from(bad),
        ))
        .unwrap_err();
        assert!(matches!(err, Error::Config(_)), "{err:?}");
        if !bad.is_empty() {
            assert!(!err.to_string().contains(bad), "{err}");
            assert!(!format!("{err:?}").contains(bad), "{err:?}");
        }
    }
    assert_eq!(server.api_requests(), 0);
}
