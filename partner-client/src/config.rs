//! What a client needs to know: where the API is, and who it is (a client id and secret for the
//! token service, or an API key).

use std::time::Duration;

use reqwest::Url;
use secrecy::SecretString;

use crate::Error;

/// The environment variables [`Config::from_env`] reads.
pub const TOKEN_URL_VAR: &str = "PARTNER_TOKEN_URL";
pub const API_URL_VAR: &str = "PARTNER_API_URL";
pub const CLIENT_ID_VAR: &str = "PARTNER_CLIENT_ID";
pub const CLIENT_SECRET_VAR: &str = "PARTNER_CLIENT_SECRET";
/// The environment variable [`ApiKeyConfig::from_env`] reads besides [`API_URL_VAR`].
pub const API_KEY_VAR: &str = "PARTNER_API_KEY";

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const TIMEOUT: Duration = Duration::from_secs(30);

/// A client's configuration. `Debug` shows everything but the secret.
#[derive(Debug, Clone)]
pub struct Config {
    /// The token endpoint, in full: `https://auth.example.com/oauth2/token`.
    pub token_url: String,
    /// The API's base URL: `https://api.example.com` (the client appends `/v1/...`).
    pub api_url: String,
    pub client_id: String,
    pub client_secret: SecretString,
    /// The scopes to ask for, space-separated; `None` asks for every scope the client has.
    pub scope: Option<String>,
    /// How long before its expiry a token is renewed (at most half its lifetime, so a short-lived
    /// token is not renewed on every call). Default 60 s.
    pub renew_before: Duration,
    /// Bounds a hung connection attempt and a hung request. Defaults 10 s and 30 s.
    pub connect_timeout: Duration,
    pub timeout: Duration,
}

impl Config {
    pub fn new(
        token_url: impl Into<String>,
        api_url: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: SecretString,
    ) -> Config {
        Config {
            token_url: token_url.into(),
            api_url: api_url.into(),
            client_id: client_id.into(),
            client_secret,
            scope: None,
            renew_before: Duration::from_secs(60),
            connect_timeout: CONNECT_TIMEOUT,
            timeout: TIMEOUT,
        }
    }

    /// Reads `PARTNER_TOKEN_URL`, `PARTNER_API_URL`, `PARTNER_CLIENT_ID` and
    /// `PARTNER_CLIENT_SECRET`; a missing or empty one is an [`Error::Config`] naming it.
    pub fn from_env() -> Result<Config, Error> {
        Ok(Config::new(
            env_var(TOKEN_URL_VAR)?,
            env_var(API_URL_VAR)?,
            env_var(CLIENT_ID_VAR)?,
            SecretString::from(env_var(CLIENT_SECRET_VAR)?),
        ))
    }
}

/// The configuration of a client that calls the API with an API key (`pak_...`), for a partner
/// created with the `api_key` authentication method: the key goes in `X-API-Key` on every call
/// and no token is ever requested. `Debug` shows everything but the key.
#[derive(Debug, Clone)]
pub struct ApiKeyConfig {
    /// The API's base URL: `https://api.example.com` (the client appends `/v1/...`).
    pub api_url: String,
    pub api_key: SecretString,
    /// Bounds a hung connection attempt and a hung request. Defaults 10 s and 30 s.
    pub connect_timeout: Duration,
    pub timeout: Duration,
}

impl ApiKeyConfig {
    pub fn new(api_url: impl Into<String>, api_key: SecretString) -> ApiKeyConfig {
        ApiKeyConfig {
            api_url: api_url.into(),
            api_key,
            connect_timeout: CONNECT_TIMEOUT,
            timeout: TIMEOUT,
        }
    }

    /// Reads `PARTNER_API_URL` and `PARTNER_API_KEY`; a missing or empty one is an
    /// [`Error::Config`] naming it.
    pub fn from_env() -> Result<ApiKeyConfig, Error> {
        Ok(ApiKeyConfig::new(
            env_var(API_URL_VAR)?,
            SecretString::from(env_var(API_KEY_VAR)?),
        ))
    }
}

/// A setting from the environment; unset and empty are the same mistake.
fn env_var(name: &str) -> Result<String, Error> {
    match std::env::var(name) {
        Ok(value) if !value.is_empty() => Ok(value),
        _ => Err(Error::Config(format!("{name} is not set"))),
    }
}

/// An `http` or `https` URL from the configuration.
pub(crate) fn parse_url(what: &str, text: &str) -> Result<Url, Error> {
    let url = Url::parse(text).map_err(|err| Error::Config(format!("the {what}: {err}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Error::Config(format!("the {what} is not http(s): {text}")));
    }
    Ok(url)
}
