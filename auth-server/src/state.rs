//! The state shared by every handler, and small extractors.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;

use crate::audit::AuditLog;
use crate::client_keys::ClientKeys;
use crate::config::Settings;
use crate::directory::ClientDirectory;
use crate::metrics::AuthMetrics;
use crate::signing::{MasterKeySource, SharedKeys};
use crate::store::Store;
use shared_limits::Lockouts;

/// Cloned for every request (axum's `State`), so it is one `Arc`: one reference count to move,
/// not one per field (shared counts bounce between cores; see BENCHMARKS.md).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> AppState {
        AppState(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

pub struct Shared {
    pub db: Store,
    pub keys: SharedKeys,
    /// The master key, for the maintenance that seals new keys.
    pub master: Arc<MasterKeySource>,
    pub audit: AuditLog,
    /// The settings, inside the one shared `Arc` like everything else here.
    pub config: Settings,
    pub lockouts: Arc<Lockouts>,
    /// The clients, in memory; see [`ClientDirectory`].
    pub clients: ClientDirectory,
    /// `private_key_jwt` clients' public keys: parsed documents and fetched `jwks_uri`s.
    pub client_keys: ClientKeys,
    /// Hashes presented API keys for lookup (see `crate::api_key`).
    pub api_keys: crate::api_key::ApiKeyHasher,
    /// The counters (no-ops unless `AUTH_METRICS_BIND` is set); see [`AuthMetrics`].
    pub metrics: AuthMetrics,
}

/// The peer address, when the server was started with connect info (router tests run without).
pub struct ClientAddr(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = Infallible;

    /// The address seen through trusted proxies (see `edge::ClientIdentityLayer`), else the peer.
    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        if let Some(edge::ClientIp(ip)) = parts.extensions.get::<edge::ClientIp>() {
            return Ok(ClientAddr(Some(*ip)));
        }
        Ok(ClientAddr(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(addr)| addr.ip()),
        ))
    }
}
