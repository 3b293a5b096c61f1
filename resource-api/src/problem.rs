//! Errors of the partner API: RFC 6750 bearer challenges for authentication and scope, RFC 9457
//! `application/problem+json` for everything else. Internal causes are logged, never returned.

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use edge::problem::{problem, retry_after_secs};

/// The realm of our bearer challenges.
pub const REALM: &str = "partner-api";

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No credentials at all: a bare challenge (RFC 6750 §3.1).
    #[error("authentication required")]
    MissingToken,
    #[error("invalid token: {0}")]
    InvalidToken(String),
    /// A request whose credentials cannot be read as one (RFC 6750 §3.1 `invalid_request`,
    /// 400 with a challenge).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("insufficient scope: needs {0}")]
    InsufficientScope(&'static str),
    #[error("rate limit exceeded")]
    RateLimited { retry_after: Duration, limit: u32 },
    /// The caller's address sent too many wrong API keys and is locked out for a while.
    #[error("too many wrong API keys from this address")]
    LockedOut { retry_after: Duration },
    #[error("not found")]
    NotFound,
    #[error("bad request: {0}")]
    BadRequest(String),
    /// A dependency this request needs (the online token check) cannot be reached.
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// The database cannot serve now (a wait ran out; unreachable): a fault of the
    /// infrastructure, answered 503 with `Retry-After`.
    #[error("database unavailable: {0}")]
    DatabaseUnavailable(anyhow::Error),
    #[error(transparent)]
    Unexpected(anyhow::Error),
}

impl From<anyhow::Error> for ApiError {
    fn from(err: anyhow::Error) -> ApiError {
        if storage::unavailable(&err) {
            ApiError::DatabaseUnavailable(err)
        } else {
            ApiError::Unexpected(err)
        }
    }
}

/// Seconds a client is asked to wait when the database cannot serve.
const DATABASE_RETRY_AFTER_SECS: u64 = 2;

/// A quoted-string for a `WWW-Authenticate` parameter: our descriptions are ASCII without quotes
/// or backslashes, but stripping them keeps the header well-formed whatever changes later.
fn quoted(text: &str) -> String {
    text.chars()
        .filter(|c| *c != '"' && *c != '\\' && (' '..='~').contains(c))
        .collect()
}

/// `response` with `challenge` as its `WWW-Authenticate` (RFC 6750 §3).
fn with_challenge(mut response: Response, challenge: String) -> Response {
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::MissingToken => {
                let response =
                    problem(StatusCode::UNAUTHORIZED, Some("a bearer token is required"));
                with_challenge(response, format!("Bearer realm=\"{REALM}\""))
            }
            ApiError::InvalidToken(why) => {
                let response = problem(StatusCode::UNAUTHORIZED, Some(&why));
                with_challenge(
                    response,
                    format!(
                        "Bearer realm=\"{REALM}\", error=\"invalid_token\", error_description=\"{}\"",
                        quoted(&why)
                    ),
                )
            }
            ApiError::InvalidRequest(why) => {
                let response = problem(StatusCode::BAD_REQUEST, Some(&why));
                with_challenge(
                    response,
                    format!(
                        "Bearer realm=\"{REALM}\", error=\"invalid_request\", error_description=\"{}\"",
                        quoted(&why)
                    ),
                )
            }
            ApiError::InsufficientScope(scope) => {
                let detail = format!("this route needs the scope {scope}");
                let response = problem(StatusCode::FORBIDDEN, Some(&detail));
                with_challenge(
                    response,
                    format!(
                        "Bearer realm=\"{REALM}\", error=\"insufficient_scope\", scope=\"{}\"",
                        quoted(scope)
                    ),
                )
            }
            ApiError::RateLimited { retry_after, limit } => {
                let mut response = problem(
                    StatusCode::TOO_MANY_REQUESTS,
                    Some("this client is over its request rate; retry after the given delay"),
                );
                let headers = response.headers_mut();
                headers.insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(retry_after_secs(retry_after)),
                );
                headers.insert("x-ratelimit-limit", HeaderValue::from(limit));
                headers.insert("x-ratelimit-remaining", HeaderValue::from_static("0"));
                response
            }
            ApiError::LockedOut { retry_after } => {
                let mut response = problem(
                    StatusCode::TOO_MANY_REQUESTS,
                    Some("too many wrong API keys from this address; retry after the given delay"),
                );
                response.headers_mut().insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(retry_after_secs(retry_after)),
                );
                response
            }
            ApiError::NotFound => problem(StatusCode::NOT_FOUND, None),
            ApiError::BadRequest(detail) => problem(StatusCode::BAD_REQUEST, Some(&detail)),
            ApiError::Unavailable(detail) => {
                let mut response = problem(StatusCode::SERVICE_UNAVAILABLE, Some(&detail));
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
                response
            }
            ApiError::DatabaseUnavailable(err) => {
                tracing::warn!(error = %err, "request refused: the database cannot serve now");
                let mut response = problem(
                    StatusCode::SERVICE_UNAVAILABLE,
                    Some("the service cannot reach its database; retry later"),
                );
                response.headers_mut().insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(DATABASE_RETRY_AFTER_SECS),
                );
                response
            }
            ApiError::Unexpected(err) => {
                tracing::error!(error = ?err, "request failed");
                problem(StatusCode::INTERNAL_SERVER_ERROR, None)
            }
        }
    }
}

/// Answer for routes that do not exist.
pub async fn not_found() -> ApiError {
    ApiError::NotFound
}
