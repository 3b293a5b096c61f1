//! Brute-force control for client authentication. Failed attempts are counted per source address
//! and per (client id, source address) pair, each against a GCRA budget; once a budget is spent,
//! that key is locked until the budget would allow another failure, and requests from it are
//! refused before any secret is checked. [`Lockouts::record_failure`] reports each lockout once,
//! so the caller can audit it once, however many instances share the counters.
//!
//! Nothing is ever locked per client id alone: that would let an attacker cut a partner off by
//! failing on purpose. The partner's own machines, at other addresses, are unaffected.
//!
//! With a [`SharedStore`] the counters and locks live in Redis and hold across instances (one
//! round trip to check, one to count a failure); without one, or while Redis does not answer,
//! in this process.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::budget::{Rate, Verdict};
use crate::local::LocalGcra;
use crate::store::SharedStore;

/// Where a lockout applies.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LockKey {
    Source(IpAddr),
    ClientAtSource(String, IpAddr),
}

impl LockKey {
    /// The key names in Redis: the budget, then the lock. The address is a hash tag (in braces),
    /// so every key of one address lives in one slot of a Redis cluster.
    fn names(&self) -> (String, String) {
        match self {
            LockKey::Source(ip) => (
                format!("lockout:{{{ip}}}:budget:source"),
                format!("lockout:{{{ip}}}:locked:source"),
            ),
            LockKey::ClientAtSource(client, ip) => (
                format!("lockout:{{{ip}}}:budget:client:{client}"),
                format!("lockout:{{{ip}}}:locked:client:{client}"),
            ),
        }
    }

    fn local_key(&self) -> String {
        match self {
            LockKey::Source(ip) => format!("source {ip}"),
            LockKey::ClientAtSource(client, ip) => format!("client {ip} {client}"),
        }
    }
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

impl LockoutPolicy {
    fn per_source(&self) -> Rate {
        Rate::every(self.per_source_refill, self.per_source_burst)
    }

    fn per_client(&self) -> Rate {
        Rate::every(self.per_client_refill, self.per_client_burst)
    }
}

pub struct Lockouts {
    policy: LockoutPolicy,
    shared: Option<SharedStore>,
    per_source: LocalGcra,
    per_client: LocalGcra,
    locked: Mutex<HashMap<LockKey, Instant>>,
}

impl Lockouts {
    pub fn new(policy: LockoutPolicy, shared: Option<SharedStore>) -> Lockouts {
        Lockouts {
            policy,
            shared,
            per_source: LocalGcra::new(policy.per_source()),
            per_client: LocalGcra::new(policy.per_client()),
            locked: Mutex::new(HashMap::new()),
        }
    }

    fn keys(client_id: &str, source: IpAddr) -> [LockKey; 2] {
        [
            LockKey::Source(source),
            LockKey::ClientAtSource(client_id.to_owned(), source),
        ]
    }

    /// Before checking a secret: the time to wait if this source, or this client at this source,
    /// is locked out.
    pub async fn check(&self, client_id: &str, source: IpAddr) -> Option<Duration> {
        let keys = Self::keys(client_id, source);
        if let Some(shared) = &self.shared {
            let mut invocation = shared.locked_script().prepare_invoke();
            for key in &keys {
                invocation.key(shared.key(&key.names().1));
            }
            if let Some(ms) = shared.run::<i64>(&invocation).await {
                return (ms > 0).then(|| Duration::from_millis(ms.unsigned_abs()));
            }
        }
        let now = Instant::now();
        let locked = self.locked.lock().unwrap_or_else(|p| p.into_inner());
        keys.iter()
            .filter_map(|key| locked.get(key))
            .filter(|until| **until > now)
            .map(|until| *until - now)
            .max()
    }

    /// After a failed authentication: counts it, and returns the lockouts it starts.
    pub async fn record_failure(
        &self,
        client_id: &str,
        source: IpAddr,
    ) -> Vec<(LockKey, Duration)> {
        let keys = Self::keys(client_id, source);
        let rates = [self.policy.per_source(), self.policy.per_client()];
        if let Some(shared) = &self.shared {
            let mut invocation = shared.lockout_script().prepare_invoke();
            for (key, rate) in keys.iter().zip(rates) {
                let (budget, lock) = key.names();
                invocation.key(shared.key(&budget)).key(shared.key(&lock));
                invocation.arg(rate.interval_micros()).arg(rate.burst.get());
            }
            if let Some(answer) = shared.run::<Vec<i64>>(&invocation).await {
                return keys
                    .into_iter()
                    .zip(answer.chunks(2))
                    .filter(|(_, pair)| pair.first() == Some(&1))
                    .map(|(key, pair)| {
                        let ms = pair.get(1).copied().unwrap_or(1000);
                        (key, Duration::from_millis(ms.unsigned_abs()))
                    })
                    .collect();
            }
        }
        self.record_locally(keys, [&self.per_source, &self.per_client])
    }

    fn record_locally(
        &self,
        keys: [LockKey; 2],
        budgets: [&LocalGcra; 2],
    ) -> Vec<(LockKey, Duration)> {
        let mut started: Vec<(LockKey, Duration)> = keys
            .into_iter()
            .zip(budgets)
            .filter_map(|(key, budget)| match budget.check(&key.local_key()) {
                Verdict::Allowed { .. } => None,
                Verdict::Denied { retry_after } => Some((key, retry_after)),
            })
            .collect();
        if !started.is_empty() {
            let now = Instant::now();
            let mut locked = self.locked.lock().unwrap_or_else(|p| p.into_inner());
            // Forget lockouts that are over, so the map stays as small as the attack.
            locked.retain(|_, until| *until > now);
            started.retain_mut(|(key, wait)| {
                *wait = (*wait).max(Duration::from_secs(1));
                let fresh = locked.get(key).is_none_or(|old| *old <= now);
                locked.insert(key.clone(), now + *wait);
                fresh
            });
        }
        started
    }

    /// Drops in-process state of keys that have not failed lately (Redis keys expire by
    /// themselves).
    pub fn shrink(&self) {
        self.per_source.shrink();
        self.per_client.shrink();
        let now = Instant::now();
        self.locked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, until| *until > now);
    }
}
