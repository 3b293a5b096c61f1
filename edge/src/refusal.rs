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
            other => other.canonical_reason().unwrap_or("the request was refused"),
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

/// How a service writes a [`Refusal`] at `path`. The default writes RFC 9457 problems everywhere.
#[derive(Clone)]
pub struct RefusalFormat(Arc<dyn Fn(&str, &Refusal) -> Response + Send + Sync>);

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
        Some(value) => value
            .to_str()
            .is_ok_and(|v| v.trim_start().to_ascii_lowercase().starts_with("text/plain")),
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
        let path = request.uri().path().to_owned();
        let format = self.format.clone();
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await?;
            Ok(match refusal_of(&response) {
                Some(refusal) => {
                    let rendered = format.render(&path, &refusal);
                    restyle(response, rendered)
                }
                None => response,
            })
        })
    }
}
