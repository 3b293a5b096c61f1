//! Brute-force control for client authentication (token, revocation and introspection
//! endpoints). Failed attempts are counted per source address and per (client id, source
//! address) pair with GCRA rate limiters (the governor crate); once a budget is spent, that key is
//! locked until the limiter would allow another failure, and requests from it answer 429 with
//! `Retry-After` before any secret is checked. Every lockout is an audit event.
//!
//! Nothing is ever locked per client id alone: that would let an attacker cut a partner off by
//! failing on purpose. The partner's own machines, at other addresses, are unaffected.
//! The counters live in each instance's memory; with several instances an attacker gets each
//! instance's budget, which still bounds guessing far below what 256-bit secrets need.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

type Limiter<K> = RateLimiter<K, DefaultKeyedStateStore<K>, DefaultClock>;

/// Where a lockout applies.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LockKey {
    Source(IpAddr),
    ClientAtSource(String, IpAddr),
}

/// Failure budgets: `burst` failures at once, then one more per `refill`.
#[derive(Debug, Clone, Copy)]
pub struct LockoutPolicy {
    pub per_source_burst: u32,
    pub per_source_refill: Duration,
    pub per_client_burst: u32,
    pub per_client_refill: Duration,
}

impl Default for LockoutPolicy {
    /// A partner whose configuration is wrong fails a handful of times; a guesser fails
    /// thousands. Ten failures per client and address, then one per 30 s; a hundred per address
    /// (many clients behind one NAT), then one per second.
    fn default() -> Self {
        LockoutPolicy {
            per_source_burst: 100,
            per_source_refill: Duration::from_secs(1),
            per_client_burst: 10,
            per_client_refill: Duration::from_secs(30),
        }
    }
}

pub struct Lockouts {
    per_source: Limiter<IpAddr>,
    per_client: Limiter<(String, IpAddr)>,
    locked: Mutex<HashMap<LockKey, Instant>>,
}

fn quota(burst: u32, refill: Duration) -> Quota {
    let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
    Quota::with_period(refill.max(Duration::from_millis(1)))
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
        .allow_burst(burst)
}

impl Lockouts {
    pub fn new(policy: LockoutPolicy) -> Lockouts {
        Lockouts {
            per_source: RateLimiter::keyed(quota(
                policy.per_source_burst,
                policy.per_source_refill,
            )),
            per_client: RateLimiter::keyed(quota(
                policy.per_client_burst,
                policy.per_client_refill,
            )),
            locked: Mutex::new(HashMap::new()),
        }
    }

    /// Before checking a secret: the time to wait if this source, or this client at this source,
    /// is locked out.
    pub fn check(&self, client_id: &str, source: IpAddr) -> Option<Duration> {
        let now = Instant::now();
        let locked = self.locked.lock().unwrap_or_else(|p| p.into_inner());
        [
            LockKey::Source(source),
            LockKey::ClientAtSource(client_id.to_owned(), source),
        ]
        .iter()
        .filter_map(|key| locked.get(key))
        .filter(|until| **until > now)
        .map(|until| *until - now)
        .max()
    }

    /// After a failed authentication: counts it, and returns the lockouts it starts.
    pub fn record_failure(&self, client_id: &str, source: IpAddr) -> Vec<(LockKey, Duration)> {
        let mut started = Vec::new();
        let clock = self.per_source.clock();
        if let Err(not_until) = self.per_source.check_key(&source) {
            started.push((
                LockKey::Source(source),
                not_until.wait_time_from(clock.now()),
            ));
        }
        let pair = (client_id.to_owned(), source);
        if let Err(not_until) = self.per_client.check_key(&pair) {
            started.push((
                LockKey::ClientAtSource(pair.0, source),
                not_until.wait_time_from(clock.now()),
            ));
        }
        if !started.is_empty() {
            let now = Instant::now();
            let mut locked = self.locked.lock().unwrap_or_else(|p| p.into_inner());
            // Forget lockouts that are over, so the map stays as small as the attack.
            locked.retain(|_, until| *until > now);
            started.retain(|(key, wait)| {
                let until = now + (*wait).max(Duration::from_secs(1));
                let fresh = locked.get(key).is_none_or(|old| *old <= now);
                locked.insert(key.clone(), until);
                fresh
            });
        }
        started
    }

    /// Drops limiter state of keys that have not failed lately.
    pub fn shrink(&self) {
        self.per_source.retain_recent();
        self.per_client.retain_recent();
        let now = Instant::now();
        self.locked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, until| *until > now);
    }
}
