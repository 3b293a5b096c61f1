//! A per-key request rate: GCRA in Redis when a store is configured, else (and as the fallback)
//! in process.

use std::num::NonZeroU32;
use std::time::Duration;

use crate::local::LocalGcra;
use crate::store::SharedStore;

/// A GCRA budget: `burst` cells at once, then one more every `interval`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub interval: Duration,
    pub burst: NonZeroU32,
}

impl Rate {
    /// `per_second` sustained, `burst` at once.
    pub fn per_second(per_second: NonZeroU32, burst: NonZeroU32) -> Rate {
        Rate {
            interval: Duration::from_secs(1) / per_second.get(),
            burst,
        }
    }

    /// `burst` at once, then one more every `interval` (at least a microsecond).
    pub fn every(interval: Duration, burst: u32) -> Rate {
        Rate {
            interval: interval.max(Duration::from_micros(1)),
            burst: NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN),
        }
    }

    /// The emission interval in whole microseconds, as the Lua scripts take it.
    pub(crate) fn interval_micros(&self) -> u64 {
        u64::try_from(self.interval.as_micros())
            .unwrap_or(u64::MAX)
            .max(1)
    }
}

/// The outcome of one decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Allowed; `remaining` more would be allowed at once right now.
    Allowed { remaining: u32 },
    /// Refused; the next cell is allowed after `retry_after`.
    Denied { retry_after: Duration },
}

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
