//! Whether the shared store is answering, with the degradation and the recovery each logged once.
//!
//! While healthy, every decision goes to Redis. After a failure (an error or a timeout) the store
//! is degraded: decisions are made in process, and at most one decision per [`RETRY_EVERY`] tries
//! Redis again. The first that succeeds ends the degradation. Nothing runs in the background, so
//! this also works where no timer runs between requests (a frozen Lambda instance).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How often a degraded store is tried again: a recovered Redis is in use again within this
/// plus one decision's timeout.
pub(crate) const RETRY_EVERY: Duration = Duration::from_millis(500);

pub(crate) struct Health {
    degraded: AtomicBool,
    /// Milliseconds since `origin` before which a degraded store is not tried again.
    next_try: AtomicU64,
    origin: Instant,
}

impl Health {
    pub(crate) fn new() -> Health {
        Health {
            degraded: AtomicBool::new(false),
            next_try: AtomicU64::new(0),
            origin: Instant::now(),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Whether this decision should ask the store: always while healthy; while degraded, for one
    /// decision per [`RETRY_EVERY`].
    pub(crate) fn should_try(&self) -> bool {
        if !self.degraded.load(Ordering::Acquire) {
            return true;
        }
        let now = self.now_ms();
        let due = self.next_try.load(Ordering::Acquire);
        now >= due
            && self
                .next_try
                .compare_exchange(
                    due,
                    now + RETRY_EVERY.as_millis() as u64,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
                .is_ok()
    }

    /// The store failed a decision. Returns true for the failure that started a degradation,
    /// the one to log.
    pub(crate) fn failed(&self) -> bool {
        self.next_try.store(
            self.now_ms() + RETRY_EVERY.as_millis() as u64,
            Ordering::Release,
        );
        !self.degraded.swap(true, Ordering::AcqRel)
    }

    /// The store answered. Returns true for the answer that ended a degradation, the one to log.
    pub(crate) fn succeeded(&self) -> bool {
        self.degraded.load(Ordering::Acquire) && self.degraded.swap(false, Ordering::AcqRel)
    }

    pub(crate) fn is_degraded(&self) -> bool {
        self.degraded.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_degradation_and_a_recovery_are_reported_once_each() {
        let health = Health::new();
        assert!(health.should_try());
        assert!(
            !health.succeeded(),
            "a healthy store's answers are not a recovery"
        );
        assert!(health.failed(), "the first failure starts the degradation");
        assert!(!health.failed(), "later failures are the same degradation");
        assert!(health.is_degraded());
        assert!(
            !health.should_try(),
            "no retry before RETRY_EVERY has passed"
        );
        assert!(health.succeeded(), "the first answer ends it");
        assert!(!health.succeeded());
        assert!(health.should_try());
    }

    #[test]
    fn a_degraded_store_is_tried_by_one_decision_per_interval() {
        let health = Health::new();
        health.failed();
        // Pretend the interval has passed.
        health.next_try.store(0, Ordering::Release);
        let tries = (0..100).filter(|_| health.should_try()).count();
        assert_eq!(tries, 1);
    }
}
