//! The OAuth 2.0 endpoints and their error model.

pub mod assertion;
pub mod client_auth;
pub mod error;
pub mod form;
pub mod introspect;
pub mod own_token;
pub mod request;
pub mod revoke;
pub mod token;

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

/// RFC 6749 §5.1: token responses must not be cached; revocation and introspection answers carry
/// token data or its absence, so they are not cached either.
pub fn no_store(body: impl IntoResponse) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}
