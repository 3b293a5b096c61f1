//! Token-endpoint errors as RFC 6749 §5.2 JSON responses. Internal causes are logged, never sent.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// The error codes of RFC 6749 §5.2 and RFC 8707 §2 we answer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    InvalidScope,
    InvalidTarget,
    ServerError,
    TemporarilyUnavailable,
}

impl ErrorCode {
    /// Every code, in declaration order (each code's position is `code as usize`).
    pub const ALL: [ErrorCode; 9] = [
        ErrorCode::InvalidRequest,
        ErrorCode::InvalidClient,
        ErrorCode::InvalidGrant,
        ErrorCode::UnauthorizedClient,
        ErrorCode::UnsupportedGrantType,
        ErrorCode::InvalidScope,
        ErrorCode::InvalidTarget,
        ErrorCode::ServerError,
        ErrorCode::TemporarilyUnavailable,
    ];

    /// The code as it is written in an error response.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidClient => "invalid_client",
            ErrorCode::InvalidGrant => "invalid_grant",
            ErrorCode::UnauthorizedClient => "unauthorized_client",
            ErrorCode::UnsupportedGrantType => "unsupported_grant_type",
            ErrorCode::InvalidScope => "invalid_scope",
            ErrorCode::InvalidTarget => "invalid_target",
            ErrorCode::ServerError => "server_error",
            ErrorCode::TemporarilyUnavailable => "temporarily_unavailable",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    /// A client mistake, with a description safe to show.
    #[error("{code:?}: {description}")]
    Client {
        code: ErrorCode,
        description: String,
        /// The client tried HTTP Basic: RFC 6749 §5.2 then requires 401 with a Basic challenge.
        basic_challenge: bool,
    },
    /// An authenticated client asking for something it is not allowed (403).
    #[error("{code:?}: {description}")]
    Forbidden {
        code: ErrorCode,
        description: &'static str,
    },
    /// Too many failed authentications from this source (or this client at this source).
    #[error("too many failed authentication attempts")]
    TooManyAttempts { retry_after: std::time::Duration },
    #[error("request body exceeds {limit} bytes")]
    BodyTooLarge { limit: usize },
    #[error("no active signing key")]
    NoSigningKey,
    /// The database cannot serve now (a wait ran out; read-only, full or unreachable): a
    /// fault of the infrastructure, answered 503 `temporarily_unavailable` with `Retry-After`.
    #[error("database unavailable: {0}")]
    DatabaseUnavailable(anyhow::Error),
    /// Anything else: logged with its cause, answered with a bare `server_error`.
    #[error(transparent)]
    Unexpected(anyhow::Error),
}

impl From<anyhow::Error> for OAuthError {
    fn from(err: anyhow::Error) -> OAuthError {
        if storage::unavailable(&err) {
            OAuthError::DatabaseUnavailable(err)
        } else {
            OAuthError::Unexpected(err)
        }
    }
}

/// Seconds a client is asked to wait when the database cannot serve.
pub const DATABASE_RETRY_AFTER_SECS: u64 = 2;

impl OAuthError {
    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::client(ErrorCode::InvalidRequest, description)
    }

    pub fn client(code: ErrorCode, description: impl Into<String>) -> Self {
        OAuthError::Client {
            code,
            description: description.into(),
            basic_challenge: false,
        }
    }

    pub fn invalid_client(description: impl Into<String>, basic_challenge: bool) -> Self {
        OAuthError::Client {
            code: ErrorCode::InvalidClient,
            description: description.into(),
            basic_challenge,
        }
    }
}

/// An RFC 6749 §5.2 error response.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = OAuthError)]
pub struct ErrorBody<'a> {
    pub error: ErrorCode,
    /// What was wrong, for the developer; never a secret or the request echoed back.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub error_description: Option<&'a str>,
}

/// The realm of our Basic challenge.
const BASIC_CHALLENGE: &str = "Basic realm=\"oauth2\", charset=\"UTF-8\"";

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let (status, code, description, challenge) = match &self {
            OAuthError::Client {
                code,
                description,
                basic_challenge,
            } => {
                let status = if *code == ErrorCode::InvalidClient {
                    StatusCode::UNAUTHORIZED
                } else {
                    StatusCode::BAD_REQUEST
                };
                (status, *code, Some(description.as_str()), *basic_challenge)
            }
            OAuthError::TooManyAttempts { retry_after } => {
                let seconds = edge::problem::retry_after_secs(*retry_after);
                let mut response = (
                    StatusCode::TOO_MANY_REQUESTS,
                    Json(ErrorBody {
                        error: ErrorCode::InvalidClient,
                        error_description: Some(
                            "too many failed authentication attempts; retry later",
                        ),
                    }),
                )
                    .into_response();
                let headers = response.headers_mut();
                headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
                headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                return response;
            }
            OAuthError::Forbidden { code, description } => {
                (StatusCode::FORBIDDEN, *code, Some(*description), false)
            }
            OAuthError::BodyTooLarge { .. } => (
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorCode::InvalidRequest,
                Some("request body is too large"),
                false,
            ),
            OAuthError::NoSigningKey => {
                tracing::error!("token request refused: no active signing key");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    ErrorCode::TemporarilyUnavailable,
                    None,
                    false,
                )
            }
            OAuthError::DatabaseUnavailable(err) => {
                tracing::warn!(error = %err, "request refused: the database cannot serve now");
                let mut response = (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Json(ErrorBody {
                        error: ErrorCode::TemporarilyUnavailable,
                        error_description: Some(
                            "the service cannot reach its database; retry later",
                        ),
                    }),
                )
                    .into_response();
                let headers = response.headers_mut();
                headers.insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(DATABASE_RETRY_AFTER_SECS),
                );
                headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
                return response;
            }
            OAuthError::Unexpected(err) => {
                tracing::error!(error = ?err, "token endpoint failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    ErrorCode::ServerError,
                    None,
                    false,
                )
            }
        };
        let mut response = (
            status,
            Json(ErrorBody {
                error: code,
                error_description: description,
            }),
        )
            .into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        if challenge {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(BASIC_CHALLENGE),
            );
        }
        response
    }
}
