//! The database failing under a running token service, for real: a file the service cannot
//! write (the service started as an unprivileged user, since root ignores file modes), a
//! PostgreSQL database turned read-only and its sessions ended, a write lock held by another
//! process. Each time the service must say so (`/readyz` 503; token requests 503
//! `temporarily_unavailable` with `Retry-After` and `no-store`, never a 500) and answer again by
//! itself within 5 seconds of the fault being fixed, without a restart.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;
use sqlx::Connection;
use test_support::db::OwnPgDatabase;

const BINARY: &str = env!("CARGO_BIN_EXE_auth-server");
/// The uid and gid of `nobody`, which the service runs as where file modes must count.
const NOBODY: &str = "65534";
/// How soon a fixed fault must be healed.
const HEALED_WITHIN: Duration = Duration::from_secs(5);

fn http() -> reqwest::Client {
    static CLIENT: LazyLock<reqwest::Client> = LazyLock::new(|| {
        edge::http_client(Duration::from_secs(10), Duration::from_secs(30))
            .pool_max_idle_per_host(0)
            .build()
            .expect("http client")
    });
    CLIENT.clone()
}

/// The environment of every command: the database, the master key, and a short database wait
/// (the contract: then 503).
fn env(db_url: &str, dir: &Path) -> Vec<(String, String)> {
    vec![
        ("AUTH_DATABASE_URL".into(), db_url.into()),
        (
            "AUTH_MASTER_KEY_FILE".into(),
            dir.join("master.key").display().to_string(),
        ),
        ("AUTH_DATABASE_WAIT".into(), "1".into()),
    ]
}

/// `auth-server client create` as a process; the new client's id and secret.
fn create_client(env: &[(String, String)]) -> (String, String) {
    let output = Command::new(BINARY)
        .args(["client", "create", "--name", "faults", "--partner", "acme"])
        .args(["--scopes", "orders:read", "--json"])
        .envs(env.iter().cloned())
        .output()
        .expect("auth-server runs");
    assert!(
        output.status.success(),
        "client create: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let created: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    (
        created["client_id"].as_str().unwrap().to_owned(),
        created["client_secret"].as_str().unwrap().to_owned(),
    )
}

/// A token service process, killed when dropped.
struct Service {
    child: Child,
    base: String,
}

impl Service {
    /// Starts `auth-server serve`, as `nobody` when `unprivileged`, and waits until it answers.
    async fn start(env: &[(String, String)], unprivileged: bool) -> Service {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let base = format!("http://127.0.0.1:{port}");
        let mut command = if unprivileged {
            let mut command = Command::new(setpriv());
            command
                .args([format!("--reuid={NOBODY}"), format!("--regid={NOBODY}")])
                .args(["--clear-groups", BINARY]);
            command
        } else {
            Command::new(BINARY)
        };
        let child = command
            .arg("serve")
            .envs(env.iter().cloned())
            .env("AUTH_BIND", format!("127.0.0.1:{port}"))
            .env("AUTH_ISSUER", &base)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .spawn()
            .expect("auth-server starts");
        let mut service = Service { child, base };
        let started = Instant::now();
        loop {
            if let Ok(response) = http().get(service.url("/healthz")).send().await
                && response.status() == StatusCode::OK
            {
                return service;
            }
            if let Some(status) = service.child.try_wait().expect("process status") {
                panic!("auth-server exited at start: {status}");
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "auth-server did not answer"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn ready(&self) -> (StatusCode, Value) {
        let response = http()
            .get(self.url("/readyz"))
            .send()
            .await
            .expect("readyz");
        let status = response.status();
        (status, response.json().await.expect("readiness JSON"))
    }

    async fn token(&self, (id, secret): &(String, String)) -> reqwest::Response {
        http()
            .post(self.url("/oauth2/token"))
            .basic_auth(id, Some(secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .expect("token request")
    }

    /// Waits until a token is issued and `/readyz` says ready, at most [`HEALED_WITHIN`] after
    /// `fixed`; no request on the way may be a 500.
    async fn heals(&self, client: &(String, String), fixed: Instant) {
        loop {
            let token = self.token(client).await.status();
            assert_ne!(token, StatusCode::INTERNAL_SERVER_ERROR);
            let (ready, _) = self.ready().await;
            if token == StatusCode::OK && ready == StatusCode::OK {
                return;
            }
            assert!(
                fixed.elapsed() < HEALED_WITHIN,
                "not healed {HEALED_WITHIN:?} after the fault was fixed: token {token}, readyz {ready}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// util-linux's `setpriv`, or a failure naming it.
fn setpriv() -> &'static str {
    let found = Command::new("setpriv")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "setpriv (Debian package util-linux) is needed to run the service unprivileged"
    );
    "setpriv"
}

/// A token request the database cannot serve: 503 `temporarily_unavailable`, `Retry-After`,
/// `no-store`.
async fn assert_unavailable(response: reqwest::Response) {
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let headers = response.headers().clone();
    assert!(headers.contains_key("retry-after"), "{headers:?}");
    assert_eq!(headers["cache-control"], "no-store");
    let body: Value = response.json().await.expect("RFC 6749 JSON");
    assert_eq!(body["error"], "temporarily_unavailable", "{body}");
}

fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

fn chown_nobody(dir: &Path) {
    let status = Command::new("chown")
        .args(["-R", &format!("{NOBODY}:{NOBODY}")])
        .arg(dir)
        .status()
        .expect("chown runs");
    assert!(status.success(), "chown -R nobody {}", dir.display());
}

/// Root ignores file modes, so the service runs as `nobody` on a database file it owns but may
/// only read: it starts (every read works), says not ready, refuses tokens with 503; once the
/// file is writable again it answers within 5 seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_sqlite_file_is_not_ready_and_heals_once_writable() {
    let dir = tempfile::tempdir().unwrap();
    let db_path = dir.path().join("auth.db");
    let env = env(&format!("sqlite://{}", db_path.display()), dir.path());
    let client = create_client(&env);
    // A first start makes the master key and the signing keys, as a deployment's first start did.
    let first = Service::start(&env, false).await;
    assert_eq!(first.token(&client).await.status(), StatusCode::OK);
    drop(first);
    chown_nobody(dir.path());
    chmod(dir.path(), 0o700);
    chmod(&db_path, 0o400);

    let service = Service::start(&env, true).await;
    let (status, body) = service.ready().await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["database"], "unavailable", "{body}");
    assert_eq!(body["signing_key"], "ok", "{body}");
    assert_unavailable(service.token(&client).await).await;

    chmod(&db_path, 0o600);
    service.heals(&client, Instant::now()).await;
}

/// PostgreSQL turned read-only for new sessions, and the service's sessions ended: it says not
/// ready and refuses tokens with 503; once writes are allowed again it answers within 5 seconds
/// on its own (its read-only sessions replaced), without its sessions being ended again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_postgres_database_is_not_ready_and_heals() {
    let Some(db) = OwnPgDatabase::create().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let env = env(&db.url, dir.path());
    let client = create_client(&env);
    let service = Service::start(&env, false).await;
    assert_eq!(service.token(&client).await.status(), StatusCode::OK);
    assert_eq!(service.ready().await.0, StatusCode::OK);

    db.set_read_only(true).await;
    assert!(
        db.terminate_sessions().await > 0,
        "the service had sessions"
    );
    // The first request after the sessions ended may meet a dead connection: 503 as well.
    for _ in 0..3 {
        assert_unavailable(service.token(&client).await).await;
        let (status, body) = service.ready().await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert_eq!(body["database"], "unavailable", "{body}");
    }

    db.set_read_only(false).await;
    service.heals(&client, Instant::now()).await;

    // Sessions ended under a working database: at most a 503, never a 500, then served again.
    db.terminate_sessions().await;
    service.heals(&client, Instant::now()).await;
}

/// Another process holds SQLite's write lock: a token request waits `AUTH_DATABASE_WAIT` (1 s
/// here), then is answered 503, as is `/readyz`; once the lock is released tokens flow again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_sqlite_write_lock_is_a_503_after_the_database_wait() {
    let dir = tempfile::tempdir().unwrap();
    let db_path = dir.path().join("auth.db");
    let url = format!("sqlite://{}", db_path.display());
    let env = env(&url, dir.path());
    let client = create_client(&env);
    let service = Service::start(&env, false).await;
    assert_eq!(service.token(&client).await.status(), StatusCode::OK);

    let mut holder = sqlx::SqliteConnection::connect_with(
        &url.parse::<sqlx::sqlite::SqliteConnectOptions>().unwrap(),
    )
    .await
    .unwrap();
    sqlx::raw_sql("BEGIN IMMEDIATE")
        .execute(&mut holder)
        .await
        .unwrap();
    assert_unavailable(service.token(&client).await).await;
    assert_eq!(service.ready().await.0, StatusCode::SERVICE_UNAVAILABLE);

    sqlx::raw_sql("ROLLBACK")
        .execute(&mut holder)
        .await
        .unwrap();
    service.heals(&client, Instant::now()).await;
}

/// Another session holds a lock on the audit trail in PostgreSQL: the token request's audit
/// event waits `lock_timeout` (`AUTH_DATABASE_WAIT`), then the request is answered 503.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_postgres_lock_is_a_503_after_the_database_wait() {
    let Some(db) = OwnPgDatabase::create().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let env = env(&db.url, dir.path());
    let client = create_client(&env);
    let service = Service::start(&env, false).await;
    assert_eq!(service.token(&client).await.status(), StatusCode::OK);

    let mut holder = sqlx::PgConnection::connect(&db.url).await.unwrap();
    sqlx::raw_sql("BEGIN; LOCK TABLE audit_events IN ACCESS EXCLUSIVE MODE")
        .execute(&mut holder)
        .await
        .unwrap();
    assert_unavailable(service.token(&client).await).await;

    sqlx::raw_sql("ROLLBACK")
        .execute(&mut holder)
        .await
        .unwrap();
    service.heals(&client, Instant::now()).await;
}
