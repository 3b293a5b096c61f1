//! The partner API when its PostgreSQL database cannot serve: a lock held longer than
//! `RESOURCE_DATABASE_WAIT` is a 503 problem with `Retry-After` (readiness too, when what it
//! reads is locked), never a 500; sessions ended under it heal without a restart. (The token
//! service's faults, which need it as a process of its own, are in `auth-server/tests/faults`.)

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use sqlx::Connection;
use test_support::db::OwnPgDatabase;

use crate::common::system::{TestApi, resource_settings, spawn_resource_with};
use crate::common::*;

/// A partner API on a PostgreSQL database of its own, with a 1-second database wait, and a
/// token for `acme` with `orders:read`.
async fn api_on_own_database() -> Option<(TestAuth, TestApi, OwnPgDatabase, String)> {
    let db = OwnPgDatabase::create().await?;
    let auth = spawn_auth_server(Backend::Sqlite).await?;
    let holder = test_db(Backend::Sqlite).await?;
    let mut settings = resource_settings(&auth, &holder);
    settings.database_url = db.url.clone();
    settings.database_wait = Duration::from_secs(1);
    let api = spawn_resource_with(holder, settings).await;
    api.wait_ready().await;
    let (client, secret) = auth.client("acme", "orders:read").await;
    let token = token(&auth, client.client_id.as_str(), secret.expose()).await;
    Some((auth, api, db, token))
}

async fn assert_unavailable_problem(response: reqwest::Response) {
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let headers = response.headers().clone();
    assert!(headers.contains_key("retry-after"), "{headers:?}");
    assert_eq!(headers["content-type"], "application/problem+json");
    let body: serde_json::Value = response.json().await.expect("problem JSON");
    assert_eq!(body["status"], 503, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_lock_is_a_503_problem_after_the_database_wait() {
    let Some((_auth, api, db, token)) = api_on_own_database().await else {
        return;
    };
    assert_eq!(
        get(&api, "/v1/orders", &token).await.status(),
        StatusCode::OK
    );

    let mut holder = sqlx::PgConnection::connect(&db.url).await.unwrap();
    sqlx::raw_sql("BEGIN; LOCK TABLE orders, partners IN ACCESS EXCLUSIVE MODE")
        .execute(&mut holder)
        .await
        .unwrap();
    assert_unavailable_problem(get(&api, "/v1/orders", &token).await).await;
    let ready = http().get(api.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["database"], "unavailable", "{body}");

    sqlx::raw_sql("ROLLBACK")
        .execute(&mut holder)
        .await
        .unwrap();
    assert_eq!(
        get(&api, "/v1/orders", &token).await.status(),
        StatusCode::OK
    );
    assert_eq!(get_status(api.url("/readyz")).await, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ended_sessions_heal_without_a_restart() {
    let Some((_auth, api, db, token)) = api_on_own_database().await else {
        return;
    };
    assert_eq!(
        get(&api, "/v1/orders", &token).await.status(),
        StatusCode::OK
    );
    assert!(db.terminate_sessions().await > 0, "the API had sessions");
    let ended = Instant::now();
    loop {
        let status = get(&api, "/v1/orders", &token).await.status();
        assert!(
            status == StatusCode::OK || status == StatusCode::SERVICE_UNAVAILABLE,
            "{status}"
        );
        if status == StatusCode::OK {
            break;
        }
        assert!(
            ended.elapsed() < Duration::from_secs(5),
            "not served 5 s after the sessions ended"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(get_status(api.url("/readyz")).await, StatusCode::OK);
}
