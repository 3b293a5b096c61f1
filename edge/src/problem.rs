//! RFC 9457 `application/problem+json` answers and `Retry-After`, built one way for every refusal
//! the edge and the services make, so the same status looks the same whoever sends it.

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// The members of a problem, in the order RFC 9457 lists them.
#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    title: &'a str,
    status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<&'a str>,
}

/// A problem+json answer of `status`, titled with the status's reason phrase. `detail` is ours,
/// never the client's input echoed back.
pub fn problem(status: StatusCode, detail: Option<&str>) -> Response {
    let body = Problem {
        kind: "about:blank",
        title: status.canonical_reason().unwrap_or("Error"),
        status: status.as_u16(),
        detail,
    };
    let body = serde_json::to_string(&body).unwrap_or_default();
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    response
}

/// Whole seconds a client should wait for `wait` to pass: rounded up, and at least one, since
/// `Retry-After: 0` invites an immediate retry that would be refused again.
pub fn retry_after_secs(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

/// Adds `Retry-After` for `wait` to `response`.
pub fn with_retry_after(mut response: Response, wait: Duration) -> Response {
    response.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from(retry_after_secs(wait)),
    );
    response
}

/// The answer for a path no route serves.
pub async fn not_found() -> Response {
    problem(StatusCode::NOT_FOUND, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_rounds_up_to_whole_seconds_and_never_says_zero() {
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_secs(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1001)), 2);
        assert_eq!(retry_after_secs(Duration::from_secs(30)), 30);
    }

    #[tokio::test]
    async fn a_problem_has_rfc_9457_members_in_order_and_its_media_type() {
        let response = problem(StatusCode::SERVICE_UNAVAILABLE, Some("busy"));
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
        let body = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .unwrap();
        assert_eq!(
            std::str::from_utf8(&body).unwrap(),
            r#"{"type":"about:blank","title":"Service Unavailable","status":503,"detail":"busy"}"#
        );
    }
}
