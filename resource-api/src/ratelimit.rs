//! Per-client request rate limits (GCRA, from the governor crate), keyed by the verified token's
//! client id, so one partner's burst never slows another.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

type Limiter =
    RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock, StateInformationMiddleware>;

#[derive(Clone)]
pub struct ClientRateLimit {
    limiter: Arc<Limiter>,
    burst: u32,
}

/// The outcome of one check.
pub enum Decision {
    Allowed { remaining: u32, limit: u32 },
    Limited { retry_after: Duration, limit: u32 },
}

impl ClientRateLimit {
    pub fn new(per_second: NonZeroU32, burst: NonZeroU32) -> ClientRateLimit {
        let quota = Quota::per_second(per_second).allow_burst(burst);
        let limiter = RateLimiter::keyed(quota).with_middleware::<StateInformationMiddleware>();
        ClientRateLimit {
            limiter: Arc::new(limiter),
            burst: burst.get(),
        }
    }

    pub fn check(&self, client_id: &str) -> Decision {
        match self.limiter.check_key(&client_id.to_owned()) {
            Ok(snapshot) => Decision::Allowed {
                remaining: snapshot.remaining_burst_capacity(),
                limit: self.burst,
            },
            Err(not_until) => Decision::Limited {
                retry_after: not_until.wait_time_from(self.limiter.clock().now()),
                limit: self.burst,
            },
        }
    }

    /// Forgets clients whose buckets are full again, so the map does not grow without bound.
    pub fn spawn_cleanup(&self) -> tokio::task::JoinHandle<()> {
        let limiter = self.limiter.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(Duration::from_secs(60));
            loop {
                ticker.tick().await;
                limiter.retain_recent();
                limiter.shrink_to_fit();
            }
        })
    }
}
