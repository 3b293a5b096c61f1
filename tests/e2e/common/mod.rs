//! Helpers for end-to-end tests: a fresh database per test (a SQLite file in a temporary folder,
//! or a private schema on the PostgreSQL server), and servers started in-process on port 0.

use std::path::PathBuf;
use std::time::Duration;

use auth_server::admin::{self, ClientSpec};
use auth_server::secret::ClientSecret;
use auth_server::state::AppState;
use auth_server::store::Client;
use auth_server::{Application, Settings};
use shared_claims::{PartnerId, ScopeSet};
use tokio::sync::oneshot;

pub mod redis;
mod requests;
pub mod system;

pub use requests::*;

pub const ISSUER: &str = "http://auth.test";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Generates one `#[tokio::test]` per backend from an `async fn(Backend)`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($crate::common::Backend::Sqlite).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$name($crate::common::Backend::Postgres).await
                }
            }
        )*
    };
}

/// A database of its own for one test. A PostgreSQL schema is dropped when this is dropped.
pub struct TestDb {
    pub url: String,
    pub dir: tempfile::TempDir,
    pg: Option<(String, String)>,
}

impl TestDb {
    /// A second handle on the same database (for a second server instance): same URL and master
    /// key file; only the first handle drops a PostgreSQL schema.
    pub fn sharing(other: &TestDb) -> TestDb {
        let dir = tempfile::tempdir().expect("temporary directory");
        std::fs::copy(other.master_key_path(), dir.path().join("master.key")).ok();
        TestDb {
            url: other.url.clone(),
            dir,
            pg: None,
        }
    }

    /// The SQLite file, when the backend is SQLite.
    pub fn sqlite_path(&self) -> Option<PathBuf> {
        self.pg.is_none().then(|| self.dir.path().join("auth.db"))
    }

    pub fn master_key_path(&self) -> PathBuf {
        self.dir.path().join("master.key")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((base, schema)) = self.pg.take() {
            // Tests cannot drop asynchronously; a short-lived runtime on its own thread can.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .ok()?;
                rt.block_on(async {
                    let pool = sqlx::PgPool::connect(&base).await.ok()?;
                    let sql = format!("DROP SCHEMA IF EXISTS {schema} CASCADE");
                    sqlx::query(sqlx::AssertSqlSafe(sql))
                        .execute(&pool)
                        .await
                        .ok()?;
                    pool.close().await;
                    Some(())
                })
            })
            .join();
        }
    }
}

pub fn postgres_base_url() -> String {
    std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A fresh database, or `None` when PostgreSQL is wanted but absent outside CI (the test is then
/// skipped with a loud notice). Under `CI=true` an absent PostgreSQL fails the test.
pub async fn test_db(backend: Backend) -> Option<TestDb> {
    let dir = tempfile::tempdir().expect("temporary directory");
    match backend {
        Backend::Sqlite => {
            let url = format!("sqlite://{}", dir.path().join("auth.db").display());
            Some(TestDb { url, dir, pg: None })
        }
        Backend::Postgres => {
            let base = postgres_base_url();
            let connect = sqlx::postgres::PgPoolOptions::new()
                .max_connections(1)
                .acquire_timeout(Duration::from_secs(3))
                .connect(&base);
            let pool = match tokio::time::timeout(Duration::from_secs(5), connect).await {
                Ok(Ok(pool)) => pool,
                Ok(Err(err)) => return postgres_missing(&base, &err.to_string()),
                Err(_) => return postgres_missing(&base, "timed out"),
            };
            let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
            let sql = format!("CREATE SCHEMA {schema}");
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&pool)
                .await
                .expect("create test schema");
            pool.close().await;
            let sep = if base.contains('?') { '&' } else { '?' };
            let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
            Some(TestDb {
                url,
                dir,
                pg: Some((base, schema)),
            })
        }
    }
}

fn postgres_missing<T>(base: &str, why: &str) -> Option<T> {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("PostgreSQL at {base} is required under CI=true but is not answering: {why}");
    }
    eprintln!(
        "\n*** SKIPPING a PostgreSQL test: no server at {base} ({why}). Set TEST_POSTGRES_URL or start PostgreSQL. ***\n"
    );
    None
}

/// A token service running in-process on a loopback port.
pub struct TestAuth {
    pub base_url: String,
    pub state: AppState,
    pub db: TestDb,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl TestAuth {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    pub fn settings(db: &TestDb) -> Settings {
        let mut settings = Settings::with_defaults(db.url.clone(), db.master_key_path());
        settings.bind = "127.0.0.1:0".parse().unwrap();
        settings.issuer = ISSUER.into();
        settings.key_reload_interval = Duration::from_millis(200);
        settings
    }

    /// Stops the server gracefully (which flushes the audit trail) and hands back the database.
    pub async fn stop(mut self) -> TestDb {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("server task").expect("server ran");
        }
        self.state.db.close().await;
        self.db
    }

    /// Makes the server see client changes made a moment ago through the admin API, as its
    /// reload interval would (disabling and secret withdrawal take effect within it).
    pub async fn sync_clients(&self) {
        self.state
            .clients
            .refresh(&self.state.db)
            .await
            .expect("client reload");
    }

    /// Creates a client through the admin API and returns it with its secret.
    pub async fn client(&self, partner: &str, scopes: &str) -> (Client, ClientSecret) {
        self.client_with(partner, scopes, |_| {}).await
    }

    pub async fn client_with(
        &self,
        partner: &str,
        scopes: &str,
        adjust: impl FnOnce(&mut ClientSpec),
    ) -> (Client, ClientSecret) {
        let mut spec = ClientSpec {
            name: format!("{partner} test client"),
            partner_id: PartnerId::parse(partner).unwrap(),
            scopes: ScopeSet::parse(scopes).unwrap(),
            audiences: vec!["partner-api".into()],
            access_token_ttl: None,
            refresh_enabled: true,
            introspect_allowed: false,
        };
        adjust(&mut spec);
        admin::create_client(&self.state.db, spec)
            .await
            .expect("create client")
    }
}

pub async fn spawn_auth_server(backend: Backend) -> Option<TestAuth> {
    let db = test_db(backend).await?;
    let settings = TestAuth::settings(&db);
    Some(spawn_auth_with(db, settings).await)
}

pub async fn spawn_auth_with(db: TestDb, settings: Settings) -> TestAuth {
    let app = Application::build(settings)
        .await
        .expect("token service builds");
    let base_url = format!("http://{}", app.local_addr());
    let state = app.state().clone();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    TestAuth {
        base_url,
        state,
        db,
        stop: Some(stop),
        task: Some(task),
    }
}

/// Rotates the signing keys at once, as `auth-server keys rotate --force` does: the pending key
/// becomes active and a new pending key of `alg` is made.
pub async fn force_rotate(auth: &TestAuth, alg: keys::Algorithm) -> auth_server::signing::Rotation {
    let master = keys::MasterKey::load(&auth.db.master_key_path()).unwrap();
    let policy = auth.state.config.key_policy();
    auth_server::signing::rotate_key(&auth.state.db, &master, &policy, Some(alg), true)
        .await
        .expect("forced rotation")
}

/// The wall clock in seconds since the Unix epoch, with fractions. The servers compare times in
/// whole seconds of this clock, which lets a test bracket an answer without assuming how long a
/// request takes: an answer that arrived before second `t` was decided at a second before `t`,
/// and a request sent at or after `t + 1` is decided at a second after `t`.
pub fn unix_time() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("a clock after 1970")
        .as_secs_f64()
}

/// Polls `check` every 50 ms until it returns `Some`, failing the test with `what` after
/// `within`. Waiting for a condition, rather than sleeping a fixed time, keeps a test correct on
/// a slow machine and quick on a fast one; `within` is a deadline for a hang, not an expectation.
pub async fn eventually<T, F, Fut>(within: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sleeps until `unix_time()` has reached `t`.
pub async fn sleep_until_unix(t: f64) {
    let wait = t - unix_time();
    if wait > 0.0 {
        tokio::time::sleep(Duration::from_secs_f64(wait)).await;
    }
}
