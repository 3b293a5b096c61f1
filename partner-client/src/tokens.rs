//! The token cache: one access token (and refresh token) per client, renewed shortly before it
//! expires, with at most one token request in flight.
//!
//! Single flight comes from holding the cache's async mutex across the token request: a task
//! that finds the token due for renewal renews it while holding the lock, and every task that
//! asks meanwhile waits on the lock and then finds the fresh token. Tokio's mutex is fair, so a
//! waiting task is not starved.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{ACCEPT, CACHE_CONTROL};
use reqwest::{StatusCode, Url};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::error::retry_after;
use crate::{Config, Error};

/// An access token as the API takes it. `Debug` does not show it.
#[derive(Clone)]
pub struct AccessToken {
    value: Arc<str>,
    /// When the token expires, by this process's clock (from `expires_in`).
    pub expires_at: Instant,
}

impl AccessToken {
    /// The token itself, for an `Authorization: Bearer` header.
    pub fn secret(&self) -> &str {
        &self.value
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("value", &"[REDACTED]")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl PartialEq for AccessToken {
    fn eq(&self, other: &AccessToken) -> bool {
        self.value == other.value
    }
}

pub(crate) struct Tokens {
    http: reqwest::Client,
    token_url: Url,
    client_id: String,
    client_secret: SecretString,
    scope: Option<String>,
    renew_before: Duration,
    cache: Mutex<Cache>,
}

#[derive(Default)]
struct Cache {
    access: Option<(AccessToken, Instant)>,
    refresh: Option<SecretString>,
}

/// RFC 6749 §5.1.
#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    token_type: String,
    expires_in: Option<u64>,
    refresh_token: Option<String>,
}

/// RFC 6749 §5.2.
#[derive(Deserialize)]
struct OAuthErrorBody {
    error: String,
    error_description: Option<String>,
}

/// The lifetime assumed when a token response gives none (RFC 6749 makes `expires_in` optional).
const UNKNOWN_LIFETIME: Duration = Duration::from_secs(60);

impl Tokens {
    pub(crate) fn new(config: &Config, http: reqwest::Client) -> Result<Tokens, Error> {
        Ok(Tokens {
            http,
            token_url: crate::config::parse_url("token URL", &config.token_url)?,
            client_id: config.client_id.clone(),
            client_secret: config.client_secret.clone(),
            scope: config.scope.clone(),
            renew_before: config.renew_before,
            cache: Mutex::new(Cache::default()),
        })
    }

    /// A token that is not due for renewal: the cached one, or a new one.
    pub(crate) async fn get(&self) -> Result<AccessToken, Error> {
        let mut cache = self.cache.lock().await;
        if let Some((token, renew_at)) = &cache.access
            && Instant::now() < *renew_at
        {
            return Ok(token.clone());
        }
        self.renew(&mut cache).await
    }

    /// Forgets `rejected` (the API refused it), unless another task has already replaced it.
    pub(crate) async fn forget(&self, rejected: &AccessToken) {
        let mut cache = self.cache.lock().await;
        if cache.access.as_ref().is_some_and(|(t, _)| t == rejected) {
            cache.access = None;
        }
    }

    /// A new token: by the refresh token when there is one, falling back to the client
    /// credentials when the token service refuses it (expired, revoked, already used).
    async fn renew(&self, cache: &mut Cache) -> Result<AccessToken, Error> {
        cache.access = None;
        // Taken, not borrowed: a refresh token is single-use, and one whose fate is unknown (the
        // request failed in transit) is not presented again, which would look like a replay.
        if let Some(refresh) = cache.refresh.take() {
            let form = [
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh.expose_secret()),
            ];
            match self.request(&form).await {
                Ok((token, next_refresh)) => {
                    // A server that does not rotate refresh tokens keeps the old one valid.
                    cache.refresh = next_refresh.or(Some(refresh));
                    return Ok(self.keep(cache, token));
                }
                Err(Error::OAuth { error, .. }) if error == "invalid_grant" => {}
                Err(err) => return Err(err),
            }
        }
        let mut form = vec![("grant_type", "client_credentials")];
        if let Some(scope) = &self.scope {
            form.push(("scope", scope));
        }
        let (token, refresh) = self.request(&form).await?;
        cache.refresh = refresh;
        Ok(self.keep(cache, token))
    }

    fn keep(&self, cache: &mut Cache, token: AccessToken) -> AccessToken {
        let lifetime = token.expires_at.saturating_duration_since(Instant::now());
        let renew_at = token.expires_at - self.renew_before.min(lifetime / 2);
        cache.access = Some((token.clone(), renew_at));
        token
    }

    /// One token request with HTTP Basic authentication, the id and secret form-urlencoded
    /// first as RFC 6749 §2.3.1 asks.
    async fn request(
        &self,
        form: &[(&str, &str)],
    ) -> Result<(AccessToken, Option<SecretString>), Error> {
        let encode = |text: &str| form_urlencoded::byte_serialize(text.as_bytes()).collect();
        let id: String = encode(&self.client_id);
        let secret = SecretString::from(encode(self.client_secret.expose_secret()));
        // Measured before sending, so the expiry is never later than the server's.
        let sent = Instant::now();
        let response = self
            .http
            .post(self.token_url.clone())
            .basic_auth(id, Some(secret.expose_secret()))
            .header(ACCEPT, "application/json")
            .header(CACHE_CONTROL, "no-store")
            .form(form)
            .send()
            .await?;
        let status = response.status();
        if status == StatusCode::TOO_MANY_REQUESTS {
            return Err(Error::RateLimited {
                retry_after: retry_after(response.headers()),
            });
        }
        let body = response.bytes().await?;
        if !status.is_success() {
            return Err(match serde_json::from_slice::<OAuthErrorBody>(&body) {
                Ok(body) => Error::OAuth {
                    status,
                    error: body.error,
                    error_description: body.error_description,
                },
                Err(_) => Error::decode(
                    "the token endpoint's error",
                    format!("{status} without an OAuth error body"),
                ),
            });
        }
        let body: TokenResponse = serde_json::from_slice(&body)
            .map_err(|err| Error::decode("the token response", err))?;
        if !body.token_type.eq_ignore_ascii_case("bearer") {
            return Err(Error::decode(
                "the token response",
                format!("token_type {:?} is not Bearer", body.token_type),
            ));
        }
        let lifetime = body
            .expires_in
            .map(Duration::from_secs)
            .unwrap_or(UNKNOWN_LIFETIME);
        let token = AccessToken {
            value: body.access_token.into(),
            expires_at: sent + lifetime,
        };
        Ok((token, body.refresh_token.map(SecretString::from)))
    }
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tokens")
            .field("token_url", &self.token_url.as_str())
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret)
            .finish_non_exhaustive()
    }
}
