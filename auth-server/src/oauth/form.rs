//! Parsing of `application/x-www-form-urlencoded` request bodies with the rules of RFC 6749 §3.1:
//! parameters without a value are treated as omitted, and no parameter may appear twice.

use std::collections::HashMap;

use axum::body::Body;
use axum::http::{HeaderMap, header};

use super::error::OAuthError;

/// OAuth requests are a few hundred bytes; this bounds memory per request with room to spare.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// Reads a form-encoded request body (RFC 6749 §3.2, RFC 7009 §2.1, RFC 7662 §2.1): the content
/// type is checked before the body is read, and at most [`MAX_BODY_BYTES`] are read.
pub async fn read_form(headers: &HeaderMap, body: Body) -> Result<FormParams, OAuthError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if !essence.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        return Err(OAuthError::invalid_request(
            "Content-Type must be application/x-www-form-urlencoded",
        ));
    }
    let bytes = edge::body::read_body(body, MAX_BODY_BYTES)
        .await
        .map_err(|error| match error {
            edge::body::BodyError::TooLarge => OAuthError::BodyTooLarge {
                limit: MAX_BODY_BYTES,
            },
            // A broken chunked encoding, or a client gone midway: nothing was too large.
            edge::body::BodyError::Unreadable => {
                OAuthError::invalid_request("the request body could not be read")
            }
        })?;
    if bytes.is_empty() {
        return Err(OAuthError::invalid_request("request body is empty"));
    }
    FormParams::parse(&bytes)
}

/// Parameters that RFC 8707 lets a client repeat.
const REPEATABLE: &[&str] = &["resource"];

/// The decoded parameters of a form body.
#[derive(Debug, Default)]
pub struct FormParams {
    single: HashMap<String, String>,
    repeated: HashMap<String, Vec<String>>,
}

impl FormParams {
    pub fn parse(body: &[u8]) -> Result<FormParams, OAuthError> {
        let mut params = FormParams::default();
        for (name, value) in form_urlencoded::parse(body) {
            if value.is_empty() {
                continue;
            }
            if REPEATABLE.contains(&name.as_ref()) {
                params
                    .repeated
                    .entry(name.into_owned())
                    .or_default()
                    .push(value.into_owned());
                continue;
            }
            if params.single.contains_key(name.as_ref()) {
                return Err(OAuthError::invalid_request(format!(
                    "parameter '{}' is repeated",
                    printable(&name)
                )));
            }
            params.single.insert(name.into_owned(), value.into_owned());
        }
        Ok(params)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.single.get(name).map(String::as_str)
    }

    /// Removes and returns a parameter, so that secrets can be moved into a zeroizing wrapper.
    pub fn take(&mut self, name: &str) -> Option<String> {
        self.single.remove(name)
    }

    pub fn all(&self, name: &str) -> &[String] {
        self.repeated.get(name).map(Vec::as_slice).unwrap_or(&[])
    }
}

/// A parameter name as it may appear in an error description: bounded and free of control
/// characters, since it is client input echoed back.
fn printable(name: &str) -> String {
    name.chars().filter(|c| !c.is_control()).take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_percent_and_plus() {
        let p = FormParams::parse(b"grant_type=client_credentials&scope=a+b&x=%3D%26").unwrap();
        assert_eq!(p.get("grant_type"), Some("client_credentials"));
        assert_eq!(p.get("scope"), Some("a b"));
        assert_eq!(p.get("x"), Some("=&"));
    }

    #[test]
    fn empty_values_count_as_omitted() {
        let p = FormParams::parse(b"scope=&grant_type=x&scope=a").unwrap();
        assert_eq!(p.get("scope"), Some("a"));
    }

    #[test]
    fn repeated_parameters_are_refused_except_resource() {
        assert!(FormParams::parse(b"grant_type=a&grant_type=a").is_err());
        let p = FormParams::parse(b"resource=a&resource=b").unwrap();
        assert_eq!(p.all("resource"), ["a", "b"]);
    }
}
