//! A stand-in for the token service's introspection endpoint, for tests of API keys: an axum
//! router on a loopback port that answers RFC 7662 as the token service's contract says (the
//! keys it was told about as active, anything else `{"active": false}`), counts its calls, and
//! can be made to fail (500) or be stopped. It checks the partner API's own credentials and the
//! `token_type_hint`, answering 401 otherwise (which the partner API must treat as "cannot ask").
//! Also used by the Lambda authorizer tests (`tests/lambda`), through `#[path]`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Form, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// The introspection client the stub accepts (HTTP Basic).
pub const CLIENT_ID: &str = "cl_partner_api";
pub const CLIENT_SECRET: &str = "pcs_introspection_secret";

#[derive(Default)]
struct Inner {
    answers: Mutex<HashMap<String, Value>>,
    calls: AtomicUsize,
    failing: AtomicBool,
    /// How long each answer is held back (so concurrent requests overlap).
    delay: Mutex<Duration>,
}

pub struct IntrospectionStub {
    pub url: String,
    inner: Arc<Inner>,
    task: tokio::task::JoinHandle<()>,
}

async fn introspect(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    inner.calls.fetch_add(1, Ordering::SeqCst);
    let delay = *inner.delay.lock().unwrap();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    // Every answer closes its connection, so a stopped stub is unreachable at once.
    let close = [(header::CONNECTION, "close")];
    if inner.failing.load(Ordering::SeqCst) {
        return (StatusCode::INTERNAL_SERVER_ERROR, close).into_response();
    }
    use base64::Engine;
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"))
    );
    let authorized = headers
        .get(header::AUTHORIZATION)
        .is_some_and(|v| v.as_bytes() == expected.as_bytes());
    if !authorized || form.get("token_type_hint").map(String::as_str) != Some("api_key") {
        return (StatusCode::UNAUTHORIZED, close).into_response();
    }
    let token = form.get("token").cloned().unwrap_or_default();
    let answer = inner
        .answers
        .lock()
        .unwrap()
        .get(&token)
        .cloned()
        .unwrap_or_else(|| json!({ "active": false }));
    (close, axum::Json(answer)).into_response()
}

impl IntrospectionStub {
    pub async fn start() -> IntrospectionStub {
        let inner = Arc::new(Inner::default());
        let app = axum::Router::new()
            .route("/oauth2/introspect", axum::routing::post(introspect))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://{}/oauth2/introspect",
            listener.local_addr().unwrap()
        );
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        IntrospectionStub { url, inner, task }
    }

    /// A new well-formed key, unknown until [`IntrospectionStub::activate`].
    pub fn new_key() -> String {
        use base64::Engine;
        let mut bytes = [0u8; 32];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes).unwrap();
        format!(
            "pak_{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
        )
    }

    /// Makes `key` an active key of `client_id` at `partner_id` with `scope`, for `partner-api`.
    pub fn activate(&self, key: &str, client_id: &str, partner_id: &str, scope: &str) {
        self.answer(
            key,
            json!({
                "active": true, "token_type": "api_key", "client_id": client_id,
                "scope": scope, "partner_id": partner_id, "aud": "partner-api"
            }),
        );
    }

    /// Answers `answer` about `key`.
    pub fn answer(&self, key: &str, answer: Value) {
        self.inner
            .answers
            .lock()
            .unwrap()
            .insert(key.to_owned(), answer);
    }

    /// Forgets `key` (disabled, deleted or rotated out): `{"active": false}` from now on.
    pub fn deactivate(&self, key: &str) {
        self.inner.answers.lock().unwrap().remove(key);
    }

    pub fn calls(&self) -> usize {
        self.inner.calls.load(Ordering::SeqCst)
    }

    /// From now on every call is answered 500 (`true`), or as usual again (`false`).
    pub fn fail(&self, failing: bool) {
        self.inner.failing.store(failing, Ordering::SeqCst);
    }

    pub fn delay(&self, delay: Duration) {
        *self.inner.delay.lock().unwrap() = delay;
    }

    /// Stops listening: once this returns, new connections are refused.
    pub async fn stop(&mut self) {
        self.task.abort();
        let _ = (&mut self.task).await;
    }
}

impl Drop for IntrospectionStub {
    fn drop(&mut self) {
        self.task.abort();
    }
}
