//! A per-key request rate: GCRA in Redis when a store is configured, else (and as the fallback)
//! in process.

use std::time::Duration;

use crate::budget::{Rate, Verdict};
use crate::local::LocalGcra;
use crate::store::SharedStore;

/// A per-key rate limit ("each client id at most N per second").
#[derive(Clone)]
pub struct RateLimiter {
    rate: Rate,
    local: LocalGcra,
    shared: Option<SharedStore>,
}

impl RateLimiter {
    /// `shared`: decide in Redis, falling back to this process's limiter when Redis does not
    /// answer in time; `None`: in process only.
    pub fn new(rate: Rate, shared: Option<SharedStore>) -> RateLimiter {
        RateLimiter {
            rate,
            local: LocalGcra::new(rate),
            shared,
        }
    }

    pub fn rate(&self) -> Rate {
        self.rate
    }

    /// The shared store, when there is one.
    pub fn store(&self) -> Option<&SharedStore> {
        self.shared.as_ref()
    }

    /// Counts one request for `key` and decides. One Redis round trip when shared.
    pub async fn check(&self, key: &str) -> Verdict {
        if let Some(shared) = &self.shared
            && let Some(verdict) = shared.gcra(key, self.rate).await
        {
            return verdict;
        }
        self.local.check(key)
    }

    /// Forgets keys whose in-process budgets are full again, every minute, so the map stays as
    /// small as the set of recently active keys. Redis keys expire by themselves.
    pub fn spawn_cleanup(&self) -> tokio::task::JoinHandle<()> {
        let local = self.local.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(Duration::from_secs(60));
            loop {
                ticker.tick().await;
                local.shrink();
            }
        })
    }
}
