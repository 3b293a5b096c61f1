//! The fake Runtime API: invocations are queued by the test and handed out one at a time to
//! whichever function process asks for the next one, as Lambda does.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value;
use tokio::sync::{Mutex as AsyncMutex, mpsc, oneshot};

/// What a function answered to one invocation.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Posted to `/response`: the function's result.
    Response(Value),
    /// Posted to `/error`: the error document (`errorType`, `errorMessage`).
    Error(Value),
}

impl Outcome {
    /// The response, or a panic naming the error.
    pub fn response(self) -> Value {
        match self {
            Outcome::Response(value) => value,
            Outcome::Error(error) => panic!("the invocation failed: {error}"),
        }
    }
}

struct Pending {
    id: String,
    event: Value,
}

#[derive(Clone)]
struct Shared {
    queue: mpsc::UnboundedSender<Pending>,
    next: Arc<AsyncMutex<mpsc::UnboundedReceiver<Pending>>>,
    waiting: Arc<Mutex<HashMap<String, oneshot::Sender<Outcome>>>>,
    init_errors: Arc<Mutex<Vec<Value>>>,
    /// When functions asked for their next invocation.
    polls: Arc<Mutex<Vec<Instant>>>,
}

/// A fake Lambda Runtime API on a loopback port.
pub struct FakeRuntime {
    addr: std::net::SocketAddr,
    shared: Shared,
    /// A path before `/2018-06-01`, as local emulators use ("" on AWS).
    base_path: String,
    task: tokio::task::JoinHandle<()>,
}

impl FakeRuntime {
    /// Serves the Runtime API at the root, as on AWS (`AWS_LAMBDA_RUNTIME_API=host:port`).
    pub async fn start() -> FakeRuntime {
        FakeRuntime::start_under("").await
    }

    /// Serves it under `base_path` (for example `/emulator`), as some local emulators do
    /// (`AWS_LAMBDA_RUNTIME_API=http://host:port/emulator`).
    pub async fn start_under(base_path: &str) -> FakeRuntime {
        let (queue, next) = mpsc::unbounded_channel();
        let shared = Shared {
            queue,
            next: Arc::new(AsyncMutex::new(next)),
            waiting: Arc::default(),
            init_errors: Arc::default(),
            polls: Arc::default(),
        };
        let api = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next_invocation))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(invocation_response),
            )
            .route(
                "/2018-06-01/runtime/invocation/{id}/error",
                post(invocation_error),
            )
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(shared.clone());
        let app = if base_path.is_empty() {
            api
        } else {
            Router::new().nest(base_path, api)
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake runtime");
        let addr = listener.local_addr().expect("local address");
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .await
                .expect("fake runtime serves");
        });
        FakeRuntime {
            addr,
            shared,
            base_path: base_path.to_owned(),
            task,
        }
    }

    /// The value for `AWS_LAMBDA_RUNTIME_API`: `host:port` at the root, a URL under a path.
    pub fn runtime_api(&self) -> String {
        if self.base_path.is_empty() {
            self.addr.to_string()
        } else {
            format!("http://{}{}", self.addr, self.base_path)
        }
    }

    /// Queues `event` and waits (at most `within`) for a function to answer it.
    pub async fn invoke_within(&self, event: Value, within: Duration) -> Outcome {
        let id = uuid::Uuid::new_v4().to_string();
        let (answered, answer) = oneshot::channel();
        self.shared
            .waiting
            .lock()
            .unwrap()
            .insert(id.clone(), answered);
        self.shared
            .queue
            .send(Pending { id, event })
            .expect("the runtime is running");
        tokio::time::timeout(within, answer)
            .await
            .expect("the function answered the invocation in time")
            .expect("the invocation was answered")
    }

    /// Queues `event` and waits for a function to answer it (30 s at most: a hang, not a speed).
    pub async fn invoke(&self, event: Value) -> Outcome {
        self.invoke_within(event, Duration::from_secs(30)).await
    }

    /// When a function first asked for an invocation: the end of its initialization.
    pub fn first_poll(&self) -> Option<Instant> {
        self.shared.polls.lock().unwrap().first().copied()
    }

    /// Errors posted to `/runtime/init/error` by functions that failed to start.
    pub fn init_errors(&self) -> Vec<Value> {
        self.shared.init_errors.lock().unwrap().clone()
    }
}

impl Drop for FakeRuntime {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn next_invocation(State(shared): State<Shared>) -> Response {
    shared.polls.lock().unwrap().push(Instant::now());
    let pending = shared.next.lock().await.recv().await;
    let Some(Pending { id, event }) = pending else {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    };
    let deadline = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        + 30_000;
    let mut headers = HeaderMap::new();
    let set = |headers: &mut HeaderMap, name: &'static str, value: String| {
        headers.insert(name, value.parse().unwrap());
    };
    set(&mut headers, "lambda-runtime-aws-request-id", id);
    set(
        &mut headers,
        "lambda-runtime-deadline-ms",
        deadline.to_string(),
    );
    set(
        &mut headers,
        "lambda-runtime-invoked-function-arn",
        "arn:aws:lambda:us-east-1:123456789012:function:test".into(),
    );
    set(
        &mut headers,
        "lambda-runtime-trace-id",
        "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1".into(),
    );
    (headers, axum::Json(event)).into_response()
}

fn answer(shared: &Shared, id: &str, outcome: Outcome) -> StatusCode {
    match shared.waiting.lock().unwrap().remove(id) {
        Some(waiter) => {
            let _ = waiter.send(outcome);
            StatusCode::ACCEPTED
        }
        None => StatusCode::BAD_REQUEST,
    }
}

fn json_or_text(body: &Bytes) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
}

async fn invocation_response(
    State(shared): State<Shared>,
    Path(id): Path<String>,
    body: Bytes,
) -> StatusCode {
    answer(&shared, &id, Outcome::Response(json_or_text(&body)))
}

async fn invocation_error(
    State(shared): State<Shared>,
    Path(id): Path<String>,
    body: Bytes,
) -> StatusCode {
    answer(&shared, &id, Outcome::Error(json_or_text(&body)))
}

async fn init_error(State(shared): State<Shared>, body: Bytes) -> StatusCode {
    shared.init_errors.lock().unwrap().push(json_or_text(&body));
    StatusCode::ACCEPTED
}
