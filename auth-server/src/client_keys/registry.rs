//! [`ClientKeys`]: the keys the token endpoint verifies a client's assertion with, from the
//! client's registered JWKS document or its `jwks_uri`, cached.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use reqwest::Url;

use super::fetch::{FetchError, JwksUriError, check_jwks_uri, fetch_jwks};
use super::jwks::{ClientKey, JwksError, KeySet, parse_jwks};
pub use super::policy::KeyFetchPolicy;

/// Where a client's public keys come from, as registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// The JWKS document itself, as stored (JSON text).
    Document(Arc<str>),
    /// A `jwks_uri` the keys are fetched from.
    Uri(String),
}

/// Why no key was found for an assertion. The caller answers `invalid_client` whatever the
/// reason, and records [`KeyLookupError::as_str`] in the audit trail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyLookupError {
    /// The key set holds no key the assertion's `kid` names (or, without a `kid`, more than one).
    #[error("no registered key matches the assertion's kid")]
    UnknownKey,
    /// The stored JWKS document does not parse; it did when it was registered, so it was changed
    /// by other means.
    #[error("the client's registered JWKS is invalid: {0}")]
    InvalidDocument(JwksError),
    /// The stored `jwks_uri` is not acceptable; nothing was fetched.
    #[error("the client's jwks_uri is not acceptable: {0}")]
    InvalidUri(JwksUriError),
    /// No usable key set: the `jwks_uri` has not answered with a valid JWKS and none is cached
    /// (the last fetch error, if any), or the cached one is past [`KeyFetchPolicy::max_stale`].
    #[error("the client's keys are unavailable{}", .0.as_ref().map(|e| format!(": {e}")).unwrap_or_default())]
    Unavailable(Option<FetchError>),
}

impl KeyLookupError {
    /// The reason recorded in the audit trail: `unknown_key` or `keys_unavailable`.
    pub fn as_str(&self) -> &'static str {
        match self {
            KeyLookupError::UnknownKey => "unknown_key",
            _ => "keys_unavailable",
        }
    }
}

/// The registry the token endpoint asks for a client's key. Cheap to clone; clones share the
/// caches.
///
/// - Documents are parsed once and cached by their content, so an update by the administrator
///   (a new content) takes effect at the next lookup.
/// - A URI's set is fetched on first use and again when it expires (see [`KeyFetchPolicy`]).
///   A `kid` it does not hold causes one refetch (the partner may have rotated), then none for
///   the cooldown. Concurrent lookups that need a fetch share one. While the URI fails, the last
///   good set is used, up to [`KeyFetchPolicy::max_stale`] past its expiry.
#[derive(Clone)]
pub struct ClientKeys {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    policy: KeyFetchPolicy,
    documents: Mutex<HashMap<Arc<str>, DocumentEntry>>,
    uris: Mutex<HashMap<String, Arc<UriEntry>>>,
}

struct DocumentEntry {
    parsed: Result<Arc<KeySet>, JwksError>,
    last_used: Instant,
}

struct UriEntry {
    state: Mutex<UriState>,
    /// Held for the duration of a fetch, so that concurrent lookups share it.
    fetch: tokio::sync::Mutex<()>,
}

struct UriState {
    set: Option<Arc<FetchedSet>>,
    /// Counts finished fetches: a lookup that waited for the fetch lock and sees it changed
    /// uses that fetch's result instead of fetching again.
    generation: u64,
    no_fetch_before: Option<Instant>,
    last_error: Option<FetchError>,
    last_used: Instant,
}

struct FetchedSet {
    keys: KeySet,
    expires: Instant,
}

/// Why a lookup wants a fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Need {
    Empty,
    Expired,
    UnknownKid,
}

impl ClientKeys {
    /// A registry fetching with `http`, which should come from `edge::http_client` (ring TLS,
    /// no redirects); the policy's timeout applies on top of the client's.
    pub fn new(http: reqwest::Client, policy: KeyFetchPolicy) -> ClientKeys {
        ClientKeys {
            inner: Arc::new(Inner {
                http,
                policy,
                documents: Mutex::new(HashMap::new()),
                uris: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The HTTP client the application gives [`ClientKeys::new`]: `edge::http_client` with a
    /// 2-second connect timeout and the default fetch timeout.
    pub fn http_client() -> anyhow::Result<reqwest::Client> {
        let timeout = KeyFetchPolicy::default().timeout;
        Ok(edge::http_client(Duration::from_secs(2), timeout).build()?)
    }

    /// The key of `client_id` that an assertion whose header names `kid` is to be verified with.
    /// `client_id` only labels log lines: keys are cached by document and by URI.
    pub async fn keys_for(
        &self,
        client_id: &str,
        source: &KeySource,
        kid: Option<&str>,
    ) -> Result<Arc<ClientKey>, KeyLookupError> {
        match source {
            KeySource::Document(text) => {
                let set = self
                    .document(text)
                    .map_err(KeyLookupError::InvalidDocument)?;
                set.select(kid).ok_or(KeyLookupError::UnknownKey)
            }
            KeySource::Uri(uri) => {
                let url = check_jwks_uri(uri).map_err(KeyLookupError::InvalidUri)?;
                self.uri_key(client_id, uri, &url, kid).await
            }
        }
    }

    fn document(&self, text: &Arc<str>) -> Result<Arc<KeySet>, JwksError> {
        let now = Instant::now();
        if let Some(entry) = lock(&self.inner.documents).get_mut(&**text) {
            entry.last_used = now;
            return entry.parsed.clone();
        }
        // Parsed outside the lock: other lookups need not wait for it.
        let parsed = parse_jwks(text).map(|keys| Arc::new(KeySet::new(keys)));
        let mut documents = lock(&self.inner.documents);
        if documents.len() >= self.inner.policy.max_documents.max(1)
            && let Some(oldest) = documents
                .iter()
                .min_by_key(|(_, entry)| entry.last_used)
                .map(|(text, _)| Arc::clone(text))
        {
            documents.remove(&oldest);
        }
        documents.insert(
            Arc::clone(text),
            DocumentEntry {
                parsed: parsed.clone(),
                last_used: now,
            },
        );
        parsed
    }

    async fn uri_key(
        &self,
        client_id: &str,
        uri: &str,
        url: &Url,
        kid: Option<&str>,
    ) -> Result<Arc<ClientKey>, KeyLookupError> {
        let policy = &self.inner.policy;
        let entry = self.uri_entry(uri);
        let (seen, need) = {
            let mut state = lock(&entry.state);
            let now = Instant::now();
            state.last_used = now;
            let need = match &state.set {
                None => Need::Empty,
                Some(set) if now >= set.expires => Need::Expired,
                Some(set) => match set.keys.select(kid) {
                    Some(key) => return Ok(key),
                    None => Need::UnknownKid,
                },
            };
            if state.no_fetch_before.is_some_and(|at| now < at) {
                return answer(&state, kid, policy);
            }
            (state.generation, need)
        };
        let _fetching = entry.fetch.lock().await;
        if lock(&entry.state).generation == seen {
            let result = fetch_jwks(&self.inner.http, url, policy).await;
            let mut state = lock(&entry.state);
            let now = Instant::now();
            state.generation += 1;
            match result {
                Ok(fetched) => {
                    tracing::debug!(
                        client_id,
                        jwks_uri = uri,
                        keys = fetched.keys.len(),
                        ttl = fetched.ttl.as_secs(),
                        "client JWKS fetched"
                    );
                    let set = Arc::new(FetchedSet {
                        keys: KeySet::new(fetched.keys),
                        expires: now + fetched.ttl,
                    });
                    state.set = Some(Arc::clone(&set));
                    state.last_error = None;
                    if need == Need::UnknownKid {
                        state.no_fetch_before = Some(now + policy.cooldown);
                    }
                    // The set just fetched answers this lookup, however short its TTL.
                    return set.keys.select(kid).ok_or(KeyLookupError::UnknownKey);
                }
                Err(err) => {
                    tracing::warn!(
                        client_id,
                        jwks_uri = uri,
                        error = %err,
                        cached = state.set.is_some(),
                        "client JWKS fetch failed"
                    );
                    state.last_error = Some(err);
                    state.no_fetch_before = Some(now + policy.cooldown);
                }
            }
        }
        // Another lookup fetched while this one waited, or this one's fetch failed: the answer
        // comes from what is cached now.
        answer(&lock(&entry.state), kid, policy)
    }

    /// How many documents are cached.
    #[cfg(test)]
    pub(crate) fn cached_documents(&self) -> usize {
        lock(&self.inner.documents).len()
    }

    /// The cache entry of `uri`, made if needed; beyond `max_uris`, the least recently used
    /// entry is forgotten.
    fn uri_entry(&self, uri: &str) -> Arc<UriEntry> {
        let mut uris = lock(&self.inner.uris);
        if let Some(entry) = uris.get(uri) {
            return Arc::clone(entry);
        }
        if uris.len() >= self.inner.policy.max_uris.max(1)
            && let Some(oldest) = uris
                .iter()
                .min_by_key(|(_, entry)| lock(&entry.state).last_used)
                .map(|(uri, _)| uri.clone())
        {
            uris.remove(&oldest);
        }
        let entry = Arc::new(UriEntry {
            state: Mutex::new(UriState {
                set: None,
                generation: 0,
                no_fetch_before: None,
                last_error: None,
                last_used: Instant::now(),
            }),
            fetch: tokio::sync::Mutex::new(()),
        });
        uris.insert(uri.to_owned(), Arc::clone(&entry));
        entry
    }
}

/// The answer from what is cached: the set, fresh or stale within `max_stale`, or the reason
/// there is none.
fn answer(
    state: &UriState,
    kid: Option<&str>,
    policy: &KeyFetchPolicy,
) -> Result<Arc<ClientKey>, KeyLookupError> {
    match &state.set {
        Some(set) if Instant::now() < set.expires + policy.max_stale => {
            set.keys.select(kid).ok_or(KeyLookupError::UnknownKey)
        }
        _ => Err(KeyLookupError::Unavailable(state.last_error.clone())),
    }
}

/// Locks a mutex whose data stays consistent even if a holder panicked (every critical section
/// here is a few assignments).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
