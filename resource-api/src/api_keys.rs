//! API keys (`pak_` + 43 base64url characters) beside bearer tokens: each key is resolved at the
//! token service's introspection endpoint (`token_type_hint=api_key`) into the same claims a
//! token carries, so scopes, partner isolation and the per-client rate limit apply unchanged.
//!
//! Resolutions are remembered in a bounded cache keyed by the SHA-256 of the key (never the key
//! itself), with one introspection call in flight per key: an active key for
//! `RESOURCE_API_KEY_CACHE`, an inactive one for [`INACTIVE_FOR`] (or the cache time if
//! shorter), and a token service that cannot be asked for [`UNAVAILABLE_FOR`], so a flood of one
//! wrong key, or an outage, costs one call per key per period. An active entry keeps working
//! while the token service is down: that is what the cache is for, and the reason a disabled key
//! may keep working here for up to the cache time.
//!
//! Wrong keys are counted per source address against the token service's budget for failed
//! client authentication (`shared_limits::LockoutPolicy::default`), in a namespace of their own
//! ([`LOCKOUT_NAMESPACE`]); nothing is locked per key or per client, so nobody can cut a partner
//! off by failing with its client id.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use quick_cache::sync::{Cache, EntryAction, EntryResult};
use serde_json::Value;
use shared_claims::{AccessTokenClaims, Audience, ClientId, PartnerId, ScopeSet};
use shared_limits::{LockoutPolicy, Lockouts, SharedStore};
use zeroize::Zeroizing;

use crate::config::ApiKeySettings;
use crate::introspection::IntrospectionClient;
use crate::metrics::KeyIntrospections;

/// What every API key starts with; a bearer credential with this prefix is never a JWT.
pub const PREFIX: &str = "pak_";
/// `pak_` and 43 base64url characters (256 random bits).
pub const KEY_LEN: usize = 47;
/// Most resolutions remembered.
pub const CACHE_ENTRIES: usize = 10_000;
/// How long an unknown or inactive key is remembered (at most the cache time).
pub const INACTIVE_FOR: Duration = Duration::from_secs(5);
/// How long "the token service cannot be asked" is remembered for a key.
pub const UNAVAILABLE_FOR: Duration = Duration::from_secs(1);
/// The Redis namespace of the wrong-key lockouts, apart from the token service's counters.
pub const LOCKOUT_NAMESPACE: &str = "resource-api-key:";
/// The `token_type_hint` and the `token_type` of an API key at the introspection endpoint.
pub const TOKEN_TYPE: &str = "api_key";

/// Whether a credential is meant as an API key (and so must never be read as a JWT).
pub fn is_key_shaped(credential: &str) -> bool {
    credential.starts_with(PREFIX)
}

/// A credential of the API-key form. Its `Debug` never shows the key.
pub struct ApiKey(Zeroizing<String>);

/// A credential meant as an API key that is not of the key's form.
#[derive(Debug, thiserror::Error)]
#[error("the API key is malformed")]
pub struct MalformedKey;

impl ApiKey {
    /// `pak_` and exactly 43 characters of `A-Za-z0-9-_`.
    pub fn parse(text: &str) -> Result<ApiKey, MalformedKey> {
        let well_formed = text.len() == KEY_LEN
            && text.starts_with(PREFIX)
            && text[PREFIX.len()..]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !well_formed {
            return Err(MalformedKey);
        }
        Ok(ApiKey(Zeroizing::new(text.to_owned())))
    }

    fn digest(&self) -> [u8; 32] {
        let digest = ring::digest::digest(&ring::digest::SHA256, self.0.as_bytes());
        digest.as_ref().try_into().expect("SHA-256 is 32 bytes")
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(pak_…)")
    }
}

/// What the token service says about a key, as remembered.
#[derive(Debug, Clone)]
pub enum Resolution {
    /// The key's client, as the claims of a token would describe it.
    Active(Arc<AccessTokenClaims>),
    /// Unknown, disabled, deleted, rotated out, for another audience, or not an API key.
    Inactive,
    /// The token service could not be asked (transport error, timeout, another status).
    Unavailable,
}

#[derive(Clone)]
struct Entry {
    resolution: Resolution,
    until: Instant,
}

/// Resolves API keys for one issuer and audience; shared by the API and the authorizer.
pub struct ApiKeys {
    client: IntrospectionClient,
    issuer: String,
    audience: String,
    active_for: Duration,
    cache: Cache<[u8; 32], Entry>,
    lockouts: Lockouts,
    calls: KeyIntrospections,
}

impl ApiKeys {
    /// `shared`: the Redis store of the rate limit, when there is one, so wrong keys are counted
    /// across instances.
    pub fn new(
        settings: &ApiKeySettings,
        issuer: &str,
        audience: &str,
        shared: Option<SharedStore>,
        calls: KeyIntrospections,
    ) -> anyhow::Result<ApiKeys> {
        Ok(ApiKeys {
            client: IntrospectionClient::new(
                settings.url.clone(),
                settings.client_id.clone(),
                settings.client_secret.clone(),
            )?,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            active_for: settings.cache,
            cache: Cache::new(CACHE_ENTRIES),
            lockouts: Lockouts::new(LockoutPolicy::default(), shared)
                .in_namespace(LOCKOUT_NAMESPACE),
            calls,
        })
    }

    /// What the token service says about `key`, from the cache while the entry holds; else one
    /// introspection call, which concurrent requests with the same key wait for and share.
    pub async fn resolve(&self, key: &ApiKey) -> Resolution {
        let digest = key.digest();
        if let Some(entry) = self.cache.get(&digest)
            && entry.until > Instant::now()
        {
            return entry.resolution;
        }
        let fresh = |_: &[u8; 32], entry: &mut Entry| {
            if entry.until > Instant::now() {
                EntryAction::Retain(entry.resolution.clone())
            } else {
                EntryAction::ReplaceWithGuard
            }
        };
        let guard = match self.cache.entry_async(&digest, fresh).await {
            EntryResult::Retained(resolution) => return resolution,
            EntryResult::Vacant(guard) | EntryResult::Replaced(guard, _) => Some(guard),
            // Not answered by `entry_async` with this callback; resolved uncached all the same.
            EntryResult::Removed(..) | EntryResult::Timeout => None,
        };
        let (resolution, remembered_for) = self.introspect(key).await;
        if let Some(guard) = guard {
            let _ = guard.insert(Entry {
                resolution: resolution.clone(),
                until: Instant::now() + remembered_for,
            });
        }
        resolution
    }

    /// How long the address must wait if it is locked out after too many wrong keys.
    pub async fn locked_out(&self, source: IpAddr) -> Option<Duration> {
        self.lockouts.check_source(source).await
    }

    /// Counts a wrong key against `source`'s budget.
    pub async fn wrong_key_from(&self, source: IpAddr) {
        if let Some(wait) = self.lockouts.record_source_failure(source).await {
            tracing::warn!(%source, wait_secs = wait.as_secs(), "address locked out after repeated wrong API keys");
        }
    }

    /// Forgets in-process lockout state of addresses that have not failed lately.
    pub fn shrink(&self) {
        self.lockouts.shrink();
    }

    /// One introspection call, and how long its answer is to be remembered.
    async fn introspect(&self, key: &ApiKey) -> (Resolution, Duration) {
        let Ok(answer) = self.client.ask(&key.0, TOKEN_TYPE).await else {
            self.calls.unavailable.increment(1);
            return (Resolution::Unavailable, UNAVAILABLE_FOR);
        };
        match self.claims_of(&answer) {
            Some(claims) => {
                self.calls.active.increment(1);
                // A key in its grace period after a rotation carries its end as `exp`: it is
                // not remembered past it.
                let remembered_for = match answer["exp"].as_i64() {
                    Some(exp) => {
                        let left = exp.saturating_sub(chrono::Utc::now().timestamp()).max(0);
                        self.active_for
                            .min(Duration::from_secs(left.unsigned_abs()))
                    }
                    None => self.active_for,
                };
                (Resolution::Active(Arc::new(claims)), remembered_for)
            }
            None => {
                self.calls.inactive.increment(1);
                (Resolution::Inactive, INACTIVE_FOR.min(self.active_for))
            }
        }
    }

    /// The claims of an active API key addressed to this API; `None` for anything else.
    fn claims_of(&self, answer: &Value) -> Option<AccessTokenClaims> {
        if answer["active"] != Value::Bool(true) {
            return None;
        }
        if answer["token_type"] != TOKEN_TYPE {
            tracing::warn!("introspection called an API key active but not of type api_key");
            return None;
        }
        let addressed_here = match &answer["aud"] {
            Value::String(aud) => *aud == self.audience,
            Value::Array(auds) => auds.iter().any(|aud| *aud == *self.audience),
            _ => false,
        };
        if !addressed_here {
            return None;
        }
        let client_id = answer["client_id"]
            .as_str()
            .and_then(|c| ClientId::parse(c).ok());
        let partner_id = answer["partner_id"]
            .as_str()
            .and_then(|p| PartnerId::parse(p).ok());
        let scope = match answer["scope"].as_str() {
            None | Some("") => Some(ScopeSet::from_iter(std::iter::empty())),
            Some(scope) => ScopeSet::parse(scope).ok(),
        };
        let (Some(client_id), Some(partner_id), Some(scope)) = (client_id, partner_id, scope)
        else {
            tracing::warn!(
                "introspection called an API key active without a usable client_id, partner_id or scope"
            );
            return None;
        };
        // The principal of a key is described as a token would be; it "expires" when this
        // resolution is no longer reused (`/v1/me` shows that instant).
        let now = chrono::Utc::now().timestamp();
        let lasts = i64::try_from(self.active_for.as_secs()).unwrap_or(i64::MAX);
        Some(AccessTokenClaims {
            iss: self.issuer.clone(),
            sub: client_id.as_str().to_owned(),
            aud: Audience::One(self.audience.clone()),
            exp: now.saturating_add(lasts),
            iat: now,
            nbf: now,
            jti: String::new(),
            client_id,
            scope,
            partner_id,
            cnf: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "pak_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

    #[test]
    fn a_key_is_the_prefix_and_43_base64url_characters() {
        assert_eq!(KEY.len(), KEY_LEN);
        assert!(ApiKey::parse(KEY).is_ok());
        assert!(ApiKey::parse("pak_abcdefghijklmnopqrstuvwxyzABCDEFGHIJ-_01234").is_ok());
        for bad in [
            "pak_x",
            "pak_",
            &format!("{KEY}A"),
            &KEY[..46],
            "pak_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
            "pak_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA+",
            "pak_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA.",
            "PAK_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "pk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "pak_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAé",
        ] {
            assert!(ApiKey::parse(bad).is_err(), "{bad}");
        }
        assert!(is_key_shaped("pak_x"));
        assert!(!is_key_shaped("eyJhbGciOi.x.y"));
    }

    #[test]
    fn a_keys_debug_never_shows_it() {
        let key = ApiKey::parse(KEY).unwrap();
        assert_eq!(format!("{key:?}"), "ApiKey(pak_…)");
        assert!(!format!("{:?}", Some(&key)).contains("AAAA"));
    }
}
