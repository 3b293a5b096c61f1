//! The partner API. For now only its health probe: bearer-token verification, scopes and the
//! partner data arrive with their own issue.

use axum::Router;
use axum::routing::get;

/// The HTTP surface of the partner API.
pub fn router() -> Router {
    Router::new().route(
        "/healthz",
        get(|| async { axum::Json(serde_json::json!({ "status": "ok" })) }),
    )
}
