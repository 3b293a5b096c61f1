//! Optional online checks (RFC 7662 introspection) for routes where minutes of revocation delay
//! are too long. Off by default; enabled per route with `RESOURCE_INTROSPECT_ROUTES`. Answers are
//! cached briefly, keyed by a SHA-256 of the token (never the token itself), so a busy route costs
//! one call per token per cache period. If the token service cannot be asked, such routes fail
//! closed with 503: they were marked online because a stale answer is not acceptable there.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ring::digest;
use zeroize::Zeroizing;

/// Most entries kept; past this, expired entries are dropped, and if none are, all of them.
const MAX_ENTRIES: usize = 10_000;

pub struct Introspector {
    client: IntrospectionClient,
    ttl: Duration,
    cache: Mutex<HashMap<[u8; 32], (bool, Instant)>>,
}

#[derive(Debug, thiserror::Error)]
#[error("the token service could not be asked about this token")]
pub struct Unavailable;

/// This API's client at the token service's RFC 7662 endpoint: one `POST` per question, HTTP
/// Basic with the API's own client, bounded by the outgoing client's timeouts. Shared by the
/// online token check ([`Introspector`]) and the API-key resolution (`crate::api_keys`).
pub struct IntrospectionClient {
    http: reqwest::Client,
    url: String,
    client_id: String,
    client_secret: Zeroizing<String>,
}

impl IntrospectionClient {
    pub fn new(
        url: String,
        client_id: String,
        client_secret: Zeroizing<String>,
    ) -> anyhow::Result<IntrospectionClient> {
        let http = edge::http_client(Duration::from_secs(2), Duration::from_secs(5)).build()?;
        Ok(IntrospectionClient {
            http,
            url,
            client_id,
            client_secret,
        })
    }

    /// The token service's answer about `token` (form `token`, `token_type_hint`), whose
    /// `active` is a boolean; [`Unavailable`] on a transport error, a timeout, a status other
    /// than 200, or a body that is no such answer. The token itself is never logged.
    pub async fn ask(&self, token: &str, hint: &str) -> Result<serde_json::Value, Unavailable> {
        let response = self
            .http
            .post(&self.url)
            .basic_auth(&self.client_id, Some(self.client_secret.as_str()))
            .form(&[("token", token), ("token_type_hint", hint)])
            .send()
            .await
            .map_err(|err| {
                tracing::warn!(error = %err.without_url(), "introspection request failed");
                Unavailable
            })?;
        if response.status() != reqwest::StatusCode::OK {
            tracing::warn!(status = %response.status(), "introspection refused our request; check the introspection client");
            return Err(Unavailable);
        }
        let body: serde_json::Value = response.json().await.map_err(|_| Unavailable)?;
        if !body["active"].is_boolean() {
            tracing::warn!("introspection answered without a boolean `active`");
            return Err(Unavailable);
        }
        Ok(body)
    }
}

impl Introspector {
    pub fn new(
        url: String,
        client_id: String,
        client_secret: Zeroizing<String>,
        ttl: Duration,
    ) -> anyhow::Result<Introspector> {
        Ok(Introspector {
            client: IntrospectionClient::new(url, client_id, client_secret)?,
            ttl,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// Whether the token service still considers `token` active.
    pub async fn is_active(&self, token: &str) -> Result<bool, Unavailable> {
        let mut key = [0u8; 32];
        key.copy_from_slice(digest::digest(&digest::SHA256, token.as_bytes()).as_ref());
        if let Some(active) = self.cached(&key) {
            return Ok(active);
        }
        let body = self.client.ask(token, "access_token").await?;
        let active = body["active"].as_bool().ok_or(Unavailable)?;
        self.store(key, active);
        Ok(active)
    }

    fn cached(&self, key: &[u8; 32]) -> Option<bool> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .get(key)
            .filter(|(_, at)| at.elapsed() < self.ttl)
            .map(|(active, _)| *active)
    }

    fn store(&self, key: [u8; 32], active: bool) {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= MAX_ENTRIES {
            let ttl = self.ttl;
            cache.retain(|_, (_, at)| at.elapsed() < ttl);
            if cache.len() >= MAX_ENTRIES {
                cache.clear();
            }
        }
        cache.insert(key, (active, Instant::now()));
    }
}
