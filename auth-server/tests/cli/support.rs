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

pub use test_support::db::{Backend, TestDb, test_db};

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
