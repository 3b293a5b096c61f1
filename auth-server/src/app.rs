//! Building and running the token service: [`Application::build`] opens the database, the master
//! key and the signing keys; [`router`] is separate so tests can drive it with `oneshot`.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::http::{HeaderName, HeaderValue, Request, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use keys::MasterKey;
use tokio::net::TcpListener;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::audit::AuditLog;
use crate::config::Settings;
use crate::directory::ClientDirectory;
use crate::oauth::lockout::Lockouts;
use crate::signing::{self, KeyRing, MasterKeySource, SharedKeys};
use crate::state::{AppState, Shared};
use crate::store::Store;
use crate::{oauth, wellknown};

/// A token service bound to its port, ready to run.
pub struct Application {
    listener: TcpListener,
    state: AppState,
}

impl Application {
    /// Prepares everything a first start needs: the master key file (created, with a warning, if
    /// missing), the schema, and a first signing key. Fails with a clear message if the master
    /// key cannot open the stored keys.
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        // Refuse a plaintext public bind before touching the database or keys.
        settings.transport.check_bind(settings.bind, "AUTH")?;
        keys::install_crypto_provider();
        let master = load_master_key(&settings)?;
        let db = Store::connect(&settings.database_url).await?;
        db.migrate().await?;
        let created = signing::bootstrap(&db, &master, crate::now()).await?;
        if !created.is_empty() {
            tracing::info!(?created, "created signing keys");
        }
        let ring = KeyRing::load(&db, &master).await?;
        let clients = ClientDirectory::load(&db).await?;
        clients.spawn_refresher(db.clone(), settings.key_reload_interval);
        let master = Arc::new(MasterKeySource::new(
            settings.master_key_file.clone(),
            master,
        ));
        let listener = TcpListener::bind(settings.bind)
            .await
            .with_context(|| format!("cannot listen on {}", settings.bind))?;
        let (audit, _writer) = AuditLog::spawn(db.clone());
        let keys = SharedKeys::new(ring);
        signing::maintenance::spawn(
            keys.clone(),
            db.clone(),
            master,
            settings.key_policy(),
            settings.key_rotation_interval,
        );
        let lockouts = Arc::new(Lockouts::new(settings.lockout));
        crate::housekeeping::spawn(db.clone(), lockouts.clone());
        let state = AppState::new(Shared {
            lockouts,
            clients,
            db,
            keys,
            audit,
            config: settings,
        });
        Ok(Application { listener, state })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
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
        let transport = self.state.config.transport.clone();
        edge::serve(
            self.listener,
            router(self.state.clone()),
            &transport,
            shutdown,
        )
        .await?;
        self.state.audit.flush().await;
        Ok(())
    }

    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.run_until(edge::shutdown_signal()).await
    }
}

fn load_master_key(settings: &Settings) -> anyhow::Result<MasterKey> {
    let loaded = MasterKey::load_or_create(&settings.master_key_file)
        .with_context(|| format!("master key file {}", settings.master_key_file.display()))?;
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

/// The HTTP surface of the token service.
pub fn router(state: AppState) -> Router {
    let request_timeout = state.config.request_timeout;
    let state_tls = state.config.transport.tls.is_some();
    let trusted_proxies = state.config.transport.trusted_proxies.clone();
    let max_concurrent = state.config.max_concurrent_requests;
    let requests_per_client = state.config.transport.limits.requests_per_client;
    let header_limits = state.config.transport.headers;
    let request_id = HeaderName::from_static("x-request-id");
    Router::new()
        .route("/oauth2/token", post(oauth::token::token))
        .route("/oauth2/revoke", post(oauth::revoke::revoke))
        .route("/oauth2/introspect", post(oauth::introspect::introspect))
        .route("/.well-known/jwks.json", get(wellknown::jwks))
        .route("/.well-known/oauth-authorization-server", get(wellknown::metadata))
        .route("/healthz", get(wellknown::healthz))
        .route("/readyz", get(wellknown::readyz))
        .fallback(not_found)
        .with_state(state)
        // Bounds on every request: body size (413), total time (408) and requests in flight
        // (503, shed at once rather than queued). Header sizes are bounded below (431).
        .layer(RequestBodyLimitLayer::new(MAX_REQUEST_BYTES))
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, request_timeout))
        .layer(
            tower::ServiceBuilder::new()
                .layer(HandleErrorLayer::new(|_: tower::BoxError| async { overloaded() }))
                .load_shed()
                // Global: `Router::layer` wraps each route, and the bound is for the server.
                .layer(tower::limit::GlobalConcurrencyLimitLayer::new(max_concurrent)),
        )
        // Per client address, so one flooding address cannot take every global slot (503).
        .layer(edge::PerClientRequestLimitLayer::new(requests_per_client))
        // Oversized headers (431) are refused before they take a slot of their client's.
        .layer(edge::HeaderLimitLayer::new(header_limits))
        .layer(edge::SecurityHeadersLayer { hsts: state_tls })
        .layer(edge::ClientIpLayer::new(&trusted_proxies))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
                // The path only: a query string could carry anything a client pasted into it.
                let id = request.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("");
                tracing::info_span!("request", method = %request.method(), path = %request.uri().path(), request_id = %id)
            }),
        )
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .layer(SetSensitiveRequestHeadersLayer::new([header::AUTHORIZATION, header::COOKIE]))
}

/// A backstop far above any legitimate request: the OAuth endpoints read at most 16 KiB
/// themselves and answer an RFC 6749 JSON error past that; this bound covers everything else.
const MAX_REQUEST_BYTES: usize = 1024 * 1024;

fn overloaded() -> axum::response::Response {
    let mut response = (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::CONTENT_TYPE, "application/problem+json")],
        r#"{"type":"about:blank","title":"Service Unavailable","status":503,"detail":"too many requests in flight"}"#,
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

async fn not_found() -> impl IntoResponse {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "application/problem+json")],
        r#"{"type":"about:blank","title":"Not Found","status":404}"#,
    )
}
