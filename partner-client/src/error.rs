//! Everything that can go wrong, as types a program can act on. No variant ever holds the client
//! secret, a token or an API key.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER, WWW_AUTHENTICATE};
use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The token endpoint refused (RFC 6749 §5.2): `invalid_client` for a wrong id or secret,
    /// `invalid_scope`, `unauthorized_client`, `temporarily_unavailable` (503)...
    #[error("the token endpoint answered {status}: {error}{}", describe(.error_description))]
    OAuth {
        status: StatusCode,
        error: String,
        error_description: Option<String>,
    },
    /// The API refused: 401 with a bearer challenge (`invalid_token`: after the one retry with a
    /// new token, or at once for a wrong or revoked API key), 403
    /// (`insufficient_scope`, with the scope needed), 404, or any other problem (RFC 9457).
    #[error("the partner API answered {status}{}", api_detail(.challenge, .problem))]
    Api {
        status: StatusCode,
        /// The `WWW-Authenticate: Bearer` challenge (RFC 6750 §3), on 401 and 403.
        challenge: Option<Box<BearerChallenge>>,
        /// The `application/problem+json` body, when there is one.
        problem: Option<Box<Problem>>,
    },
    /// 429 from the API or the token endpoint: wait `retry_after` (when given) and try again.
    #[error("rate limited{}", match .retry_after {
        Some(after) => format!("; retry after {} s", after.as_secs()),
        None => String::new(),
    })]
    RateLimited { retry_after: Option<Duration> },
    /// 503 from the API: it cannot answer right now (it is overloaded, or it cannot check an API
    /// key at the moment). Like a 429: wait `retry_after` (when given) and try again.
    #[error("the partner API is unavailable{}", match .retry_after {
        Some(after) => format!("; retry after {} s", after.as_secs()),
        None => String::new(),
    })]
    Unavailable { retry_after: Option<Duration> },
    /// The request did not get an answer: connection refused, timeout, TLS...
    #[error("transport: {}", with_causes(.0))]
    Transport(#[from] reqwest::Error),
    /// An answer that is not what the protocol says.
    #[error("could not read {what}: {detail}")]
    Decode { what: String, detail: String },
    /// The configuration is incomplete or a URL in it is invalid.
    #[error("configuration: {0}")]
    Config(String),
}

impl Error {
    /// The HTTP status of a refusal (OAuth or API), if that is what this is.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Error::OAuth { status, .. } | Error::Api { status, .. } => Some(*status),
            Error::RateLimited { .. } => Some(StatusCode::TOO_MANY_REQUESTS),
            Error::Unavailable { .. } => Some(StatusCode::SERVICE_UNAVAILABLE),
            _ => None,
        }
    }

    /// The `error` of an OAuth refusal or of the API's bearer challenge (`invalid_client`,
    /// `invalid_token`, `insufficient_scope`...).
    pub fn oauth_error(&self) -> Option<&str> {
        match self {
            Error::OAuth { error, .. } => Some(error),
            Error::Api {
                challenge: Some(challenge),
                ..
            } => challenge.error.as_deref(),
            _ => None,
        }
    }

    pub(crate) fn decode(what: impl Into<String>, detail: impl ToString) -> Error {
        Error::Decode {
            what: what.into(),
            detail: detail.to_string(),
        }
    }
}

/// An error and its causes, `a: b: c`: reqwest's own message ("error sending request") does not
/// say what went wrong ("Connection refused").
fn with_causes(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

fn describe(description: &Option<String>) -> String {
    description
        .as_deref()
        .map(|d| format!(" ({d})"))
        .unwrap_or_default()
}

fn api_detail(challenge: &Option<Box<BearerChallenge>>, problem: &Option<Box<Problem>>) -> String {
    let mut out = String::new();
    if let Some(error) = challenge.as_ref().and_then(|c| c.error.as_deref()) {
        out.push_str(&format!(": {error}"));
    }
    if let Some(scope) = challenge.as_ref().and_then(|c| c.scope.as_deref()) {
        out.push_str(&format!(" (needs scope {scope})"));
    }
    if let Some(text) = problem
        .as_ref()
        .and_then(|p| p.detail.as_deref().or(p.title.as_deref()))
    {
        out.push_str(&format!(": {text}"));
    }
    out
}

/// A `WWW-Authenticate: Bearer` challenge's parameters (RFC 6750 §3).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BearerChallenge {
    pub error: Option<String>,
    pub error_description: Option<String>,
    /// On `insufficient_scope`: the scope the request needs.
    pub scope: Option<String>,
}

impl BearerChallenge {
    /// The Bearer challenge among the response's `WWW-Authenticate` headers, parsed by
    /// `http-auth` (RFC 9110 §11.6.1 syntax).
    pub(crate) fn from_headers(headers: &HeaderMap) -> Option<BearerChallenge> {
        headers
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .filter_map(|value| http_auth::parse_challenges(value).ok())
            .flatten()
            .find(|c| c.scheme.eq_ignore_ascii_case("bearer"))
            .map(|challenge| {
                let param = |name: &str| {
                    challenge
                        .params
                        .iter()
                        .find(|(key, _)| key.eq_ignore_ascii_case(name))
                        .map(|(_, value)| value.to_unescaped())
                };
                BearerChallenge {
                    error: param("error"),
                    error_description: param("error_description"),
                    scope: param("scope"),
                }
            })
    }
}

/// An RFC 9457 problem body (`application/problem+json`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub problem_type: Option<String>,
    pub title: Option<String>,
    pub status: Option<u16>,
    pub detail: Option<String>,
    pub instance: Option<String>,
}

/// `Retry-After` as delta-seconds, the form both services send (an HTTP date is not read).
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn a_bearer_challenge_is_read_with_quoted_parameters() {
        let mut headers = HeaderMap::new();
        headers.append(
            WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"x\""),
        );
        headers.append(
            WWW_AUTHENTICATE,
            HeaderValue::from_static(
                "Bearer error=\"insufficient_scope\", error_description=\"needs \\\"orders:read\\\"\", scope=\"orders:read\"",
            ),
        );
        let challenge = BearerChallenge::from_headers(&headers).unwrap();
        assert_eq!(challenge.error.as_deref(), Some("insufficient_scope"));
        assert_eq!(challenge.scope.as_deref(), Some("orders:read"));
        assert_eq!(
            challenge.error_description.as_deref(),
            Some("needs \"orders:read\"")
        );
        assert_eq!(
            BearerChallenge::from_headers(&HeaderMap::new()),
            None,
            "no challenge, nothing read"
        );
    }

    #[test]
    fn retry_after_is_read_in_seconds_and_anything_else_is_none() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert(RETRY_AFTER, HeaderValue::from_static("3"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(3)));
        headers.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&headers), None);
    }
}
