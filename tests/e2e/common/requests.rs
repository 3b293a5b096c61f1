//! The tests' one vocabulary for requests: a token from the token endpoint (or its whole answer,
//! for tests about errors), a GET to the partner API with a bearer token, and a token's header
//! and claims. Every request goes through [`http`], or through [`http_from`] when a test is about
//! the address a request comes from.

use std::net::IpAddr;
use std::sync::LazyLock;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use super::TestAuth;
use super::system::TestApi;

/// The test binary's one HTTP client (a cheap handle: cloning shares its connection pool).
///
/// Building a client loads the system's root certificates, tens of milliseconds in a debug build;
/// a helper that built one per request made a loop of 50 requests outlive a 2-second token on a
/// slower machine. Sharing one client across the tests' runtimes is sound: it holds no
/// connection between requests (below), so nothing made under one test's runtime outlives it.
///
/// It keeps no idle connections: every request opens its own (a fraction of a millisecond on
/// loopback), as the tests always did. Reusing connections made one test's request fail with
/// `IncompleteMessage` on a connection the server had closed after answering an oversized body
/// early; the tests are about answers, not connection reuse.
///
/// It comes from `edge::http_client`, as the services' own clients do (ring as the TLS provider,
/// no redirects). The timeouts only bound a hang; no assertion depends on them.
pub fn http() -> reqwest::Client {
    static CLIENT: LazyLock<reqwest::Client> = LazyLock::new(|| {
        edge::http_client(Duration::from_secs(10), Duration::from_secs(30))
            .pool_max_idle_per_host(0)
            .build()
            .expect("http client")
    });
    CLIENT.clone()
}

/// A client whose connections come from `address` (a loopback address such as `127.0.0.7`), for
/// the tests about limits per source address. The timeout only bounds a hang.
pub fn http_from(address: &str) -> reqwest::Client {
    edge::http_client(Duration::from_secs(10), Duration::from_secs(10))
        .local_address(address.parse::<IpAddr>().expect("an IP address"))
        .build()
        .expect("http client")
}

/// How a client authenticates to the token endpoint (RFC 6749 §2.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// HTTP Basic, the id and secret form-encoded first as §2.3.1 asks (which changes nothing
    /// for generated ids and secrets).
    Basic,
    /// `client_id` and `client_secret` in the form body.
    Post,
}

/// The token endpoint's answer to `form` sent through `client` with the client's credentials
/// as `method` says, whatever it is.
pub async fn token_response_via(
    client: &reqwest::Client,
    auth: &TestAuth,
    method: ClientAuth,
    id: &str,
    secret: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    let request = client.post(auth.url("/oauth2/token"));
    let request = match method {
        ClientAuth::Basic => request
            .basic_auth(form_encode(id), Some(form_encode(secret)))
            .form(form),
        ClientAuth::Post => {
            let mut form = form.to_vec();
            form.extend([("client_id", id), ("client_secret", secret)]);
            request.form(&form)
        }
    };
    request.send().await.expect("token request")
}

fn form_encode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// The form of a client-credentials grant that asks for nothing more.
pub const CLIENT_CREDENTIALS: &[(&str, &str)] = &[("grant_type", "client_credentials")];

/// The token endpoint's answer to `form` with the client's credentials sent as `method` says.
pub async fn token_response_as(
    auth: &TestAuth,
    method: ClientAuth,
    id: &str,
    secret: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    token_response_via(&http(), auth, method, id, secret, form).await
}

/// The token endpoint's answer to `form` sent with HTTP Basic credentials, whatever it is.
pub async fn token_response(
    auth: &TestAuth,
    id: &str,
    secret: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    token_response_as(auth, ClientAuth::Basic, id, secret, form).await
}

/// The status and JSON body of a response (`Null` for a body that is not JSON).
pub async fn status_and_json(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The token endpoint's answer to a client-credentials grant, which must be a success.
pub async fn token_grant(auth: &TestAuth, id: &str, secret: &str) -> Value {
    let response = token_response(auth, id, secret, CLIENT_CREDENTIALS).await;
    let (status, body) = status_and_json(response).await;
    assert_eq!(status, StatusCode::OK, "a token for {id}: {body}");
    body
}

/// An access token for a client, by the client-credentials grant with HTTP Basic.
pub async fn token(auth: &TestAuth, id: &str, secret: &str) -> String {
    token_grant(auth, id, secret).await["access_token"]
        .as_str()
        .expect("an access token")
        .to_owned()
}

/// An access token signed by `kid`, fetching again until the token service has picked the key up
/// (it reloads keys every 200 ms in tests).
pub async fn token_signed_by(auth: &TestAuth, id: &str, secret: &str, kid: &str) -> String {
    super::eventually(
        Duration::from_secs(30),
        &format!("a token signed by {kid}"),
        || async {
            let token = token(auth, id, secret).await;
            (kid_of(&token) == kid).then_some(token)
        },
    )
    .await
}

/// The partner API's answer to a GET of `path` with `token` as the bearer token.
pub async fn get(api: &TestApi, path: &str, token: &str) -> reqwest::Response {
    http()
        .get(api.url(path))
        .bearer_auth(token)
        .send()
        .await
        .expect("partner API request")
}

/// The status of a GET of `url` without credentials (health, readiness, public documents).
pub async fn get_status(url: impl reqwest::IntoUrl) -> StatusCode {
    http().get(url).send().await.expect("GET").status()
}

/// The JSON body of a GET of `url` without credentials (the JWKS, the metadata).
pub async fn get_json<T: serde::de::DeserializeOwned>(url: impl reqwest::IntoUrl) -> T {
    http()
        .get(url)
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("a JSON body")
}

/// A token's header, decoded as it is sent (the tests read what the server put there).
pub fn header_of(token: &str) -> Value {
    decode_part(token, 0, "header")
}

/// The `kid` in a token's header.
pub fn kid_of(token: &str) -> String {
    header_of(token)["kid"].as_str().expect("a kid").to_owned()
}

/// A token's claims, decoded without verification (the tests read what the server put there).
pub fn claims_of(token: &str) -> Value {
    decode_part(token, 1, "claims")
}

fn decode_part(token: &str, index: usize, what: &str) -> Value {
    use base64::Engine;
    let part = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.split('.').nth(index).unwrap_or(""))
        .unwrap_or_else(|err| panic!("base64url {what}: {err}"));
    serde_json::from_slice(&part).unwrap_or_else(|err| panic!("JSON {what}: {err}"))
}
