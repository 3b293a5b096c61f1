//! Helpers for end-to-end tests: a fresh database per test (a SQLite file in a temporary folder,
//! or a private schema on the PostgreSQL server), and servers started in-process on port 0.

use std::time::Duration;

use auth_server::admin::{self, ClientSpec};
use auth_server::secret::ClientSecret;
use auth_server::state::AppState;
use auth_server::store::Client;
use auth_server::{Application, Settings};
use shared_claims::{PartnerId, ScopeSet};
use tokio::sync::oneshot;

pub mod partner_keys;
pub mod redis;
mod requests;
pub mod system;

pub use requests::*;

pub const ISSUER: &str = "http://auth.test";

pub use test_support::db::{Backend, TestDb, test_db};

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

/// A token service running in-process on a loopback port.
pub struct TestAuth {
    pub base_url: String,
    /// `https://…` of the mutual-TLS listener, when it was started with one.
    pub mtls_base_url: Option<String>,
    /// `http://…` of the metrics listener, when it was started with one.
    pub metrics_base_url: Option<String>,
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

impl TestAuth {
    /// Creates a client that authenticates as `auth` says (a certificate, keys), through the
    /// admin API.
    pub async fn client_authenticating(
        &self,
        partner: &str,
        scopes: &str,
        auth: admin::ClientAuth,
    ) -> Client {
        let spec = ClientSpec {
            name: format!("{partner} test client"),
            partner_id: PartnerId::parse(partner).unwrap(),
            scopes: ScopeSet::parse(scopes).unwrap(),
            audiences: vec!["partner-api".into()],
            access_token_ttl: None,
            refresh_enabled: true,
            introspect_allowed: false,
        };
        admin::register_client(&self.state.db, spec, auth)
            .await
            .expect("create client")
            .0
    }

    /// Creates an `api_key` client for audience `partner-api`; returns it with its key.
    pub async fn api_key_client(&self, partner: &str, scopes: &str) -> (Client, String) {
        let spec = ClientSpec {
            name: format!("{partner} key client"),
            partner_id: PartnerId::parse(partner).unwrap(),
            scopes: ScopeSet::parse(scopes).unwrap(),
            audiences: vec!["partner-api".into()],
            access_token_ttl: None,
            refresh_enabled: false,
            introspect_allowed: false,
        };
        let auth = admin::ClientAuth::ApiKey(self.state.api_keys.current().expect("a hash key"));
        let (client, key) = admin::register_client(&self.state.db, spec, auth)
            .await
            .expect("create api_key client");
        (client, key.expect("an API key").expose().to_owned())
    }

    /// Rotates a client's secret or API key with `grace` seconds for the old one; the new one.
    pub async fn rotate(&self, client_id: &str, grace: i64) -> String {
        let (key, _) = admin::rotate_secret(
            &self.state.db,
            client_id,
            grace,
            self.state.api_keys.current().as_ref(),
        )
        .await
        .expect("rotate");
        key.expose().to_owned()
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
    let mtls_base_url = app.mtls_addr().map(|addr| format!("https://{addr}"));
    let metrics_base_url = app.metrics_addr().map(|addr| format!("http://{addr}"));
    let state = app.state().clone();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    TestAuth {
        base_url,
        mtls_base_url,
        metrics_base_url,
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
