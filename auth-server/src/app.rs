//! Building and running the token service: [`Application::build`] opens the database, the master
//! key and the signing keys; [`router`] is separate so tests can drive it with `oneshot`.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use keys::MasterKey;
use tokio::net::TcpListener;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::audit::AuditLog;
use crate::client_keys::{ClientKeys, KeyFetchPolicy};
use crate::config::Settings;
use crate::directory::ClientDirectory;
use crate::metrics::AuthMetrics;
use crate::signing::{self, KeyRing, MasterKeySource, SharedKeys};
use crate::state::{AppState, Shared};
use crate::store::Store;
use crate::{oauth, openapi, wellknown};
use shared_limits::{Lockouts, SharedStore};

/// A token service bound to its port (and its mutual-TLS and metrics ports, when configured),
/// ready to run.
pub struct Application {
    listener: TcpListener,
    mtls_listener: Option<TcpListener>,
    metrics_listener: Option<TcpListener>,
    state: AppState,
}

impl Application {
    /// Prepares everything a first start needs (see [`prepare`]), binds the port and starts the
    /// background work of a long-running server: the client and key reloads, scheduled rotation,
    /// purges.
    pub async fn build(mut settings: Settings) -> anyhow::Result<Application> {
        // Refuse a plaintext public bind, or metrics on a partner-facing address, before touching
        // the database or keys.
        settings.transport.check_bind(settings.bind, "AUTH")?;
        settings.check_metrics_bind()?;
        let mtls_listener = match settings.mtls_bind {
            Some(bind) => {
                let listener = TcpListener::bind(bind)
                    .await
                    .with_context(|| format!("cannot listen on {bind} (AUTH_MTLS_BIND)"))?;
                if settings.mtls_url.is_none() {
                    settings.mtls_url = Some(mtls_url(&settings.issuer, listener.local_addr()?)?);
                }
                Some(listener)
            }
            None => None,
        };
        let metrics_listener =
            edge::metrics::listen(settings.metrics_bind, "AUTH_METRICS_BIND").await?;
        let metrics = match metrics_listener {
            Some(_) => edge::Metrics::new("auth", None),
            None => edge::Metrics::off(),
        };
        let state = prepare(settings, metrics).await?;
        let config = &state.config;
        let listener = TcpListener::bind(config.bind)
            .await
            .with_context(|| format!("cannot listen on {}", config.bind))?;
        state
            .clients
            .spawn_refresher(state.db.clone(), config.key_reload_interval);
        signing::maintenance::spawn(
            state.keys.clone(),
            state.db.clone(),
            state.master.clone(),
            config.key_policy(),
            config.key_rotation_interval,
        );
        crate::housekeeping::spawn(state.db.clone(), state.lockouts.clone());
        Ok(Application {
            listener,
            mtls_listener,
            metrics_listener,
            state,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// The mutual-TLS listener's address, when there is one.
    pub fn mtls_addr(&self) -> Option<SocketAddr> {
        self.mtls_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
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

    /// Serves until `shutdown` completes, then lets in-flight requests finish and flushes the
    /// audit trail.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Application {
            listener,
            mtls_listener,
            metrics_listener,
            state,
        } = self;
        let transport = state.config.transport.clone();
        let router = router(state.clone());
        // One shutdown for every listener.
        let (stop, stopped) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            shutdown.await;
            let _ = stop.send(true);
        });
        let until = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|stopped| *stopped).await;
        };
        // The same router on a second listener that asks for client certificates.
        let mutual = async {
            match mtls_listener {
                Some(listener) => {
                    let mtls = transport.requesting_client_certs("AUTH")?;
                    edge::serve(listener, router.clone(), &mtls, until(stopped.clone())).await
                }
                None => Ok(()),
            }
        };
        let metrics = async {
            match metrics_listener {
                Some(listener) => {
                    state
                        .metrics
                        .registry()
                        .serve(listener, until(stopped.clone()))
                        .await
                }
                None => Ok(()),
            }
        };
        let plain = edge::serve(listener, router.clone(), &transport, until(stopped.clone()));
        let (plain, mutual, metrics) = tokio::join!(plain, mutual, metrics);
        plain?;
        mutual?;
        metrics?;
        state.audit.flush().await;
        Ok(())
    }

    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.run_until(edge::shutdown_signal()).await
    }
}

/// Everything a token service needs, with nothing running in the background: the master key
/// (from `AUTH_MASTER_KEY`, or its file, created with a warning if missing), the schema, a first
/// signing key, the key ring, the clients, the audit writer and the lockouts. Fails with a clear
/// message if the master key cannot open the stored keys. A server adds its listener and timers
/// ([`Application::build`]); a Lambda function adds neither (`crate::lambda`). Counters go to
/// `metrics` (off: no-ops).
pub(crate) async fn prepare(
    settings: Settings,
    metrics: edge::Metrics,
) -> anyhow::Result<AppState> {
    keys::install_crypto_provider();
    let master = load_master_key(&settings)?;
    let db = Store::connect_for_service(&settings.database_url, settings.database_wait).await?;
    db.migrate().await?;
    let created = signing::bootstrap(&db, &master, crate::now()).await?;
    if !created.is_empty() {
        tracing::info!(?created, "created signing keys");
    }
    let ring = KeyRing::load(&db, &master).await?;
    let api_keys = crate::api_key::ApiKeyHasher::load(&db, &master).await?;
    let clients = ClientDirectory::load(&db).await?;
    // A key given in the environment has no file to re-read.
    let file = settings
        .master_key
        .is_none()
        .then(|| settings.master_key_file.clone());
    let master = Arc::new(MasterKeySource::new(file, master));
    let (audit, _writer) = AuditLog::spawn(db.clone());
    let shared = match &settings.redis {
        Some(redis) => Some(SharedStore::connect(redis, "AUTH_REDIS_URL").await?),
        None => None,
    };
    Ok(AppState::new(Shared {
        lockouts: Arc::new(Lockouts::new(settings.lockout, shared)),
        clients,
        client_keys: ClientKeys::new(ClientKeys::http_client()?, KeyFetchPolicy::default()),
        db,
        keys: SharedKeys::new(ring),
        master,
        api_keys,
        audit,
        config: settings,
        metrics: AuthMetrics::new(metrics),
    }))
}

fn load_master_key(settings: &Settings) -> anyhow::Result<MasterKey> {
    if let Some(text) = &settings.master_key {
        // The parse error never quotes the value.
        return MasterKey::from_file_contents(text).context("AUTH_MASTER_KEY");
    }
    // Its messages name the file already ("master key file PATH does not exist").
    let loaded = MasterKey::load_or_create(&settings.master_key_file)?;
    if loaded.created {
        tracing::warn!(
            path = %settings.master_key_file.display(),
            "created a new master key file (mode 0600); back it up: without it the signing keys cannot be opened"
        );
    }
    if loaded.loose_permissions {
        tracing::warn!(
            path = %settings.master_key_file.display(),
            "master key file is readable by group or others; run chmod 600 on it"
        );
    }
    Ok(loaded.key)
}

/// The HTTP surface of the token service: its routes inside the shared envelope.
pub fn router(state: AppState) -> Router {
    let config = &state.config;
    let envelope = edge::Envelope::new(
        &config.transport,
        config.request_timeout,
        config.max_concurrent_requests,
        MAX_REQUEST_BYTES,
    )
    .with_metrics(state.metrics.registry().clone())
    .with_refusal_format(refusal_format());
    // The router and its OpenAPI description come from the same `#[utoipa::path]` annotations.
    let (routes, described) = OpenApiRouter::new()
        .routes(routes!(oauth::token::token))
        .routes(routes!(oauth::revoke::revoke))
        .routes(routes!(oauth::introspect::introspect))
        .routes(routes!(wellknown::jwks))
        .routes(routes!(wellknown::metadata))
        // The same document where OpenID Connect discovery (API Gateway's JWT authorizer) looks.
        .routes(routes!(wellknown::openid_configuration))
        .routes(routes!(wellknown::healthz))
        .routes(routes!(wellknown::readyz))
        .split_for_parts();
    let routes = routes
        .merge(api_docs::routes(&openapi::description(described)))
        .fallback(edge::problem::not_found)
        .with_state(state);
    envelope.wrap(routes)
}

/// The paths whose every answer is an RFC 6749 §5.2 error or success: the endpoints a client
/// authenticates at (on either listener; the same paths under Lambda).
const OAUTH_ENDPOINTS: [&str; 3] = ["/oauth2/token", "/oauth2/revoke", "/oauth2/introspect"];

/// How the envelope's refusals (404, 405, 408, 413, 431, 503, a malformed body or `Client-Cert`)
/// are written: at the OAuth endpoints as RFC 6749 §5.2 JSON with `no-store`, like every other
/// answer there — `temporarily_unavailable` for 503, `server_error` for another 5xx, and
/// `invalid_request` (the request is malformed: too large, too slow, the wrong method) for the
/// rest, under the refusal's own status; everywhere else as RFC 9457 problems.
fn refusal_format() -> edge::RefusalFormat {
    use oauth::error::{ErrorCode, OAuthError};
    edge::RefusalFormat::new(|path, refusal| {
        if !OAUTH_ENDPOINTS.contains(&path) {
            return edge::problem::problem(refusal.status, Some(&refusal.detail));
        }
        let code = if refusal.status == axum::http::StatusCode::SERVICE_UNAVAILABLE {
            ErrorCode::TemporarilyUnavailable
        } else if refusal.status.is_server_error() {
            ErrorCode::ServerError
        } else {
            ErrorCode::InvalidRequest
        };
        let mut response =
            axum::response::IntoResponse::into_response(OAuthError::client(code, &refusal.detail));
        *response.status_mut() = refusal.status;
        response
    })
}

/// The default public base URL of the mutual-TLS listener: the issuer's host over https, on the
/// listener's port.
fn mtls_url(issuer: &str, bound: SocketAddr) -> anyhow::Result<String> {
    let mut url = reqwest::Url::parse(issuer).context("AUTH_ISSUER is not a URL")?;
    url.set_scheme("https")
        .map_err(|()| anyhow::anyhow!("AUTH_ISSUER cannot be turned into an https:// URL"))?;
    url.set_port(Some(bound.port()))
        .map_err(|()| anyhow::anyhow!("AUTH_ISSUER has no host"))?;
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// A backstop far above any legitimate request: the OAuth endpoints read at most 16 KiB
/// themselves and answer an RFC 6749 JSON error past that; this bound covers everything else.
const MAX_REQUEST_BYTES: usize = 1024 * 1024;

#[cfg(test)]
mod tests;
