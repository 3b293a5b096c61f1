//! The in-process GCRA limiter (the governor crate), keyed by string: the only limiter of a
//! single server, and every instance's fallback when Redis does not answer.

use std::sync::Arc;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

use crate::budget::{Rate, Verdict};

type Limiter =
    RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock, StateInformationMiddleware>;

#[derive(Clone)]
pub(crate) struct LocalGcra {
    limiter: Arc<Limiter>,
}

impl LocalGcra {
    pub(crate) fn new(rate: Rate) -> LocalGcra {
        let quota = Quota::with_period(rate.interval)
            .expect("Rate::interval is at least a microsecond")
            .allow_burst(rate.burst);
        LocalGcra {
            limiter: Arc::new(RateLimiter::keyed(quota).with_middleware()),
        }
    }

    pub(crate) fn check(&self, key: &str) -> Verdict {
        match self.limiter.check_key(&key.to_owned()) {
            Ok(snapshot) => Verdict::Allowed {
                remaining: snapshot.remaining_burst_capacity(),
            },
            Err(not_until) => Verdict::Denied {
                retry_after: not_until.wait_time_from(self.limiter.clock().now()),
            },
        }
    }

    pub(crate) fn shrink(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }
}
