//! Helpers that start the partner API beside the token service.

use std::time::Duration;

use tokio::sync::oneshot;

use crate::common::{Backend, ISSUER, TestAuth, TestDb, spawn_auth_server, test_db};

/// A partner API running in-process on a loopback port, trusting `auth`'s keys.
pub struct TestApi {
    pub base_url: String,
    /// `http://…` of the metrics listener, when it was started with one.
    pub metrics_base_url: Option<String>,
    pub state: resource_api::AppState,
    pub db: TestDb,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl TestApi {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    pub fn jwks_fetches(&self) -> u64 {
        self.state.verifier.jwks().fetch_count()
    }

    pub async fn stop(mut self) -> TestDb {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("server task").expect("server ran");
        }
        self.state.store.close().await;
        self.db
    }

    /// Waits until the API has loaded the token service's keys.
    pub async fn wait_ready(&self) {
        let jwks = self.state.verifier.jwks();
        crate::common::eventually(
            Duration::from_secs(30),
            "the partner API loaded the JWKS",
            || async { jwks.is_loaded().then_some(()) },
        )
        .await;
    }
}

/// Settings for a partner API trusting `auth`. The per-client rate limit is lifted: a test about
/// anything else must not turn on how fast its machine sends requests (the default 50/s, burst
/// 100, is reached by a fast machine's loop). The rate-limit tests set their own.
pub fn resource_settings(auth: &TestAuth, db: &TestDb) -> resource_api::Settings {
    let mut settings =
        resource_api::Settings::with_defaults(ISSUER, &auth.url("/.well-known/jwks.json"), &db.url);
    settings.bind = "127.0.0.1:0".parse().unwrap();
    let unlimited = std::num::NonZeroU32::new(1_000_000).unwrap();
    settings.rate_limit_per_second = unlimited;
    settings.rate_limit_burst = unlimited;
    settings
}

/// Starts a partner API for `auth` on a fresh database of `backend`, after `adjust`ing settings.
pub async fn spawn_resource_api(
    backend: Backend,
    auth: &TestAuth,
    adjust: impl FnOnce(&mut resource_api::Settings),
) -> Option<TestApi> {
    let db = test_db(backend).await?;
    let mut settings = resource_settings(auth, &db);
    adjust(&mut settings);
    Some(spawn_resource_with(db, settings).await)
}

pub async fn spawn_resource_with(db: TestDb, settings: resource_api::Settings) -> TestApi {
    let app = resource_api::Application::build(settings)
        .await
        .expect("partner API builds");
    let base_url = format!("http://{}", app.local_addr());
    let metrics_base_url = app.metrics_addr().map(|addr| format!("http://{addr}"));
    let state = app.state().clone();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    TestApi {
        base_url,
        metrics_base_url,
        state,
        db,
        stop: Some(stop),
        task: Some(task),
    }
}

/// Both servers, each on its own fresh database of `backend`, with the API's keys loaded.
pub async fn spawn_system(backend: Backend) -> Option<(TestAuth, TestApi)> {
    let auth = spawn_auth_server(backend).await?;
    let api = spawn_resource_api(backend, &auth, |_| {}).await?;
    api.wait_ready().await;
    Some((auth, api))
}
