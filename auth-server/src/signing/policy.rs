//! When a key change is safe: the delays every change goes through before all token-service
//! instances and all resource APIs have seen it.

use std::time::Duration;

/// Clock skew and propagation slack added to every safety bound, in seconds.
pub(crate) const SLACK_SECS: i64 = 2;
/// The resource API's leeway on `exp`: a retired key must outlive its tokens by this much.
const VERIFIER_LEEWAY_SECS: i64 = shared_claims::DEFAULT_LEEWAY_SECS;

/// The timings that decide when a rotation or purge is safe.
#[derive(Debug, Clone, Copy)]
pub struct KeyPolicy {
    /// The JWKS `Cache-Control: max-age`: how long a resource API may go without refetching.
    pub jwks_max_age: u64,
    /// How long a token-service instance may take to notice a key change.
    pub reload_interval: Duration,
    /// The default access-token lifetime.
    pub access_token_ttl: i64,
}

impl KeyPolicy {
    fn reload_secs(&self) -> i64 {
        self.reload_interval.as_secs_f64().ceil() as i64
    }

    /// When a pending key created at `created_at` is in every resource API's cache: every
    /// instance publishes it within the reload interval, and every cache refetches within max-age.
    pub fn rotation_safe_at(&self, created_at: i64) -> i64 {
        created_at + self.jwks_max_age as i64 + self.reload_secs() + SLACK_SECS
    }

    /// When a key retired at `retired_at` has no unexpired token left: instances may sign with it
    /// for one more reload interval, and its last tokens live `longest_ttl` plus the leeway.
    pub fn purge_safe_at(&self, retired_at: i64, longest_ttl: i64) -> i64 {
        retired_at
            + self.reload_secs()
            + longest_ttl.max(self.access_token_ttl)
            + VERIFIER_LEEWAY_SECS
            + SLACK_SECS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safety_bounds_add_up_the_delays_a_key_change_goes_through() {
        let policy = KeyPolicy {
            jwks_max_age: 300,
            reload_interval: Duration::from_millis(4500),
            access_token_ttl: 600,
        };
        assert_eq!(policy.rotation_safe_at(1000), 1000 + 300 + 5 + SLACK_SECS);
        assert_eq!(
            policy.purge_safe_at(1000, 0),
            1000 + 5 + 600 + 30 + SLACK_SECS
        );
        assert_eq!(
            policy.purge_safe_at(1000, 3600),
            1000 + 5 + 3600 + 30 + SLACK_SECS
        );
    }
}
