//! When a key change is safe: the delays every change goes through before all token-service
//! instances and all verifiers (our resource APIs, an API gateway) have seen it.

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
    /// The longest any verifier may cache the key set, `max-age` or not
    /// (`AUTH_JWKS_CACHE_HORIZON`; API Gateway's JWT authorizer: up to two hours). Never taken
    /// as shorter than `jwks_max_age`.
    pub jwks_cache_horizon: u64,
    /// How long a token-service instance may take to notice a key change.
    pub reload_interval: Duration,
    /// The default access-token lifetime.
    pub access_token_ttl: i64,
}

impl KeyPolicy {
    fn reload_secs(&self) -> i64 {
        self.reload_interval.as_secs_f64().ceil() as i64
    }

    /// How long a verifier may keep a key set it fetched: the cache horizon, and at least the
    /// max-age every verifier is told.
    pub fn cache_horizon_secs(&self) -> i64 {
        self.jwks_cache_horizon.max(self.jwks_max_age) as i64
    }

    /// When a pending key created at `created_at` is in every verifier's cache: every instance
    /// publishes it within the reload interval, and every verifier refetches within the cache
    /// horizon.
    pub fn rotation_safe_at(&self, created_at: i64) -> i64 {
        created_at + self.cache_horizon_secs() + self.reload_secs() + SLACK_SECS
    }

    /// When a key retired at `retired_at` may be unpublished: instances may sign with it for one
    /// more reload interval, its last tokens live `longest_ttl` plus the verifiers' leeway, and
    /// it then stays published for the cache horizon after that.
    pub fn purge_safe_at(&self, retired_at: i64, longest_ttl: i64) -> i64 {
        retired_at
            + self.reload_secs()
            + longest_ttl.max(self.access_token_ttl)
            + VERIFIER_LEEWAY_SECS
            + self.cache_horizon_secs()
            + SLACK_SECS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(jwks_max_age: u64, jwks_cache_horizon: u64) -> KeyPolicy {
        KeyPolicy {
            jwks_max_age,
            jwks_cache_horizon,
            reload_interval: Duration::from_millis(4500),
            access_token_ttl: 600,
        }
    }

    #[test]
    fn safety_bounds_add_up_the_delays_a_key_change_goes_through() {
        // The horizon at its default, the max-age.
        let policy = policy(300, 300);
        assert_eq!(policy.rotation_safe_at(1000), 1000 + 300 + 5 + SLACK_SECS);
        assert_eq!(
            policy.purge_safe_at(1000, 0),
            1000 + 5 + 600 + 30 + 300 + SLACK_SECS
        );
        assert_eq!(
            policy.purge_safe_at(1000, 3600),
            1000 + 5 + 3600 + 30 + 300 + SLACK_SECS
        );
    }

    #[test]
    fn a_cache_horizon_beyond_the_max_age_delays_rotation_and_purge_by_the_horizon() {
        // API Gateway: max-age 300 s, but the key set may be cached for two hours.
        let gateway = policy(300, 7200);
        assert_eq!(gateway.cache_horizon_secs(), 7200);
        assert_eq!(gateway.rotation_safe_at(1000), 1000 + 7200 + 5 + SLACK_SECS);
        assert_eq!(
            gateway.purge_safe_at(1000, 900),
            1000 + 5 + 900 + 30 + 7200 + SLACK_SECS
        );
        // A pending key published for longer than the max-age but not the horizon is not safe.
        let published = 1000;
        let after_max_age = published + 300 + 5 + SLACK_SECS;
        assert!(policy(300, 300).rotation_safe_at(published) <= after_max_age);
        assert!(gateway.rotation_safe_at(published) > after_max_age);
        assert_eq!(
            gateway.rotation_safe_at(published) - policy(300, 300).rotation_safe_at(published),
            7200 - 300
        );
    }

    #[test]
    fn a_cache_horizon_below_the_max_age_counts_as_the_max_age() {
        let short = policy(300, 60);
        assert_eq!(short.cache_horizon_secs(), 300);
        assert_eq!(
            short.rotation_safe_at(1000),
            policy(300, 300).rotation_safe_at(1000)
        );
        assert_eq!(
            short.purge_safe_at(1000, 0),
            policy(300, 300).purge_safe_at(1000, 0)
        );
    }
}
