//! The audit trail of `auth-server serve`, the real binary as a process (only a process can be
//! killed), on a SQLite file and on a PostgreSQL schema of its own:
//!
//! - killed with SIGKILL under token load and started again on the same database, several times:
//!   every access token a client received has its `token.issue` event;
//! - while its events cannot be stored, a token request fails instead of handing out a token
//!   that is not on record, and works again once they can.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use auth_server::admin::{self, ClientSpec};
use auth_server::store::Store;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use shared_claims::{PartnerId, ScopeSet};
use test_support::db::{Backend, TestDb, test_db};

const BINARY: &str = env!("CARGO_BIN_EXE_auth-server");
/// Clients requesting tokens at once, each in a loop.
const CONCURRENCY: usize = 16;
const KILLS: usize = 4;
/// Tokens received in each life of the process before it is killed.
const TOKENS_PER_LIFE: usize = 400;
/// Generous bounds on a start and on a life's tokens, so a broken server fails the test rather
/// than hanging it; nothing is asserted about how long anything takes.
const START_LIMIT: Duration = Duration::from_secs(60);
const LIFE_LIMIT: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_no_token_without_its_event_while_the_trail_cannot_be_written() {
    no_token_without_its_event_while_the_trail_cannot_be_written(Backend::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_no_token_without_its_event_while_the_trail_cannot_be_written() {
    no_token_without_its_event_while_the_trail_cannot_be_written(Backend::Postgres).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_every_token_received_is_audited_across_kills() {
    every_token_received_is_audited_across_kills(Backend::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_every_token_received_is_audited_across_kills() {
    every_token_received_is_audited_across_kills(Backend::Postgres).await
}

async fn every_token_received_is_audited_across_kills(backend: Backend) {
    let Some(db) = test_db(backend).await else {
        return;
    };
    let (id, secret) = client(&db).await;
    let http = edge::http_client(Duration::from_secs(5), Duration::from_secs(30))
        .build()
        .unwrap();
    let received = Arc::new(Mutex::new(Vec::<String>::new()));

    for life in 1..=KILLS {
        let mut server = TokenService::start(&db, life);
        let stop = Arc::new(AtomicBool::new(false));
        let token_url = format!("{}/oauth2/token", server.base_url);
        let workers: Vec<_> = (0..CONCURRENCY)
            .map(|_| {
                let (http, url, stop, received) = (
                    http.clone(),
                    token_url.clone(),
                    stop.clone(),
                    received.clone(),
                );
                let (id, secret) = (id.clone(), secret.clone());
                tokio::spawn(async move {
                    request_tokens(&http, &url, &id, &secret, &stop, &received).await
                })
            })
            .collect();
        let target = life * TOKENS_PER_LIFE;
        let waited = tokio::time::timeout(LIFE_LIMIT, async {
            while received.lock().unwrap().len() < target {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await;
        // Mid-traffic: requests are in flight when the process dies.
        stop.store(true, Ordering::SeqCst);
        server.kill();
        for worker in workers {
            worker.await.expect("token loop");
        }
        assert!(
            waited.is_ok(),
            "life {life}: fewer than {target} tokens in {LIFE_LIMIT:?}; log:\n{}",
            server.log()
        );
    }

    let received: Vec<String> = received.lock().unwrap().clone();
    let audited = issued_jtis(&db).await;
    let lost: Vec<&String> = received
        .iter()
        .filter(|jti| !audited.contains(*jti))
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} tokens received over {KILLS} kills have no token.issue event, e.g. jti {}",
        lost.len(),
        received.len(),
        lost[0]
    );
}

async fn no_token_without_its_event_while_the_trail_cannot_be_written(backend: Backend) {
    let Some(db) = test_db(backend).await else {
        return;
    };
    let (id, secret) = client(&db).await;
    let http = edge::http_client(Duration::from_secs(5), Duration::from_secs(30))
        .build()
        .unwrap();
    let server = TokenService::start(&db, 1);
    let url = format!("{}/oauth2/token", server.base_url);
    let token = || {
        http.post(&url)
            .basic_auth(&id, Some(&secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
    };
    assert_eq!(token().await.unwrap().status(), 200);

    // Concurrent requests, so that a failed batch has several waiters: each must learn it.
    refuse_audit_inserts(&db, true).await;
    let requests: Vec<_> = (0..8).map(|_| tokio::spawn(token())).collect();
    for request in requests {
        let answer = request
            .await
            .unwrap()
            .expect("an answer, not a dropped connection");
        let status = answer.status();
        let cache = answer.headers().get("cache-control").cloned();
        let body: Value = answer.json().await.expect("RFC 6749 JSON");
        assert!(
            body["access_token"].is_null() && status.is_server_error(),
            "{status} while the audit trail cannot be written"
        );
        assert!(body["error"].is_string(), "{body}");
        assert_eq!(
            cache.as_ref().and_then(|v| v.to_str().ok()),
            Some("no-store")
        );
    }
    // A failed authentication is not answered without its `client.auth_failed` event either.
    let wrong = http
        .post(&url)
        .basic_auth(&id, Some("pcs_wrong"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert!(wrong.status().is_server_error(), "{}", wrong.status());

    refuse_audit_inserts(&db, false).await;
    let answer = token().await.unwrap();
    assert_eq!(answer.status(), 200, "{}", server.log());
    let body: Value = answer.json().await.unwrap();
    let jti = jti_of(body["access_token"].as_str().unwrap());
    assert!(issued_jtis(&db).await.contains(&jti));
}

/// Makes every insert into `audit_events` fail (a trigger), or stops doing so.
async fn refuse_audit_inserts(db: &TestDb, refuse: bool) {
    let statements: &[&str] = match (db.sqlite_path().is_some(), refuse) {
        (true, true) => &["CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_events \
             BEGIN SELECT RAISE(ABORT, 'audit refused by the test'); END"],
        (true, false) => &["DROP TRIGGER refuse_audit"],
        (false, true) => &[
            "CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'audit refused by the test'; END $$",
            "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_events \
             FOR EACH STATEMENT EXECUTE FUNCTION refuse_audit()",
        ],
        (false, false) => &["DROP TRIGGER refuse_audit ON audit_events"],
    };
    if db.sqlite_path().is_some() {
        let pool = sqlx::SqlitePool::connect(&db.url).await.unwrap();
        for sql in statements {
            sqlx::raw_sql(sqlx::AssertSqlSafe(*sql))
                .execute(&pool)
                .await
                .unwrap();
        }
        pool.close().await;
    } else {
        let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
        for sql in statements {
            sqlx::raw_sql(sqlx::AssertSqlSafe(*sql))
                .execute(&pool)
                .await
                .unwrap();
        }
        pool.close().await;
    }
}

/// The `jti` of every `token.issue` event on record.
async fn issued_jtis(db: &TestDb) -> HashSet<String> {
    let store = Store::connect(&db.url).await.unwrap();
    let jtis = store
        .list_audit(None, 10_000_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|event| event.action == "token.issue")
        .filter_map(|event| {
            let detail: Value = serde_json::from_str(&event.detail).ok()?;
            detail["jti"].as_str().map(str::to_owned)
        })
        .collect();
    store.close().await;
    jtis
}

/// One client's loop: client-credentials requests until `stop`, each token's `jti` kept. Every
/// answer must be a token; a failed connection is expected only once the process is being killed.
async fn request_tokens(
    http: &reqwest::Client,
    url: &str,
    id: &str,
    secret: &str,
    stop: &AtomicBool,
    received: &Mutex<Vec<String>>,
) {
    while !stop.load(Ordering::SeqCst) {
        let response = http
            .post(url)
            .basic_auth(id, Some(secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await;
        let body = match response {
            Ok(response) => {
                let status = response.status();
                match response.text().await {
                    Ok(body) => {
                        assert_eq!(status, 200, "token request: {body}");
                        body
                    }
                    Err(_) if stop.load(Ordering::SeqCst) => return,
                    Err(err) => panic!("token response while the server runs: {err}"),
                }
            }
            Err(_) if stop.load(Ordering::SeqCst) => return,
            Err(err) => panic!("token request while the server runs: {err}"),
        };
        let body: Value = serde_json::from_str(&body).expect("token response is JSON");
        let token = body["access_token"].as_str().expect("an access token");
        received.lock().unwrap().push(jti_of(token));
    }
}

/// The `jti` claim of a JWT, read without verifying it (the test trusts its own server).
fn jti_of(token: &str) -> String {
    let payload = token.split('.').nth(1).expect("a JWT has a payload");
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    claims["jti"].as_str().expect("a jti claim").to_owned()
}

/// A client with a secret, created in the database as the CLI would.
async fn client(db: &TestDb) -> (String, String) {
    let store = Store::connect(&db.url).await.unwrap();
    store.migrate().await.unwrap();
    let (client, secret) = admin::create_client(
        &store,
        ClientSpec {
            name: "Acme ERP".into(),
            partner_id: PartnerId::parse("acme").unwrap(),
            scopes: ScopeSet::parse("orders:read").unwrap(),
            audiences: vec!["partner-api".into()],
            access_token_ttl: None,
            refresh_enabled: false,
            introspect_allowed: false,
        },
    )
    .await
    .unwrap();
    store.close().await;
    (
        client.client_id.as_str().to_owned(),
        secret.expose().to_owned(),
    )
}

/// `auth-server serve` as a process on a loopback port of its choosing, logging JSON to a file.
struct TokenService {
    child: Child,
    log: PathBuf,
    base_url: String,
}

impl TokenService {
    fn start(db: &TestDb, life: usize) -> TokenService {
        let log = db.dir.path().join(format!("serve-{life}.log"));
        let file = std::fs::File::create(&log).unwrap();
        let child = Command::new(BINARY)
            .arg("serve")
            .env("AUTH_DATABASE_URL", &db.url)
            .env("AUTH_MASTER_KEY_FILE", db.master_key_path())
            .env("AUTH_BIND", "127.0.0.1:0")
            .env("LOG_FORMAT", "json")
            .env("RUST_LOG", "info,access=off")
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .expect("start auth-server");
        let mut server = TokenService {
            child,
            log,
            base_url: String::new(),
        };
        server.base_url = format!("http://{}", server.wait_for_address());
        server
    }

    /// The address from the "listening" log line.
    fn wait_for_address(&mut self) -> String {
        let started = std::time::Instant::now();
        loop {
            if let Some(addr) = listening_address(&self.log) {
                return addr;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("auth-server exited ({status}); log:\n{}", self.log());
            }
            assert!(
                started.elapsed() < START_LIMIT,
                "auth-server did not start; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: no shutdown, no flush, as an OOM kill or a power cut of the process.
    fn kill(&mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reap");
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for TokenService {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn listening_address(log: &Path) -> Option<String> {
    std::fs::read_to_string(log)
        .ok()?
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|line| line["message"] == "token service listening")
        .and_then(|line| line["addr"].as_str().map(str::to_owned))
}
