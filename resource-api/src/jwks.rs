//! The token service's public keys, fetched from the one configured JWKS URL and cached.
//!
//! - At start a background task fetches the keys, retrying until it succeeds; the server starts
//!   anyway and `/readyz` says not ready until keys are loaded.
//! - The set is refreshed when its `Cache-Control: max-age` runs out. A failed refresh keeps the
//!   cached keys: stale keys beat an outage.
//! - A token naming an unknown `kid` triggers one refetch, then no other for a cooldown; concurrent
//!   misses wait for the fetch in flight rather than start their own. A flood of made-up kids
//!   therefore costs the token service at most one fetch per cooldown.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use jsonwebtoken::jwk::Jwk;

/// A JWKS larger than this is refused; ours is well under 2 KiB.
pub const MAX_JWKS_BYTES: usize = 64 * 1024;
/// At most this many keys are taken from one document.
const MAX_KEYS: usize = 32;
/// Bounds on the honoured `max-age`.
const MIN_MAX_AGE: Duration = Duration::from_secs(1);
const MAX_MAX_AGE: Duration = Duration::from_secs(86_400);
/// Used when the response names no `max-age`.
const DEFAULT_MAX_AGE: Duration = Duration::from_secs(300);

pub use keys::verify::VerifyingKey;

struct KeySet {
    keys: HashMap<String, Arc<VerifyingKey>>,
    fetched_at: Instant,
    max_age: Duration,
}

struct Inner {
    url: String,
    http: reqwest::Client,
    keys: ArcSwapOption<KeySet>,
    /// Serializes fetches so that concurrent misses share one.
    fetch_lock: tokio::sync::Mutex<()>,
    /// Counts finished fetch attempts; a waiter that sees it change knows a fetch happened.
    generation: AtomicU64,
    last_miss_fetch: Mutex<Option<Instant>>,
    cooldown: Duration,
    fetches: AtomicU64,
    loaded: AtomicBool,
    /// Set where no background refresher runs: requests refresh a stale set themselves.
    on_demand: AtomicBool,
    /// When a stale set may next be refetched on demand (after a failed refetch, not before the
    /// cooldown), so an unreachable token service does not hold up every request.
    stale_retry_at: Mutex<Option<Instant>>,
    /// `resource_jwks_fetches_total`, by outcome.
    fetch_outcomes: FetchCounters,
}

/// The handles of `resource_jwks_fetches_total{outcome}`, one per outcome, registered once.
struct FetchCounters([metrics::Counter; FetchCounters::OUTCOMES.len()]);

impl FetchCounters {
    const NAME: &str = "resource_jwks_fetches_total";
    const OUTCOMES: [&str; 5] = ["ok", "network_error", "bad_status", "too_large", "invalid"];

    fn new(metrics: &edge::Metrics) -> FetchCounters {
        metrics.describe_counter(
            Self::NAME,
            "Fetches of the token service's JWKS (start, refresh, unknown kid), by outcome",
        );
        FetchCounters(std::array::from_fn(|i| {
            metrics.counter(Self::NAME, &[("outcome", Self::OUTCOMES[i])])
        }))
    }

    fn count(&self, result: &Result<KeySet, FetchError>) {
        let index = match result {
            Ok(_) => 0,
            Err(FetchError::Http(_)) => 1,
            Err(FetchError::Status(_)) => 2,
            Err(FetchError::TooLarge) => 3,
            Err(FetchError::Invalid(_)) => 4,
        };
        self.0[index].increment(1);
    }
}

/// Cheap to clone; every clone shares the cache.
#[derive(Clone)]
pub struct JwksCache {
    inner: Arc<Inner>,
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("JWKS request failed: {0}")]
    Http(#[from] reqwest::Error),
    #[error("JWKS endpoint answered {0}")]
    Status(reqwest::StatusCode),
    #[error("JWKS document is larger than {MAX_JWKS_BYTES} bytes")]
    TooLarge,
    #[error("JWKS document is not valid: {0}")]
    Invalid(&'static str),
}

impl JwksCache {
    /// `cooldown` is the least time between two fetches caused by unknown kids. Every fetch is
    /// counted in `metrics`.
    pub fn new(
        url: String,
        cooldown: Duration,
        metrics: &edge::Metrics,
    ) -> anyhow::Result<JwksCache> {
        let http = edge::http_client(Duration::from_secs(2), Duration::from_secs(5)).build()?;
        Ok(JwksCache {
            inner: Arc::new(Inner {
                url,
                http,
                keys: ArcSwapOption::empty(),
                fetch_lock: tokio::sync::Mutex::new(()),
                generation: AtomicU64::new(0),
                last_miss_fetch: Mutex::new(None),
                cooldown,
                fetches: AtomicU64::new(0),
                loaded: AtomicBool::new(false),
                on_demand: AtomicBool::new(false),
                stale_retry_at: Mutex::new(None),
                fetch_outcomes: FetchCounters::new(metrics),
            }),
        })
    }

    /// True once a key set has been loaded.
    pub fn is_loaded(&self) -> bool {
        self.inner.loaded.load(Ordering::Acquire)
    }

    /// How many HTTP fetches of the JWKS were made (successful or not).
    pub fn fetch_count(&self) -> u64 {
        self.inner.fetches.load(Ordering::Relaxed)
    }

    fn current(&self) -> Option<Arc<KeySet>> {
        self.inner.keys.load_full()
    }

    fn lookup(&self, kid: &str) -> Option<Arc<VerifyingKey>> {
        self.current().and_then(|set| set.keys.get(kid).cloned())
    }

    /// Whether `kid` is in the current key set (no fetch).
    pub fn contains(&self, kid: &str) -> bool {
        self.current().is_some_and(|set| set.keys.contains_key(kid))
    }

    /// The trusted key named `kid`, refetching the set once (subject to the cooldown) if unknown.
    pub async fn get(&self, kid: &str) -> Option<Arc<VerifyingKey>> {
        // Read the generation before looking, so a fetch that lands in between is noticed.
        let seen = self.inner.generation.load(Ordering::Acquire);
        if let Some(key) = self.lookup(kid) {
            return Some(key);
        }
        // Inside the cooldown, refuse at once instead of queueing behind a fetch in flight.
        if self.in_cooldown() {
            return self.lookup(kid);
        }
        let _guard = self.inner.fetch_lock.lock().await;
        if self.inner.generation.load(Ordering::Acquire) != seen {
            // A fetch finished since we looked; it may well have brought the key.
            if let Some(key) = self.lookup(kid) {
                return Some(key);
            }
        }
        {
            let mut last = self
                .inner
                .last_miss_fetch
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if last.is_some_and(|at| at.elapsed() < self.inner.cooldown) {
                drop(last);
                return self.lookup(kid);
            }
            *last = Some(Instant::now());
        }
        if let Err(err) = self.fetch_locked().await {
            tracing::warn!(error = %err, "JWKS refetch for an unknown kid failed");
        }
        self.lookup(kid)
    }

    fn in_cooldown(&self) -> bool {
        let last = self
            .inner
            .last_miss_fetch
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        last.is_some_and(|at| at.elapsed() < self.inner.cooldown)
    }

    /// For where nothing runs between requests (AWS Lambda: a frozen instance runs no timer):
    /// from now on, [`JwksCache::refresh_if_stale`] is what keeps the set fresh.
    pub fn refresh_on_demand(&self) {
        self.inner.on_demand.store(true, Ordering::Release);
    }

    /// With [`JwksCache::refresh_on_demand`], fetches when no set is loaded or the loaded one is
    /// past its `max-age`, in a single flight (concurrent callers wait for the one fetch). A
    /// failed fetch keeps the stale keys and is not tried again before the cooldown has passed.
    /// Without it, does nothing: the refresher keeps the set fresh.
    pub async fn refresh_if_stale(&self) {
        if !self.inner.on_demand.load(Ordering::Acquire) || !self.is_stale() || self.retry_not_due()
        {
            return;
        }
        let _guard = self.inner.fetch_lock.lock().await;
        if !self.is_stale() {
            return;
        }
        if let Err(err) = self.fetch_locked().await {
            tracing::warn!(error = %err, "JWKS refresh failed; keeping the cached keys");
            *self
                .inner
                .stale_retry_at
                .lock()
                .unwrap_or_else(|p| p.into_inner()) = Some(Instant::now() + self.inner.cooldown);
        }
    }

    fn is_stale(&self) -> bool {
        self.current()
            .is_none_or(|set| set.fetched_at.elapsed() >= set.max_age)
    }

    fn retry_not_due(&self) -> bool {
        self.inner
            .stale_retry_at
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some_and(|at| Instant::now() < at)
    }

    /// Fetches now (used by the refresher). Concurrent calls share one fetch.
    pub async fn refresh(&self) -> Result<(), FetchError> {
        let _guard = self.inner.fetch_lock.lock().await;
        self.fetch_locked().await
    }

    async fn fetch_locked(&self) -> Result<(), FetchError> {
        self.inner.fetches.fetch_add(1, Ordering::Relaxed);
        let result = self.fetch_once().await;
        self.inner.fetch_outcomes.count(&result);
        self.inner.generation.fetch_add(1, Ordering::AcqRel);
        let set = result?;
        tracing::debug!(
            keys = set.keys.len(),
            max_age = set.max_age.as_secs(),
            "JWKS loaded"
        );
        self.install(set);
        Ok(())
    }

    fn install(&self, set: KeySet) {
        self.inner.keys.store(Some(Arc::new(set)));
        self.inner.loaded.store(true, Ordering::Release);
    }

    /// A cache that holds `document` as if it had just been fetched, so router tests run with no
    /// token service and no network. It never fetches while tokens name only keys of `document`
    /// (no refresher is started); its URL is one that cannot answer.
    #[cfg(test)]
    pub(crate) fn preloaded(document: &[u8]) -> anyhow::Result<JwksCache> {
        let cache = JwksCache::new(
            "http://jwks.invalid/".into(),
            Duration::from_secs(10),
            &edge::Metrics::off(),
        )?;
        cache.install(KeySet {
            keys: parse_jwks(document)?,
            fetched_at: Instant::now(),
            max_age: DEFAULT_MAX_AGE,
        });
        Ok(cache)
    }

    async fn fetch_once(&self) -> Result<KeySet, FetchError> {
        let mut response = self.inner.http.get(&self.inner.url).send().await?;
        if response.status() != reqwest::StatusCode::OK {
            return Err(FetchError::Status(response.status()));
        }
        let max_age = response
            .headers()
            .get(reqwest::header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_max_age)
            .map_or(DEFAULT_MAX_AGE, |age| age.clamp(MIN_MAX_AGE, MAX_MAX_AGE));
        if response
            .content_length()
            .is_some_and(|len| len > MAX_JWKS_BYTES as u64)
        {
            return Err(FetchError::TooLarge);
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await? {
            if body.len() + chunk.len() > MAX_JWKS_BYTES {
                return Err(FetchError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        let keys = parse_jwks(&body)?;
        Ok(KeySet {
            keys,
            fetched_at: Instant::now(),
            max_age,
        })
    }

    /// Keeps the cache loaded and fresh for as long as the returned task runs.
    pub fn spawn_refresher(&self) -> tokio::task::JoinHandle<()> {
        let cache = self.clone();
        tokio::spawn(async move {
            let mut backoff = Duration::from_millis(200);
            loop {
                let wait = match cache.current() {
                    Some(set) => set.max_age.saturating_sub(set.fetched_at.elapsed()),
                    None => Duration::ZERO,
                };
                tokio::time::sleep(wait).await;
                // Someone else (an unknown-kid refetch) may have refreshed in the meantime.
                if cache
                    .current()
                    .is_some_and(|set| set.fetched_at.elapsed() < set.max_age)
                {
                    continue;
                }
                match cache.refresh().await {
                    Ok(()) => backoff = Duration::from_millis(200),
                    Err(err) => {
                        if cache.is_loaded() {
                            tracing::warn!(error = %err, "JWKS refresh failed; keeping the cached keys");
                        } else {
                            tracing::warn!(error = %err, "JWKS not loaded yet; retrying");
                        }
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(10));
                    }
                }
            }
        })
    }
}

/// The `max-age` directive of a `Cache-Control` value.
fn parse_max_age(value: &str) -> Option<Duration> {
    value.split(',').find_map(|directive| {
        let (name, seconds) = directive.trim().split_once('=')?;
        if !name.trim().eq_ignore_ascii_case("max-age") {
            return None;
        }
        seconds
            .trim()
            .trim_matches('"')
            .parse::<u64>()
            .ok()
            .map(Duration::from_secs)
    })
}

/// Parses a JWKS document. Keys we cannot use safely (symmetric keys, unknown types, keys for
/// encryption, keys whose `alg` contradicts their type) are skipped one by one; a document
/// without a single usable key is an error, so a broken response never empties the cache.
pub fn parse_jwks(body: &[u8]) -> Result<HashMap<String, Arc<VerifyingKey>>, FetchError> {
    #[derive(serde::Deserialize)]
    struct Document {
        keys: Vec<serde_json::Value>,
    }
    let document: Document = serde_json::from_slice(body)
        .map_err(|_| FetchError::Invalid("not a JSON object with a keys array"))?;
    let mut keys = HashMap::new();
    for value in document.keys.into_iter().take(MAX_KEYS) {
        let Ok(jwk) = serde_json::from_value::<Jwk>(value) else {
            continue;
        };
        if let Some(key) = VerifyingKey::from_jwk(&jwk) {
            keys.insert(key.kid.clone(), Arc::new(key));
        }
    }
    if keys.is_empty() {
        return Err(FetchError::Invalid("no usable signing key"));
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_age_is_read_from_cache_control() {
        assert_eq!(
            parse_max_age("public, max-age=300"),
            Some(Duration::from_secs(300))
        );
        assert_eq!(parse_max_age("max-age=\"5\""), Some(Duration::from_secs(5)));
        assert_eq!(parse_max_age("no-cache"), None);
        assert_eq!(parse_max_age("max-age=abc"), None);
    }

    #[test]
    fn symmetric_and_unknown_keys_are_never_trusted() {
        let doc = br#"{"keys":[
            {"kty":"oct","k":"c2VjcmV0","kid":"hmac","alg":"HS256"},
            {"kty":"EC","crv":"P-256","kid":"enc","use":"enc","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
            {"kty":"EC","crv":"P-256","kid":"liar","alg":"HS256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
            {"kty":"EC","crv":"P-256","kid":"good","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
            {"kty":"XYZ","kid":"weird"},
            "not an object"
        ]}"#;
        let keys = parse_jwks(doc).unwrap();
        assert_eq!(keys.keys().collect::<Vec<_>>(), ["good"]);
        assert_eq!(keys["good"].alg, keys::Algorithm::ES256);
    }

    #[test]
    fn documents_without_usable_keys_are_errors() {
        for doc in [
            &b""[..],
            b"[]",
            b"{}",
            b"{\"keys\":[]}",
            b"{\"keys\":[{\"kty\":\"oct\",\"k\":\"AA\",\"kid\":\"a\"}]}",
        ] {
            assert!(parse_jwks(doc).is_err(), "{}", String::from_utf8_lossy(doc));
        }
    }
}
