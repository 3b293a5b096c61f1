//! Limits that hold across instances through Redis: the partner API's per-client rate limit and
//! the token service's lockouts, counted once for all instances; and what happens when Redis is
//! killed or slow (each instance falls back to its own limits, answers without waiting, and goes
//! back to Redis by itself).

use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::common;
use common::redis::{OwnRedis, shared_redis};
use common::system::{TestApi, spawn_resource_api};
use common::{Backend, ClientAuth, TestAuth, spawn_auth_server, spawn_auth_with};

fn limit(settings: &mut resource_api::Settings, per_second: u32, burst: u32) {
    settings.rate_limit_per_second = NonZeroU32::new(per_second).unwrap();
    settings.rate_limit_burst = NonZeroU32::new(burst).unwrap();
}

/// A partner API for `auth` with the given limit, sharing it through `redis` when given.
async fn api(
    auth: &TestAuth,
    per_second: u32,
    burst: u32,
    redis: Option<shared_limits::RedisSettings>,
) -> TestApi {
    let api = spawn_resource_api(Backend::Sqlite, auth, |s| {
        limit(s, per_second, burst);
        s.redis = redis;
    })
    .await
    .unwrap();
    api.wait_ready().await;
    api
}

/// A token for a new client of `auth`.
async fn new_partner_token(auth: &TestAuth, partner: &str) -> String {
    let (client, secret) = auth.client(partner, "orders:read").await;
    common::token(auth, client.client_id.as_str(), secret.expose()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_partner_api_instances_on_one_redis_allow_what_one_instance_allows() {
    let auth = spawn_auth_server(Backend::Sqlite).await.unwrap();
    let redis = shared_redis("two-apis");
    let alone = api(&auth, 10, 20, None).await;
    let a = api(&auth, 10, 20, Some(redis.clone())).await;
    let b = api(&auth, 10, 20, Some(redis)).await;
    let alone_token = new_partner_token(&auth, "acme").await;
    let shared_token = new_partner_token(&auth, "globex").await;

    // 200 requests in 2 s for each client, sent at the same moments: one client to the single
    // instance, the other alternately to the two sharing Redis. Both see the same times, so
    // whatever the machine's speed, the two counts must agree.
    let mut ticker = tokio::time::interval(Duration::from_millis(10));
    let (mut alone_allowed, mut shared_allowed) = (0, 0);
    for i in 0..200 {
        ticker.tick().await;
        let pair = if i % 2 == 0 { &a } else { &b };
        let (one, two) = tokio::join!(
            common::get(&alone, "/v1/me", &alone_token),
            common::get(pair, "/v1/me", &shared_token)
        );
        for (response, allowed) in [(one, &mut alone_allowed), (two, &mut shared_allowed)] {
            match response.status() {
                StatusCode::OK => *allowed += 1,
                StatusCode::TOO_MANY_REQUESTS => {
                    assert!(response.headers().contains_key("retry-after"));
                    assert_eq!(response.headers()["x-ratelimit-limit"], "20");
                }
                other => panic!("request {i}: {other}"),
            }
        }
    }
    eprintln!(
        "200 requests at 10/s, burst 20: one instance allowed {alone_allowed}, two instances on one Redis allowed {shared_allowed}"
    );
    let difference = (shared_allowed as f64 - alone_allowed as f64).abs();
    assert!(
        difference <= 0.1 * alone_allowed as f64,
        "two instances sharing Redis allowed {shared_allowed}, one instance alone {alone_allowed}"
    );
    assert!(alone_allowed < 200, "the limit was reached");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_token_services_on_one_database_and_redis_check_no_more_secrets_than_one() {
    let Some(db) = common::test_db(Backend::Postgres).await else {
        return;
    };
    let redis = shared_redis("two-auth");
    // No refill while the test runs, so both counts are exact whatever the machine's speed.
    let policy = shared_limits::LockoutPolicy {
        per_client_refill: Duration::from_secs(3600),
        ..Default::default()
    };
    let a = token_service(db, policy, Some(redis.clone())).await;
    let b = token_service(common::TestDb::sharing(&a.db), policy, Some(redis)).await;
    let alone_db = common::test_db(Backend::Sqlite).await.unwrap();
    let alone = token_service(alone_db, policy, None).await;

    let (shared_client, shared_secret) = a.client("acme", "orders:read").await;
    let (alone_client, _) = alone.client("acme", "orders:read").await;
    let attacker = common::http_from("127.0.0.1");
    let (mut alone_checked, mut shared_checked) = (0, 0);
    for i in 0..1000 {
        let pair = if i % 2 == 0 { &a } else { &b };
        let guess = format!("pcs_guess_{i}");
        let (one, two) = tokio::join!(
            token_from(&attacker, &alone, alone_client.client_id.as_str(), &guess),
            token_from(&attacker, pair, shared_client.client_id.as_str(), &guess)
        );
        for (response, checked) in [(one, &mut alone_checked), (two, &mut shared_checked)] {
            match response.status() {
                StatusCode::UNAUTHORIZED => *checked += 1,
                StatusCode::TOO_MANY_REQUESTS => {}
                other => panic!("attempt {i}: {other}"),
            }
        }
    }
    eprintln!(
        "1000 wrong secrets: one instance checked {alone_checked}, two instances on one Redis checked {shared_checked}"
    );
    // The budget of ten, and the eleventh guess, which finds it spent and starts the lockout.
    assert_eq!(alone_checked, 11, "one instance checks its budget");
    assert!(
        shared_checked <= alone_checked,
        "two instances checked {shared_checked}, one instance {alone_checked}"
    );

    // The attacker's address is locked out at both instances, even with the right secret,
    // while the partner's own machine, elsewhere, gets tokens from both.
    let partner = common::http_from("127.0.0.2");
    let id = shared_client.client_id.as_str();
    for auth in [&a, &b] {
        let from_attacker = token_from(&attacker, auth, id, shared_secret.expose()).await;
        assert_eq!(from_attacker.status(), StatusCode::TOO_MANY_REQUESTS);
        let from_partner = token_from(&partner, auth, id, shared_secret.expose()).await;
        assert_eq!(from_partner.status(), StatusCode::OK);
    }

    // One lockout, audited once for both instances; every checked guess audited.
    a.state.audit.flush().await;
    b.state.audit.flush().await;
    let trail = a
        .state
        .db
        .list_audit(Some(shared_client.client_id.as_str()), 5000)
        .await
        .unwrap();
    let count = |action: &str| trail.iter().filter(|r| r.action == action).count();
    assert_eq!(count("client.lockout"), 1, "the lockout is audited once");
    assert_eq!(count("client.auth_failed"), shared_checked);
    alone.stop().await;
    b.stop().await;
    a.stop().await;
}

/// A token service on `db` with the lockout `policy`, sharing it through `redis` when given.
async fn token_service(
    db: common::TestDb,
    policy: shared_limits::LockoutPolicy,
    redis: Option<shared_limits::RedisSettings>,
) -> TestAuth {
    let mut settings = TestAuth::settings(&db);
    settings.lockout = policy;
    settings.redis = redis;
    spawn_auth_with(db, settings).await
}

/// A client-credentials request `from` an address, with HTTP Basic.
async fn token_from(
    from: &reqwest::Client,
    auth: &TestAuth,
    id: &str,
    secret: &str,
) -> reqwest::Response {
    common::token_response_via(
        from,
        auth,
        ClientAuth::Basic,
        id,
        secret,
        common::CLIENT_CREDENTIALS,
    )
    .await
}

/// Sends `count` requests alternately to `apis` with `token`, and returns how many were allowed
/// and the slowest answer. Every answer must be 200 or 429.
async fn alternate(apis: [&TestApi; 2], token: &str, count: usize) -> (usize, Duration) {
    let mut allowed = 0;
    let mut slowest = Duration::ZERO;
    for i in 0..count {
        let sent = Instant::now();
        let response = common::get(apis[i % 2], "/v1/me", token).await;
        slowest = slowest.max(sent.elapsed());
        match response.status() {
            StatusCode::OK => allowed += 1,
            StatusCode::TOO_MANY_REQUESTS => {}
            other => panic!("request {i}: {other}"),
        }
    }
    (allowed, slowest)
}

/// At a rate of one per second and a burst of ten: how many of the requests sent since `began`
/// one budget may allow (the burst, one per second that passed, and one for the boundary).
fn most_of_one_budget(began: Instant) -> usize {
    11 + began.elapsed().as_secs() as usize
}

/// The slowest answer allowed while Redis does not answer: the 50 ms timeout and a margin for a
/// loaded machine. Waiting for Redis would take seconds (it is dead, or blocked for seconds).
const WITHIN_TIMEOUT: Duration = Duration::from_millis(50 + 450);

/// Sends requests to both instances until both decide in Redis again, then shows that they share
/// one budget again.
async fn shared_again(auth: &TestAuth, apis: [&TestApi; 2], what: &str) {
    let token = new_partner_token(auth, "probe").await;
    let took = until_both_use_redis(apis, &token).await;
    eprintln!("{what}: both instances use Redis again after {took:?}");
    let token = new_partner_token(auth, "after").await;
    let began = Instant::now();
    let (allowed, _) = alternate(apis, &token, 30).await;
    eprintln!("{what}: {allowed} of 30 allowed");
    assert!((10..=most_of_one_budget(began)).contains(&allowed));
}

async fn until_both_use_redis(apis: [&TestApi; 2], token: &str) -> Duration {
    let began = Instant::now();
    common::eventually(
        Duration::from_secs(30),
        "both instances use Redis again",
        || async {
            for api in apis {
                common::get(api, "/v1/me", token).await;
            }
            apis.iter()
                .all(|api| !api.state.rate_limit.store().unwrap().is_degraded())
                .then_some(())
        },
    )
    .await;
    began.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_redis_leaves_each_instance_its_own_limits_until_it_is_back() {
    let mut redis = OwnRedis::start().await;
    let db = common::test_db(Backend::Sqlite).await.unwrap();
    let auth = token_service(db, Default::default(), Some(redis.settings())).await;
    let a = api(&auth, 1, 10, Some(redis.settings())).await;
    let b = api(&auth, 1, 10, Some(redis.settings())).await;
    let apis = [&a, &b];

    // Shared: one budget of ten for both.
    let token = new_partner_token(&auth, "before").await;
    let began = Instant::now();
    let (allowed, _) = alternate(apis, &token, 30).await;
    eprintln!("Redis up: {allowed} of 30 allowed");
    assert!((10..=most_of_one_budget(began)).contains(&allowed));

    redis.kill();
    // Down: every request answered at once from each instance's own limiter, ten each.
    let token = new_partner_token(&auth, "during").await;
    let began = Instant::now();
    let (allowed, slowest) = alternate(apis, &token, 40).await;
    eprintln!("Redis killed: {allowed} of 40 allowed, slowest answer {slowest:?}");
    assert!(slowest <= WITHIN_TIMEOUT, "slowest answer {slowest:?}");
    assert!(
        (20..=2 * most_of_one_budget(began)).contains(&allowed),
        "limits per instance: {allowed}"
    );
    assert!(a.state.rate_limit.store().unwrap().is_degraded());
    // The token service still locks a guesser out, on its own counters.
    let (client, _) = auth.client("target", "orders:read").await;
    let guesser = common::http_from("127.0.0.5");
    let began = Instant::now();
    let mut checked = 0;
    for i in 0..30 {
        let guess = format!("pcs_wrong_{i}");
        let response = token_from(&guesser, &auth, client.client_id.as_str(), &guess).await;
        match response.status() {
            StatusCode::UNAUTHORIZED => checked += 1,
            StatusCode::TOO_MANY_REQUESTS => {}
            other => panic!("guess {i}: {other}"),
        }
    }
    assert!(
        (10..=11 + began.elapsed().as_secs() / 30).contains(&checked),
        "{checked}"
    );

    // Back: both instances return to Redis by themselves, without a restart.
    redis.restart().await;
    shared_again(&auth, apis, "Redis restarted").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_slower_than_the_timeout_gives_the_same_fallback() {
    let redis = OwnRedis::start().await;
    let auth = spawn_auth_server(Backend::Sqlite).await.unwrap();
    let a = api(&auth, 1, 10, Some(redis.settings())).await;
    let b = api(&auth, 1, 10, Some(redis.settings())).await;
    let apis = [&a, &b];
    let token = new_partner_token(&auth, "slow").await;

    // A script that keeps Redis busy for four seconds (below its five-second threshold for
    // answering others with BUSY): every other command waits behind it.
    let mut blocker = redis.connection().await;
    // Connected before Redis is blocked (a new connection's handshake would wait too).
    let probe = redis.connection().await;
    let blocked = tokio::spawn(async move {
        redis::cmd("EVAL")
            .arg(
                "local t = redis.call('TIME') local until_s = tonumber(t[1]) + 4 \
                 while tonumber(redis.call('TIME')[1]) < until_s do end return 1",
            )
            .arg(0)
            .query_async::<i64>(&mut blocker)
            .await
    });
    // Until the script has started, a PING from another connection still answers.
    common::eventually(Duration::from_secs(10), "the script blocks Redis", || {
        let mut probe = probe.clone();
        async move {
            let ping = redis::cmd("PING");
            let answer = ping.query_async::<String>(&mut probe);
            tokio::time::timeout(Duration::from_millis(200), answer)
                .await
                .is_err()
                .then_some(())
        }
    })
    .await;

    let began = Instant::now();
    let mut sent = 0;
    let (mut allowed, mut slowest) = (0, Duration::ZERO);
    while !blocked.is_finished() && sent < 40 {
        let (n, slow) = alternate(apis, &token, 2).await;
        allowed += n;
        slowest = slowest.max(slow);
        sent += 2;
    }
    eprintln!("Redis blocked: {allowed} of {sent} allowed, slowest answer {slowest:?}");
    assert!(sent >= 10, "only {sent} requests while Redis was blocked");
    assert!(slowest <= WITHIN_TIMEOUT, "slowest answer {slowest:?}");
    assert!(
        allowed <= 2 * most_of_one_budget(began),
        "limits per instance: {allowed}"
    );
    assert!(a.state.rate_limit.store().unwrap().is_degraded());
    blocked.await.unwrap().expect("the blocking script ends");

    shared_again(&auth, apis, "Redis unblocked").await;
}
