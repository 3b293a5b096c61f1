//! Arbitrary token requests: the first line is the Authorization header value, the rest the form
//! body. Parsing and credential extraction must answer with an OAuth error, never panic.
#![no_main]

use auth_server::oauth::client_auth::extract;
use auth_server::oauth::form::FormParams;
use axum::http::{HeaderMap, HeaderValue, header};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (first, body) = match data.iter().position(|b| *b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&[][..], data),
    };
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_bytes(first) {
        headers.insert(header::AUTHORIZATION, value);
    }
    let Ok(mut params) = FormParams::parse(body) else { return };
    let _ = params.get("grant_type");
    let _ = params.all("resource");
    if let Ok(credentials) = extract(&headers, &mut params) {
        assert!(!credentials.client_id.is_empty());
    }
});
