//! Refusals made before a service's handlers answer — by the envelope's bounds (408, 413, 431,
//! 503), by axum's router (404, 405) and extractors, or by tower-http — written in the service's
//! own error format, chosen by the request's path: a token service answers RFC 6749 JSON at its
//! OAuth endpoints and RFC 9457 problems elsewhere; the partner API answers problems everywhere.
//!
//! One layer in the envelope, [`RefusalLayer`], does it for every refusal whoever made it: the
//! envelope's own layers mark theirs with a [`Refusal`] in the response's extensions; an error
//! answered without a format of its own (tower-http's empty 408 and `text/plain` 413, axum's
//! empty 405 and plain-text rejections) is taken for a refusal of its status. Answers a handler
//! wrote in a service format (problem+json, JSON) are left alone.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::response::Response;

use crate::problem::problem;

/// A refusal: its status and what to tell the client (ours, never the client's input).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: StatusCode,
    pub detail: String,
}

impl Refusal {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Refusal {
        Refusal {
            status,
            detail: detail.into(),
        }
    }

    /// The refusal of `status` when whoever made it said nothing we can show.
    fn of_status(status: StatusCode) -> Refusal {
        let detail = match status {
            StatusCode::BAD_REQUEST => "the request is malformed",
            StatusCode::NOT_FOUND => "no route serves this path",
            StatusCode::METHOD_NOT_ALLOWED => "this method is not allowed on this path",
            StatusCode::REQUEST_TIMEOUT => "the request was not completed within the time limit",
            StatusCode::PAYLOAD_TOO_LARGE => "the request body is too large",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "the request's content type is not accepted here",
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => "the request headers are too large",
            StatusCode::SERVICE_UNAVAILABLE => "the server is busy; retry later",
            other => other
                .canonical_reason()
                .unwrap_or("the request was refused"),
        };
        Refusal::new(status, detail)
    }

    /// A problem+json answer of this refusal, marked so that [`RefusalLayer`] writes it in the
    /// service's format.
    pub fn into_response(self) -> Response {
        let mut response = problem(self.status, Some(&self.detail));
        response.extensions_mut().insert(self);
        response
    }
}

/// A function writing a [`Refusal`] made at a path.
type Render = dyn Fn(&str, &Refusal) -> Response + Send + Sync;

/// How a service writes a [`Refusal`] at `path`. The default writes RFC 9457 problems everywhere.
#[derive(Clone)]
pub struct RefusalFormat(Arc<Render>);

impl RefusalFormat {
    /// `render(path, refusal)` writes the answer; its status should be the refusal's.
    pub fn new(render: impl Fn(&str, &Refusal) -> Response + Send + Sync + 'static) -> Self {
        RefusalFormat(Arc::new(render))
    }

    /// RFC 9457 `application/problem+json` on every path.
    pub fn problem() -> RefusalFormat {
        RefusalFormat::new(|_, refusal| problem(refusal.status, Some(&refusal.detail)))
    }

    pub fn render(&self, path: &str, refusal: &Refusal) -> Response {
        self.0(path, refusal)
    }
}

impl Default for RefusalFormat {
    fn default() -> RefusalFormat {
        RefusalFormat::problem()
    }
}

impl fmt::Debug for RefusalFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RefusalFormat")
    }
}

/// The refusal `response` is, if it is one: marked by the envelope, or an error status whose
/// body has no format of a service (none, or plain text).
fn refusal_of(response: &Response) -> Option<Refusal> {
    if let Some(refusal) = response.extensions().get::<Refusal>() {
        return Some(refusal.clone());
    }
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return None;
    }
    let unformatted = match response.headers().get(header::CONTENT_TYPE) {
        None => true,
        Some(value) => value.to_str().is_ok_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("text/plain")
        }),
    };
    unformatted.then(|| Refusal::of_status(status))
}

/// `rendered`, with the headers of `original` that it does not set itself (`Retry-After`,
/// `Allow`, the security headers), except those that described the original body.
fn restyle(original: Response, mut rendered: Response) -> Response {
    let original = original.headers();
    let headers = rendered.headers_mut();
    for name in original.keys() {
        if name == header::CONTENT_TYPE
            || name == header::CONTENT_LENGTH
            || headers.contains_key(name)
        {
            continue;
        }
        for value in original.get_all(name) {
            headers.append(name.clone(), value.clone());
        }
    }
    rendered
}

/// Writes every refusal of the layers inside it in `format` (see the module's documentation).
#[derive(Clone, Debug)]
pub struct RefusalLayer {
    format: RefusalFormat,
}

impl RefusalLayer {
    pub fn new(format: RefusalFormat) -> RefusalLayer {
        RefusalLayer { format }
    }
}

impl<S> tower::Layer<S> for RefusalLayer {
    type Service = Refusals<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Refusals {
            inner,
            format: self.format.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Refusals<S> {
    inner: S,
    format: RefusalFormat,
}

impl<S> tower::Service<Request> for Refusals<S>
where
    S: tower::Service<Request, Response = Response>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        // A clone of the URI shares its bytes: no copy of the path for the many requests that
        // are not refused.
        let uri = request.uri().clone();
        let format = self.format.clone();
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await?;
            Ok(match refusal_of(&response) {
                Some(refusal) => {
                    let rendered = format.render(uri.path(), &refusal);
                    restyle(response, rendered)
                }
                None => response,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::time::Duration;

    use axum::Router;
    use axum::body::{Body, Bytes};
    use axum::extract::ConnectInfo;
    use axum::routing::{get, post};
    use serde_json::Value;
    use tower::ServiceExt;

    use axum::response::IntoResponse;

    use super::*;
    use crate::{Envelope, Transport};

    /// A router with a handler that never answers in time and one that reads its body, in an
    /// envelope of 1 s, one request in flight and 1 KiB of body, trusting 127.0.0.1 as a proxy.
    fn enveloped(format: RefusalFormat) -> Router {
        let router = Router::new()
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_secs(600)).await;
                    "late"
                }),
            )
            .route("/echo", post(|body: Bytes| async move { body }));
        let transport = Transport {
            trusted_proxies: vec!["127.0.0.1".parse().unwrap()],
            ..Transport::default()
        };
        Envelope::new(&transport, Duration::from_secs(1), 1, 1024)
            .with_refusal_format(format)
            .wrap(router)
    }

    /// A format that writes `{"error": status}` at `/echo` and problems elsewhere.
    fn by_path() -> RefusalFormat {
        RefusalFormat::new(|path, refusal| {
            if path == "/echo" {
                let body = serde_json::json!({ "error": refusal.status.as_u16() }).to_string();
                let mut response = (refusal.status, body).into_response();
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    axum::http::HeaderValue::from_static("application/json"),
                );
                response
            } else {
                problem(refusal.status, Some(&refusal.detail))
            }
        })
    }

    async fn call(router: &Router, request: Request) -> (Response, Value) {
        let response = router.clone().oneshot(request).await.unwrap();
        let (parts, body) = response.into_parts();
        let body = axum::body::to_bytes(body, 64 * 1024).await.unwrap();
        let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
        (Response::from_parts(parts, Body::empty()), json)
    }

    fn assert_problem(response: &Response, body: &Value, status: u16) {
        assert_eq!(response.status().as_u16(), status, "{body}");
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
        assert_eq!(body["status"], status, "{body}");
        assert!(body["detail"].is_string(), "{body}");
    }

    fn streamed(bytes: usize) -> Body {
        Body::from_stream(futures::stream::iter(
            (0..bytes / 256).map(|_| Ok::<_, std::io::Error>(Bytes::from(vec![b'a'; 256]))),
        ))
    }

    #[tokio::test]
    async fn every_refusal_is_a_problem_by_default_whatever_layer_makes_it() {
        let router = enveloped(RefusalFormat::default());
        // tower-http's timeout (empty 408).
        let (response, body) =
            call(&router, Request::get("/slow").body(Body::empty()).unwrap()).await;
        assert_problem(&response, &body, 408);
        // axum's `Bytes` rejection when the envelope's bound is met while streaming (text/plain).
        let request = Request::post("/echo").body(streamed(2048)).unwrap();
        let (response, body) = call(&router, request).await;
        assert_problem(&response, &body, 413);
        // tower-http's refusal of a declared length (text/plain).
        let request = Request::post("/echo")
            .header(header::CONTENT_LENGTH, "2048")
            .body(Body::from(vec![b'a'; 2048]))
            .unwrap();
        let (response, body) = call(&router, request).await;
        assert_problem(&response, &body, 413);
        // axum's 405 (empty, with `Allow`) and 404 (no fallback of the service's here).
        let (response, body) =
            call(&router, Request::get("/echo").body(Body::empty()).unwrap()).await;
        assert_problem(&response, &body, 405);
        assert_eq!(response.headers()[header::ALLOW], "POST");
        assert_eq!(
            response.headers()[header::X_CONTENT_TYPE_OPTIONS],
            "nosniff"
        );
        let (response, body) =
            call(&router, Request::get("/none").body(Body::empty()).unwrap()).await;
        assert_problem(&response, &body, 404);
        // A body within the bound is the handler's.
        let request = Request::post("/echo").body(streamed(512)).unwrap();
        let response = router.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn the_service_chooses_the_format_by_path_and_retry_after_is_kept() {
        let router = enveloped(by_path());
        let request = Request::post("/echo").body(streamed(2048)).unwrap();
        let (response, body) = call(&router, request).await;
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        assert_eq!(body, serde_json::json!({ "error": 413 }));
        // The one slot taken by a request that never ends: the next is shed with 503.
        let slow = tokio::spawn(
            router
                .clone()
                .oneshot(Request::get("/slow").body(Body::empty()).unwrap()),
        );
        let shed = loop {
            let request = Request::post("/echo").body(Body::from("x")).unwrap();
            let (response, body) = call(&router, request).await;
            if response.status() == StatusCode::SERVICE_UNAVAILABLE {
                break (response, body);
            }
            tokio::task::yield_now().await;
        };
        assert_eq!(shed.1, serde_json::json!({ "error": 503 }));
        assert_eq!(shed.0.headers()[header::RETRY_AFTER], "1");
        let (response, body) =
            call(&router, Request::get("/none").body(Body::empty()).unwrap()).await;
        assert_problem(&response, &body, 503);
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
        slow.abort();
    }

    #[tokio::test]
    async fn two_client_cert_fields_from_a_trusted_proxy_are_refused() {
        let router = enveloped(by_path());
        let proxy: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        let request = |from: SocketAddr| {
            let mut request = Request::post("/echo")
                .header("client-cert", ":AQID:")
                .header("client-cert", ":AQID:")
                .body(Body::from("x"))
                .unwrap();
            request.extensions_mut().insert(ConnectInfo(from));
            request
        };
        let (response, body) = call(&router, request(proxy)).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(body, serde_json::json!({ "error": 400 }));
        // From anyone else the fields are not read at all.
        let (response, _) = call(&router, request("127.0.0.9:4000".parse().unwrap())).await;
        assert_eq!(response.status(), StatusCode::OK);
    }
}
