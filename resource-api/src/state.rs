//! The state every handler and middleware sees, apart from the code that builds it, so that the
//! modules reading it (`auth`, `routes`) do not depend on the composition root in `app`.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::introspection::Introspector;
use crate::ratelimit::ClientRateLimit;
use crate::store::Store;
use crate::verify::Verifier;

/// Cloned for every request (axum's `State`), so it is one `Arc`: one reference count to move,
/// not one per field.
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
    pub limits: RequestLimits,
    pub store: Store,
    pub verifier: Verifier,
    pub rate_limit: ClientRateLimit,
    /// Set when some routes check tokens online; see `RESOURCE_INTROSPECT_ROUTES`.
    pub introspection: Option<Arc<Introspection>>,
}

/// Bounds applied to every request.
#[derive(Clone)]
pub struct RequestLimits {
    pub timeout: Duration,
    pub max_concurrent: usize,
    /// Requests in flight from one client address (see `edge::PeerLimits`).
    pub requests_per_client: usize,
    /// Proxies whose `X-Forwarded-For` names the client address.
    pub trusted_proxies: Arc<[IpAddr]>,
    /// The server speaks TLS itself, so responses carry HSTS.
    pub hsts: bool,
    /// How large request headers may be (see `edge::HeaderLimits`).
    pub headers: edge::HeaderLimits,
}

/// The online check and the routes that use it.
pub struct Introspection {
    pub introspector: Introspector,
    pub routes: Vec<String>,
}
