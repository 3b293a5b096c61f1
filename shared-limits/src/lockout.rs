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
//!
//! A service that counts failures of another kind of credential (the partner API's wrong API
//! keys) uses its own [`Lockouts::in_namespace`], so its counters never mix with the token
//! service's even in one Redis under one prefix, and may count per source address only
//! ([`Lockouts::check_source`], [`Lockouts::record_source_failure`]).

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
    /// The key names in Redis, after the namespace: the budget, then the lock. The address is a
    /// hash tag (in braces), so every key of one address lives in one slot of a Redis cluster.
    fn names(&self, namespace: &str) -> (String, String) {
        match self {
            LockKey::Source(ip) => (
                format!("{namespace}lockout:{{{ip}}}:budget:source"),
                format!("{namespace}lockout:{{{ip}}}:locked:source"),
            ),
            LockKey::ClientAtSource(client, ip) => (
                format!("{namespace}lockout:{{{ip}}}:budget:client:{client}"),
                format!("{namespace}lockout:{{{ip}}}:locked:client:{client}"),
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
    /// Put before every Redis key name (after the store's prefix); empty by default.
    namespace: String,
}

impl Lockouts {
    pub fn new(policy: LockoutPolicy, shared: Option<SharedStore>) -> Lockouts {
        Lockouts {
            policy,
            shared,
            per_source: LocalGcra::new(policy.per_source()),
            per_client: LocalGcra::new(policy.per_client()),
            locked: Mutex::new(HashMap::new()),
            namespace: String::new(),
        }
    }

    /// The same lockouts with their Redis keys under `namespace` (such as `"api-key:"`): counters
    /// of one kind of credential that must never add up with another's in a shared Redis.
    pub fn in_namespace(mut self, namespace: &str) -> Lockouts {
        self.namespace = namespace.to_owned();
        self
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
        self.check_keys(&Self::keys(client_id, source)).await
    }

    /// Before checking a credential that is counted per source address only: the time to wait
    /// if this source is locked out.
    pub async fn check_source(&self, source: IpAddr) -> Option<Duration> {
        self.check_keys(&[LockKey::Source(source)]).await
    }

    /// After a failed authentication: counts it, and returns the lockouts it starts.
    pub async fn record_failure(
        &self,
        client_id: &str,
        source: IpAddr,
    ) -> Vec<(LockKey, Duration)> {
        let [source_key, client_key] = Self::keys(client_id, source);
        self.record(vec![
            (source_key, self.policy.per_source(), &self.per_source),
            (client_key, self.policy.per_client(), &self.per_client),
        ])
        .await
    }

    /// After a failure counted per source address only (the per-source budget of the policy):
    /// the lockout it starts, if it starts one.
    pub async fn record_source_failure(&self, source: IpAddr) -> Option<Duration> {
        let key = LockKey::Source(source);
        self.record(vec![(key, self.policy.per_source(), &self.per_source)])
            .await
            .pop()
            .map(|(_, wait)| wait)
    }

    async fn check_keys(&self, keys: &[LockKey]) -> Option<Duration> {
        if let Some(shared) = &self.shared {
            let mut invocation = shared.locked_script().prepare_invoke();
            for key in keys {
                invocation.key(shared.key(&key.names(&self.namespace).1));
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

    /// Counts one failure against each budget: in Redis, or in process when it does not answer.
    async fn record(&self, budgets: Vec<(LockKey, Rate, &LocalGcra)>) -> Vec<(LockKey, Duration)> {
        if let Some(shared) = &self.shared {
            let mut invocation = shared.lockout_script().prepare_invoke();
            for (key, rate, _) in &budgets {
                let (budget, lock) = key.names(&self.namespace);
                invocation.key(shared.key(&budget)).key(shared.key(&lock));
                invocation.arg(rate.interval_micros()).arg(rate.burst.get());
            }
            if let Some(answer) = shared.run::<Vec<i64>>(&invocation).await {
                return budgets
                    .into_iter()
                    .zip(answer.chunks(2))
                    .filter(|(_, pair)| pair.first() == Some(&1))
                    .map(|((key, _, _), pair)| {
                        let ms = pair.get(1).copied().unwrap_or(1000);
                        (key, Duration::from_millis(ms.unsigned_abs()))
                    })
                    .collect();
            }
        }
        self.record_locally(budgets)
    }

    fn record_locally(
        &self,
        budgets: Vec<(LockKey, Rate, &LocalGcra)>,
    ) -> Vec<(LockKey, Duration)> {
        let mut started: Vec<(LockKey, Duration)> = budgets
            .into_iter()
            .filter_map(|(key, _, budget)| match budget.check(&key.local_key()) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_source_is_locked_once_its_budget_is_spent_and_other_sources_are_not() {
        let lockouts = Lockouts::new(
            LockoutPolicy {
                per_source_burst: 5,
                per_source_refill: Duration::from_secs(60),
                ..LockoutPolicy::default()
            },
            None,
        )
        .in_namespace("api-key:");
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let mut started = Vec::new();
        for _ in 0..8 {
            assert!(lockouts.check_source(ip).await.is_none() || !started.is_empty());
            started.extend(lockouts.record_source_failure(ip).await);
        }
        assert_eq!(started.len(), 1, "{started:?}");
        assert!(lockouts.check_source(ip).await.unwrap() > Duration::from_secs(50));
        assert_eq!(
            lockouts.check_source("192.0.2.2".parse().unwrap()).await,
            None
        );
        // Nothing per client: a client at that address is judged by the source's lock only.
        assert!(lockouts.check("cl_any", ip).await.is_some());
        assert_eq!(
            lockouts.check("cl_any", "192.0.2.2".parse().unwrap()).await,
            None
        );
    }
}
