//! The scripts and the fallback against a real Redis (`TEST_REDIS_URL`, default the machine's
//! on 127.0.0.1:6379; `.ci/run` makes sure one answers). Each test uses a key prefix of its own.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use shared_limits::{
    LockKey, LockoutPolicy, Lockouts, Rate, RateLimiter, RedisSettings, SharedStore, Verdict,
};

fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// Settings with a prefix no other test uses.
fn settings(test: &str) -> RedisSettings {
    let mut settings = RedisSettings::new(redis_url());
    settings.key_prefix = format!("test:{test}:{}:", std::process::id());
    // Generous: these tests are about the scripts, not about a slow machine's Redis.
    settings.timeout = Duration::from_secs(2);
    settings
}

async fn store(test: &str) -> SharedStore {
    let store = SharedStore::connect(&settings(test), "TEST_REDIS_URL")
        .await
        .expect("a valid URL");
    assert!(
        !store.is_degraded(),
        "Redis at {} must answer for these tests (redis-server; .ci/run starts it)",
        redis_url()
    );
    store
}

/// A plain connection for looking at what the scripts left in Redis.
async fn inspect() -> redis::aio::MultiplexedConnection {
    redis::Client::open(redis_url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .expect("Redis answers")
}

fn rate(per_second: u32, burst: u32) -> Rate {
    Rate::per_second(
        NonZeroU32::new(per_second).unwrap(),
        NonZeroU32::new(burst).unwrap(),
    )
}

#[tokio::test]
async fn a_burst_is_allowed_then_refused_with_the_time_to_the_next_cell() {
    // One per minute: nothing refills while the test runs, whatever the machine's speed.
    let limiter = RateLimiter::new(
        Rate::every(Duration::from_secs(60), 5),
        Some(store("burst").await),
    );
    let mut remaining = Vec::new();
    for _ in 0..5 {
        match limiter.check("cl_a").await {
            Verdict::Allowed { remaining: r } => remaining.push(r),
            other => panic!("within the burst: {other:?}"),
        }
    }
    assert_eq!(remaining, [4, 3, 2, 1, 0]);
    let Verdict::Denied { retry_after } = limiter.check("cl_a").await else {
        panic!("the sixth is refused");
    };
    assert!(
        retry_after > Duration::from_secs(50) && retry_after <= Duration::from_secs(60),
        "{retry_after:?}"
    );
    // Another key has a budget of its own.
    assert_eq!(
        limiter.check("cl_b").await,
        Verdict::Allowed { remaining: 4 }
    );
}

#[tokio::test]
async fn keys_carry_the_prefix_and_expire_when_their_budget_is_full_again() {
    let settings = settings("expiry");
    let store = SharedStore::connect(&settings, "TEST_REDIS_URL")
        .await
        .unwrap();
    let limiter = RateLimiter::new(rate(10, 20), Some(store));
    for _ in 0..3 {
        limiter.check("cl_x").await;
    }
    let mut redis = inspect().await;
    let key = format!("{}rate:cl_x", settings.key_prefix);
    let ttl: i64 = redis::cmd("PTTL")
        .arg(&key)
        .query_async(&mut redis)
        .await
        .unwrap();
    // Three cells at 100 ms each: the budget is full again within 300 ms, and so the key goes.
    assert!((1..=300).contains(&ttl), "PTTL {ttl}");
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}*", settings.key_prefix))
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(keys, [key]);
}

#[tokio::test]
async fn two_instances_share_one_budget() {
    let shared = store("shared").await;
    let a = RateLimiter::new(
        Rate::every(Duration::from_secs(60), 10),
        Some(shared.clone()),
    );
    let b = RateLimiter::new(
        Rate::every(Duration::from_secs(60), 10),
        Some(store("shared").await),
    );
    let mut allowed = 0;
    for i in 0..40 {
        let limiter = if i % 2 == 0 { &a } else { &b };
        if let Verdict::Allowed { .. } = limiter.check("cl_s").await {
            allowed += 1;
        }
    }
    assert_eq!(allowed, 10, "one budget for both, not one each");
}

#[tokio::test]
async fn a_lockout_is_reported_once_across_instances_and_holds_at_both() {
    let policy = LockoutPolicy {
        per_source_burst: 100,
        per_source_refill: Duration::from_secs(60),
        per_client_burst: 3,
        per_client_refill: Duration::from_secs(60),
    };
    let a = Lockouts::new(policy, Some(store("lockout").await));
    let b = Lockouts::new(policy, Some(store("lockout").await));
    let ip: IpAddr = "192.0.2.7".parse().unwrap();
    let mut started = Vec::new();
    for i in 0..8 {
        let instance = if i % 2 == 0 { &a } else { &b };
        started.extend(instance.record_failure("cl_victim", ip).await);
    }
    assert_eq!(started.len(), 1, "{started:?}");
    let (key, wait) = &started[0];
    assert_eq!(*key, LockKey::ClientAtSource("cl_victim".into(), ip));
    assert!(*wait > Duration::from_secs(50), "{wait:?}");
    for instance in [&a, &b] {
        let wait = instance
            .check("cl_victim", ip)
            .await
            .expect("locked at both");
        assert!(wait > Duration::from_secs(50) && wait <= Duration::from_secs(60));
        assert_eq!(
            instance.check("cl_other", ip).await,
            None,
            "other clients at that address are not locked"
        );
        assert_eq!(
            instance
                .check("cl_victim", "192.0.2.8".parse().unwrap())
                .await,
            None,
            "the client at other addresses is not locked"
        );
    }
}

#[tokio::test]
async fn source_lockouts_in_a_namespace_never_mix_with_the_default_counters() {
    let policy = LockoutPolicy {
        per_source_burst: 3,
        per_source_refill: Duration::from_secs(60),
        per_client_burst: 3,
        per_client_refill: Duration::from_secs(60),
    };
    let settings = settings("namespace");
    let keys_a = Lockouts::new(policy, Some(store("namespace").await)).in_namespace("api-key:");
    let keys_b = Lockouts::new(policy, Some(store("namespace").await)).in_namespace("api-key:");
    let secrets = Lockouts::new(policy, Some(store("namespace").await));
    let ip: IpAddr = "192.0.2.9".parse().unwrap();
    let mut started = Vec::new();
    for i in 0..6 {
        let instance = if i % 2 == 0 { &keys_a } else { &keys_b };
        started.extend(instance.record_source_failure(ip).await);
    }
    assert_eq!(
        started.len(),
        1,
        "reported once across instances: {started:?}"
    );
    for instance in [&keys_a, &keys_b] {
        let wait = instance.check_source(ip).await.expect("locked at both");
        assert!(wait > Duration::from_secs(50), "{wait:?}");
        assert_eq!(
            instance.check_source("192.0.2.10".parse().unwrap()).await,
            None
        );
    }
    assert_eq!(
        secrets.check("cl_any", ip).await,
        None,
        "the default namespace's lock of this address is not set"
    );
    let mut redis = inspect().await;
    let mut keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}*", settings.key_prefix))
        .query_async(&mut redis)
        .await
        .unwrap();
    keys.sort();
    let prefix = &settings.key_prefix;
    assert_eq!(
        keys,
        [
            format!("{prefix}api-key:lockout:{{192.0.2.9}}:budget:source"),
            format!("{prefix}api-key:lockout:{{192.0.2.9}}:locked:source"),
        ],
        "per source only, nothing per client or key"
    );
}

#[tokio::test]
async fn a_redis_that_does_not_answer_leaves_the_limits_in_process() {
    // A port nothing listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut settings = RedisSettings::new(format!("redis://127.0.0.1:{port}"));
    settings.timeout = Duration::from_millis(50);
    let store = SharedStore::connect(&settings, "TEST_REDIS_URL")
        .await
        .expect("an unreachable Redis does not stop a start");
    assert!(store.is_degraded());
    let limiter = RateLimiter::new(Rate::every(Duration::from_secs(60), 5), Some(store.clone()));
    let verdicts: Vec<Verdict> = ten_checks(limiter.clone()).await;
    let allowed = verdicts
        .iter()
        .filter(|v| matches!(v, Verdict::Allowed { .. }))
        .count();
    assert_eq!(
        allowed, 5,
        "the in-process budget still holds: {verdicts:?}"
    );
    let lockouts = Lockouts::new(
        LockoutPolicy {
            per_client_burst: 2,
            per_client_refill: Duration::from_secs(60),
            ..LockoutPolicy::default()
        },
        Some(store),
    );
    let ip: IpAddr = "192.0.2.9".parse().unwrap();
    let mut started = 0;
    for _ in 0..5 {
        started += lockouts.record_failure("cl_y", ip).await.len();
    }
    assert_eq!(started, 1);
    assert!(lockouts.check("cl_y", ip).await.is_some());
}

async fn ten_checks(limiter: RateLimiter) -> Vec<Verdict> {
    let mut verdicts = Vec::new();
    for _ in 0..10 {
        verdicts.push(limiter.check("cl_z").await);
    }
    verdicts
}

#[test]
fn a_malformed_url_is_refused_without_repeating_it() {
    let settings = RedisSettings::new("http://user:hunter2@redis.example");
    let err = SharedStore::open(&settings, "RESOURCE_REDIS_URL")
        .err()
        .expect("refused");
    let message = format!("{err:#}");
    assert!(message.contains("RESOURCE_REDIS_URL"), "{message}");
    assert!(!message.contains("hunter2"), "{message}");
}
