//! What the CLI tests need around the binary: a database of its own per test (a SQLite file in a
//! temporary folder, or a private schema on the PostgreSQL server) and a token service sharing
//! it, running in-process on a loopback port. The root package's end-to-end helpers
//! (`tests/e2e/common`) do much more; these are the few the CLI tests use, so this binary does
//! not reach into another package's files.

use std::sync::LazyLock;
use std::time::Duration;

use auth_server::state::AppState;
use auth_server::{Application, Settings};
use test_support::pki::{Ca, Leaf};
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
    /// The mutual-TLS listener's base URL, when it has one.
    pub mtls_base_url: Option<String>,
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

/// The issuer the test token service names itself: what a client assertion's `aud` must be.
pub const ISSUER: &str = "http://auth.test";

fn settings(db: &TestDb) -> Settings {
    let mut settings = Settings::with_defaults(db.url.clone(), db.master_key_path());
    settings.bind = "127.0.0.1:0".parse().unwrap();
    settings.issuer = ISSUER.into();
    settings.key_reload_interval = Duration::from_millis(200);
    settings
}

pub async fn spawn_auth_server(backend: Backend) -> Option<TestAuth> {
    let db = test_db(backend).await?;
    let settings = settings(&db);
    Some(spawn_with(db, settings).await)
}

/// A token service that serves TLS with a certificate of its own CA and has the RFC 8705
/// mutual-TLS listener beside its main one, where self-signed clients present certificates.
pub struct MtlsAuth {
    pub auth: TestAuth,
    server_ca: Ca,
    mtls_base_url: String,
}

pub async fn spawn_auth_server_with_mtls(backend: Backend) -> Option<MtlsAuth> {
    let db = test_db(backend).await?;
    let server_ca = Ca::new("Test Server CA");
    let server = server_ca.server();
    let (cert, key) = (
        db.dir.path().join("server.pem"),
        db.dir.path().join("server.key"),
    );
    std::fs::write(&cert, &server.cert_pem).unwrap();
    std::fs::write(&key, &server.key_pem).unwrap();
    let mut settings = settings(&db);
    settings.transport = edge::Transport::new(Some(cert), Some(key), vec![], "AUTH").unwrap();
    settings.mtls_bind = Some("127.0.0.1:0".parse().unwrap());
    let auth = spawn_with(db, settings).await;
    let mtls_base_url = auth
        .mtls_base_url
        .clone()
        .expect("the mutual-TLS listener is up");
    Some(MtlsAuth {
        auth,
        server_ca,
        mtls_base_url,
    })
}

impl MtlsAuth {
    /// A client-credentials request at the mutual-TLS listener for `client_id`, presenting
    /// `cert` (with its private key, as only the client holds it).
    pub async fn token(&self, cert: &Leaf, client_id: &str) -> reqwest::Response {
        let root = reqwest::Certificate::from_pem(self.server_ca.cert_pem().as_bytes()).unwrap();
        let identity = reqwest::Identity::from_pem(cert.identity_pem().as_bytes()).unwrap();
        edge::http_client(Duration::from_secs(10), Duration::from_secs(30))
            .tls_certs_only([root])
            .identity(identity)
            .pool_max_idle_per_host(0)
            .build()
            .unwrap()
            .post(format!("{}/oauth2/token", self.mtls_base_url))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", client_id),
            ])
            .send()
            .await
            .expect("token request")
    }
}

async fn spawn_with(db: TestDb, settings: Settings) -> TestAuth {
    let app = Application::build(settings)
        .await
        .expect("token service builds");
    let scheme = if app.state().config.transport.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let base_url = format!("{scheme}://{}", app.local_addr());
    let mtls_base_url = app.mtls_addr().map(|addr| format!("https://{addr}"));
    let state = app.state().clone();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    TestAuth {
        base_url,
        mtls_base_url,
        state,
        db,
        stop,
        task,
    }
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
