//! Building and running the partner API. [`router`] is separate so tests can drive it directly.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use shared_limits::{Rate, RateLimiter, SharedStore};
use tokio::net::TcpListener;
use utoipa_axum::router::OpenApiRouter;

use crate::api_keys::ApiKeys;
use crate::auth::UnknownOnlineRoute;
use crate::config::Settings;
use crate::introspection::Introspector;
use crate::jwks::JwksCache;
use crate::metrics::ApiMetrics;
use crate::openapi::{self, Health, Readiness};
use crate::problem;
use crate::routes;
use crate::state::{AppState, Introspection, Shared};
use crate::store::Store;
use crate::verify::Verifier;

/// The API only takes GET requests; any body beyond this is refused with 413.
const MAX_REQUEST_BYTES: usize = 16 * 1024;

/// A partner API bound to its port (and its metrics port, when configured), ready to run.
pub struct Application {
    listener: TcpListener,
    metrics_listener: Option<TcpListener>,
    state: AppState,
    router: Router,
    transport: edge::Transport,
}

impl Application {
    /// Opens (and on first start seeds) the database and starts loading the JWKS in the
    /// background: the API starts even while the token service is unreachable.
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        // Refuse a plaintext public bind, or metrics on the partner-facing address, before
        // touching the database or keys.
        settings.transport.check_bind(settings.bind, "RESOURCE")?;
        settings.check_metrics_bind()?;
        let metrics_listener =
            edge::metrics::listen(settings.metrics_bind, "RESOURCE_METRICS_BIND").await?;
        let metrics = match metrics_listener {
            Some(_) => ApiMetrics::new_registry(),
            None => edge::Metrics::off(),
        };
        let (state, router) = prepare(&settings, metrics).await?;
        state.verifier.jwks().spawn_refresher();
        state.rate_limit.spawn_cleanup();
        if let Some(keys) = state.api_keys.clone() {
            spawn_lockout_cleanup(keys);
        }
        let listener = TcpListener::bind(settings.bind)
            .await
            .with_context(|| format!("cannot listen on {}", settings.bind))?;
        Ok(Application {
            listener,
            metrics_listener,
            transport: settings.transport.clone(),
            state,
            router,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// The metrics listener's address, when there is one.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Some(metrics_listener) = self.metrics_listener else {
            return edge::serve(self.listener, self.router, &self.transport, shutdown).await;
        };
        // One shutdown for both listeners.
        let (stop, stopped) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            shutdown.await;
            let _ = stop.send(true);
        });
        let until = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|stopped| *stopped).await;
        };
        let (api, metrics) = tokio::join!(
            edge::serve(
                self.listener,
                self.router,
                &self.transport,
                until(stopped.clone())
            ),
            self.state
                .metrics
                .registry()
                .serve(metrics_listener, until(stopped)),
        );
        api?;
        metrics
    }
}

/// The state and the router, with nothing running in the background: a server adds its
/// listener and refreshers ([`Application::build`]); a Lambda function neither (`crate::lambda`).
/// Building the router checks the configured online routes against the declared ones, so a
/// misspelt route stops the start here. Counters go to `metrics` (off: no-ops).
pub(crate) async fn prepare(
    settings: &Settings,
    metrics: edge::Metrics,
) -> anyhow::Result<(AppState, Router)> {
    keys::install_crypto_provider();
    let store = Store::open_waiting(&settings.database_url, settings.database_wait).await?;
    let verifier = verifier(settings, &metrics)?;
    let rate_limit = rate_limiter(settings).await?;
    let introspection = match &settings.introspection {
        Some(config) => Some(Arc::new(Introspection {
            routes: config.routes.clone(),
            introspector: Introspector::new(
                config.url.clone(),
                config.client_id.clone(),
                config.client_secret.clone(),
                config.cache,
            )?,
        })),
        None => None,
    };
    let metrics_of_api = ApiMetrics::new(metrics.clone());
    let api_keys = api_keys(settings, &rate_limit, &metrics_of_api)?;
    let state = AppState::new(Shared {
        // Partner data is the caller's own: no response is cached unless it says so.
        envelope: edge::Envelope::new(
            &settings.transport,
            settings.request_timeout,
            settings.max_concurrent_requests,
            MAX_REQUEST_BYTES,
        )
        .no_store_by_default()
        .with_metrics(metrics.clone()),
        store,
        verifier,
        rate_limit,
        introspection,
        api_keys,
        metrics: metrics_of_api,
    });
    let router = router(state.clone())?;
    Ok((state, router))
}

/// The API-key resolver every entry point uses when `RESOURCE_API_KEYS` is on: wrong keys are
/// counted through the rate limit's Redis when there is one; introspection calls are counted in
/// `metrics`.
pub(crate) fn api_keys(
    settings: &Settings,
    rate_limit: &RateLimiter,
    metrics: &ApiMetrics,
) -> anyhow::Result<Option<Arc<ApiKeys>>> {
    let Some(keys) = &settings.api_keys else {
        return Ok(None);
    };
    Ok(Some(Arc::new(ApiKeys::new(
        keys,
        &settings.issuer,
        &settings.audience,
        rate_limit.store().cloned(),
        metrics.key_introspections().clone(),
    )?)))
}

/// Every minute, forgets the in-process wrong-key counts of addresses that have not failed
/// lately (Redis keys expire by themselves).
fn spawn_lockout_cleanup(keys: Arc<ApiKeys>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(std::time::Duration::from_secs(60));
        loop {
            ticker.tick().await;
            keys.shrink();
        }
    })
}

/// The token verifier every entry point uses: strict checks against the JWKS of
/// `RESOURCE_JWKS_URL`, for `RESOURCE_ISSUER` and `RESOURCE_AUDIENCE`, with the verified-token
/// cache. Nothing is fetched yet: a server spawns the refresher, a Lambda function prefetches.
/// JWKS fetches are counted in `metrics`.
pub(crate) fn verifier(settings: &Settings, metrics: &edge::Metrics) -> anyhow::Result<Verifier> {
    let jwks = JwksCache::new(settings.jwks_url.clone(), settings.jwks_cooldown, metrics)?;
    Ok(Verifier::new(
        jwks,
        settings.issuer.clone(),
        settings.audience.clone(),
        settings.leeway_secs,
        settings.token_cache_size,
    ))
}

/// The per-client rate limit (`RESOURCE_RATE_LIMIT_*`), shared through Redis when
/// `RESOURCE_REDIS_URL` is set and counted in this process otherwise.
pub(crate) async fn rate_limiter(settings: &Settings) -> anyhow::Result<RateLimiter> {
    let shared = match &settings.redis {
        Some(redis) => Some(SharedStore::connect(redis, "RESOURCE_REDIS_URL").await?),
        None => None,
    };
    Ok(RateLimiter::new(
        Rate::per_second(settings.rate_limit_per_second, settings.rate_limit_burst),
        shared,
    ))
}

/// The HTTP surface of the partner API: the `/v1` routes of [`routes::v1`] behind authentication,
/// health and readiness, their OpenAPI description (`/openapi.json`, `/docs`), and the bounds
/// every request is held to. Fails when the configured online routes name a route that is not
/// declared (see [`UnknownOnlineRoute`]).
pub fn router(state: AppState) -> Result<Router, UnknownOnlineRoute> {
    let envelope = state.envelope.clone();
    let v1 = routes::v1();
    let (probes, probes_described) = OpenApiRouter::new()
        .routes(utoipa_axum::routes!(healthz))
        .routes(utoipa_axum::routes!(readyz))
        .split_for_parts();
    let description = openapi::description(
        &v1,
        probes_described,
        state.verifier.issuer(),
        state.api_keys.is_some(),
    );
    let routes = Router::new()
        .merge(v1.into_router(state.clone())?)
        .merge(probes)
        .merge(api_docs::routes(&description))
        .fallback(problem::not_found)
        .with_state(state);
    Ok(envelope.wrap(routes))
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = openapi::HEALTH_TAG,
    responses((status = 200, description = "The process answers.", body = Health)))]
async fn healthz() -> axum::Json<Health> {
    axum::Json(Health { status: "ok" })
}

/// Ready when the signing keys are loaded and the database answers.
#[utoipa::path(get, path = "/readyz", tag = openapi::HEALTH_TAG,
    responses(
        (status = 200, description = "Ready: a key set is loaded and the database answers.", body = Readiness),
        (status = 503, description = "Not ready: no key set has been loaded yet, or the database does not answer.", body = Readiness),
    ))]
async fn readyz(State(state): State<AppState>) -> Response {
    let keys_ok = state.verifier.jwks().is_loaded();
    let db_ok = match state.store.probe_read().await {
        Ok(()) => true,
        Err(err) => {
            // Also lets the pool replace connections a fixed fault left broken.
            storage::unavailable(&err);
            tracing::warn!(error = %err, "not ready: the database cannot be read");
            false
        }
    };
    let status = if keys_ok && db_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = Readiness {
        status: if status == StatusCode::OK {
            "ready"
        } else {
            "not_ready"
        },
        jwks: if keys_ok { "loaded" } else { "not_loaded" },
        database: if db_ok { "ok" } else { "unavailable" },
    };
    (status, axum::Json(body)).into_response()
}

#[cfg(test)]
mod introspection_stub;
#[cfg(test)]
mod key_tests;
#[cfg(test)]
mod tests;
