//! Fetching a client's JWKS from its `jwks_uri`: which URIs are acceptable, and one bounded GET.

use std::net::IpAddr;
use std::time::Duration;

use reqwest::Url;
use reqwest::header::{ACCEPT, CACHE_CONTROL};

use super::jwks::{ClientKey, JwksError, MAX_JWKS_BYTES, parse_published_jwks};
use super::policy::KeyFetchPolicy;

/// Why a `jwks_uri` is not acceptable. Checked before any network access.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwksUriError {
    #[error("the jwks_uri is not an absolute URL")]
    NotAUrl,
    #[error("the jwks_uri must use https (http is accepted only for a loopback host)")]
    NotHttps,
    #[error("the jwks_uri must not contain credentials")]
    Credentials,
}

/// Checks a `jwks_uri` for registration and before every fetch: `https`, or `http` to a loopback
/// host (`127.0.0.0/8`, `[::1]`, `localhost`). Plain http is tolerated there because traffic to
/// loopback never leaves the machine, so no one on the network can alter the keys; it is what
/// local development and the tests use. Credentials in the URL are refused: they would be stored
/// with the client and sent as Basic authentication.
pub fn check_jwks_uri(uri: &str) -> Result<Url, JwksUriError> {
    let url = Url::parse(uri).map_err(|_| JwksUriError::NotAUrl)?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(JwksUriError::Credentials);
    }
    match (url.scheme(), url.host_str()) {
        (_, None | Some("")) => Err(JwksUriError::NotAUrl),
        ("https", Some(_)) => Ok(url),
        ("http", Some(host)) if is_loopback(host) => Ok(url),
        _ => Err(JwksUriError::NotHttps),
    }
}

/// `localhost`, or an IPv4 or IPv6 loopback address (IPv6 hosts come bracketed).
fn is_loopback(host: &str) -> bool {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    host.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Why a fetch gave no key set. Messages carry no response content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error("the jwks_uri did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the JWKS request failed: {0}")]
    Request(String),
    #[error("the jwks_uri answered HTTP {0}")]
    Status(u16),
    #[error("the jwks_uri redirected; redirects are not followed")]
    Redirected,
    #[error("the JWKS document is larger than {MAX_JWKS_BYTES} bytes")]
    TooLarge,
    #[error("the JWKS document is not acceptable: {0}")]
    Invalid(JwksError),
}

impl FetchError {
    fn request(err: reqwest::Error) -> FetchError {
        // reqwest's message is generic ("error sending request"); the cause is in the chain.
        let mut message = err.to_string();
        let mut source = std::error::Error::source(&err);
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        FetchError::Request(message)
    }
}

/// A fetched key set and how long it may be used before it is fetched again.
pub(crate) struct Fetched {
    pub(crate) keys: Vec<ClientKey>,
    pub(crate) ttl: Duration,
}

/// One GET of `url`, bounded in total time (connecting, headers and body together) by
/// `policy.timeout` and in size by [`MAX_JWKS_BYTES`]: a larger body is refused as soon as its
/// `Content-Length` or the bytes read so far exceed the bound, without reading the rest.
pub(crate) async fn fetch_jwks(
    http: &reqwest::Client,
    url: &Url,
    policy: &KeyFetchPolicy,
) -> Result<Fetched, FetchError> {
    tokio::time::timeout(policy.timeout, fetch_unbounded_in_time(http, url, policy))
        .await
        .map_err(|_| FetchError::Timeout(policy.timeout))?
}

async fn fetch_unbounded_in_time(
    http: &reqwest::Client,
    url: &Url,
    policy: &KeyFetchPolicy,
) -> Result<Fetched, FetchError> {
    let mut response = http
        .get(url.clone())
        .header(ACCEPT, "application/jwk-set+json, application/json")
        .send()
        .await
        .map_err(FetchError::request)?;
    // The client should not follow redirects (edge::http_client does not); if one given to us
    // does, the keys would come from a URI nobody registered.
    if response.url() != url {
        return Err(FetchError::Redirected);
    }
    if response.status() != reqwest::StatusCode::OK {
        return Err(FetchError::Status(response.status().as_u16()));
    }
    if response
        .content_length()
        .is_some_and(|length| length > MAX_JWKS_BYTES as u64)
    {
        return Err(FetchError::TooLarge);
    }
    let ttl = response
        .headers()
        .get(CACHE_CONTROL)
        .and_then(|value| value.to_str().ok())
        .map_or(policy.default_ttl, |value| cache_ttl(value, policy));
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(FetchError::request)? {
        if body.len() + chunk.len() > MAX_JWKS_BYTES {
            return Err(FetchError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    let keys = parse_published_jwks(&body).map_err(FetchError::Invalid)?;
    Ok(Fetched { keys, ttl })
}

/// How long to keep a set, from its `Cache-Control`: `max-age` bounded to the policy's
/// [`KeyFetchPolicy::min_ttl`, `KeyFetchPolicy::max_ttl`]; `no-cache` or `no-store` without
/// `max-age` mean the minimum; anything else the default.
pub(crate) fn cache_ttl(value: &str, policy: &KeyFetchPolicy) -> Duration {
    let mut uncacheable = false;
    for directive in value.split(',') {
        let directive = directive.trim();
        if let Some((name, seconds)) = directive.split_once('=')
            && name.trim().eq_ignore_ascii_case("max-age")
            && let Ok(seconds) = seconds.trim().trim_matches('"').parse::<u64>()
        {
            return Duration::from_secs(seconds)
                .max(policy.min_ttl)
                .min(policy.max_ttl);
        }
        uncacheable |= directive.eq_ignore_ascii_case("no-cache")
            || directive.eq_ignore_ascii_case("no-store");
    }
    if uncacheable {
        policy.min_ttl
    } else {
        policy.default_ttl
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_is_required_except_for_loopback_hosts() {
        for ok in [
            "https://partner.example/jwks.json",
            "https://partner.example:8443/.well-known/jwks.json?v=2",
            "http://127.0.0.1:8080/jwks",
            "http://127.1.2.3/jwks",
            "http://[::1]:9000/jwks",
            "http://localhost/jwks",
            "http://LOCALHOST:1/jwks",
        ] {
            assert!(check_jwks_uri(ok).is_ok(), "{ok}");
        }
        for (bad, why) in [
            ("http://example.com/jwks", JwksUriError::NotHttps),
            ("http://localhost.example.com/jwks", JwksUriError::NotHttps),
            ("http://10.0.0.1/jwks", JwksUriError::NotHttps),
            ("http://[::ffff:127.0.0.1]/jwks", JwksUriError::NotHttps),
            ("ftp://127.0.0.1/jwks", JwksUriError::NotHttps),
            ("file:///etc/passwd", JwksUriError::NotAUrl),
            ("/jwks", JwksUriError::NotAUrl),
            ("partner.example/jwks", JwksUriError::NotAUrl),
            (
                "https://user:pw@partner.example/jwks",
                JwksUriError::Credentials,
            ),
            (
                "https://user@partner.example/jwks",
                JwksUriError::Credentials,
            ),
        ] {
            assert_eq!(check_jwks_uri(bad), Err(why), "{bad}");
        }
    }

    #[test]
    fn max_age_is_honoured_within_bounds() {
        let policy = KeyFetchPolicy::default();
        let ttl = |value| cache_ttl(value, &policy);
        assert_eq!(ttl("public, max-age=600"), Duration::from_secs(600));
        assert_eq!(ttl("max-age=\"120\""), Duration::from_secs(120));
        assert_eq!(ttl("max-age=5"), policy.min_ttl);
        assert_eq!(ttl("max-age=86400"), policy.max_ttl);
        assert_eq!(ttl("no-store"), policy.min_ttl);
        assert_eq!(ttl("no-cache, max-age=900"), Duration::from_secs(900));
        assert_eq!(ttl("public"), policy.default_ttl);
        assert_eq!(ttl("max-age=soon"), policy.default_ttl);
    }
}
