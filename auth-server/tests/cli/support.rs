//! What the CLI tests need around the binary: a database of its own per test (a SQLite file in a
//! temporary folder, or a private schema on the PostgreSQL server) and a token service sharing
//! it, running in-process on a loopback port. The root package's end-to-end helpers
//! (`tests/e2e/common`) do much more; these are the few the CLI tests use, so this binary does
//! not reach into another package's files.

use std::sync::LazyLock;
use std::time::Duration;

use auth_server::state::AppState;
use auth_server::{Application, Settings};
use tokio::sync::oneshot;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Generates one `#[tokio::test]` per backend from an `async fn(Backend)`.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($crate::support::Backend::Sqlite).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$name($crate::support::Backend::Postgres).await
                }
            }
        )*
    };
}

/// A database of its own for one test, and the folder of its master key. A PostgreSQL schema is
/// dropped when this is dropped.
pub struct TestDb {
    pub url: String,
    pub dir: tempfile::TempDir,
    schema: Option<(String, String)>,
}

impl TestDb {
    pub fn master_key_path(&self) -> std::path::PathBuf {
        self.dir.path().join("master.key")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((base, schema)) = self.schema.take() {
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

/// A fresh database, or `None` when PostgreSQL is wanted but absent outside CI (the test is then
/// skipped with a loud notice). Under `CI=true` an absent PostgreSQL fails the test.
async fn test_db(backend: Backend) -> Option<TestDb> {
    let dir = tempfile::tempdir().expect("temporary directory");
    if backend == Backend::Sqlite {
        let url = format!("sqlite://{}", dir.path().join("auth.db").display());
        return Some(TestDb {
            url,
            dir,
            schema: None,
        });
    }
    let base = std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
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
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&pool)
        .await
        .expect("create test schema");
    pool.close().await;
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
    Some(TestDb {
        url,
        dir,
        schema: Some((base, schema)),
    })
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
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl TestAuth {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// Stops the server gracefully, which flushes the audit trail.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.expect("server task").expect("server ran");
        self.state.db.close().await;
    }

    /// Makes the server see client changes made a moment ago, as its reload interval would.
    pub async fn sync_clients(&self) {
        self.state
            .clients
            .refresh(&self.state.db)
            .await
            .expect("client reload");
    }
}

pub async fn spawn_auth_server(backend: Backend) -> Option<TestAuth> {
    let db = test_db(backend).await?;
    let mut settings = Settings::with_defaults(db.url.clone(), db.master_key_path());
    settings.bind = "127.0.0.1:0".parse().unwrap();
    settings.issuer = "http://auth.test".into();
    settings.key_reload_interval = Duration::from_millis(200);
    let app = Application::build(settings)
        .await
        .expect("token service builds");
    let base_url = format!("http://{}", app.local_addr());
    let state = app.state().clone();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    Some(TestAuth {
        base_url,
        state,
        db,
        stop,
        task,
    })
}

/// The binary's one HTTP client, keeping no idle connections (as the end-to-end tests' client:
/// every request opens its own), from `edge::http_client` like the services' clients.
pub fn http() -> reqwest::Client {
    static CLIENT: LazyLock<reqwest::Client> = LazyLock::new(|| {
        edge::http_client(Duration::from_secs(10), Duration::from_secs(30))
            .pool_max_idle_per_host(0)
            .build()
            .expect("http client")
    });
    CLIENT.clone()
}
