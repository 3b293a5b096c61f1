//! How keys published at a `jwks_uri` are fetched and cached: one policy, read by the fetch and
//! by the registry.

use std::time::Duration;

/// How keys fetched from a `jwks_uri` are fetched and cached.
#[derive(Debug, Clone)]
pub struct KeyFetchPolicy {
    /// The most one fetch may take, connecting, headers and body together.
    pub timeout: Duration,
    /// How long a set is used before it is fetched again, when the response's `Cache-Control`
    /// names no `max-age`.
    pub default_ttl: Duration,
    /// Bounds on an honoured `max-age`: a partner can neither make us fetch on every request
    /// nor make us trust a removed key for days.
    pub min_ttl: Duration,
    pub max_ttl: Duration,
    /// After a refetch for an unknown `kid`, or after a failed fetch, no other fetch of that URI
    /// for this long: a stream of assertions with made-up kids, or a URI that is down, costs one
    /// fetch per cooldown.
    pub cooldown: Duration,
    /// How long past its expiry a set is still used while the URI fails; after that, lookups
    /// are [`KeyLookupError::Unavailable`](super::KeyLookupError::Unavailable).
    pub max_stale: Duration,
    /// How many URIs are cached; the least recently used is forgotten beyond that.
    pub max_uris: usize,
    /// How many distinct documents are cached; likewise.
    pub max_documents: usize,
}

impl Default for KeyFetchPolicy {
    fn default() -> Self {
        KeyFetchPolicy {
            timeout: Duration::from_secs(5),
            default_ttl: Duration::from_secs(300),
            min_ttl: Duration::from_secs(60),
            max_ttl: Duration::from_secs(3600),
            cooldown: Duration::from_secs(10),
            max_stale: Duration::from_secs(24 * 3600),
            max_uris: 256,
            max_documents: 256,
        }
    }
}
