//! The state every handler and middleware sees, apart from the code that builds it, so that the
//! modules reading it (`auth`, `routes`) do not depend on the composition root in `app`.

use std::sync::Arc;

use crate::api_keys::ApiKeys;
use crate::introspection::Introspector;
use crate::metrics::ApiMetrics;
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
    /// The layers every request passes through (see `edge::Envelope`).
    pub envelope: edge::Envelope,
    pub store: Store,
    pub verifier: Verifier,
    /// The per-client rate limit (shared through Redis when `RESOURCE_REDIS_URL` is set).
    pub rate_limit: shared_limits::RateLimiter,
    /// Set when some routes check tokens online; see `RESOURCE_INTROSPECT_ROUTES`.
    pub introspection: Option<Arc<Introspection>>,
    /// Set when API keys are accepted beside tokens; see `RESOURCE_API_KEYS`.
    pub api_keys: Option<Arc<ApiKeys>>,
    /// The counters (no-ops unless `RESOURCE_METRICS_BIND` is set); see [`ApiMetrics`].
    pub metrics: ApiMetrics,
}

/// The online check and the routes that use it.
pub struct Introspection {
    pub introspector: Introspector,
    pub routes: Vec<String>,
}
