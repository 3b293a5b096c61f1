//! The partner API as an AWS Lambda function: the same state, router and answers as the server,
//! behind `edge::lambda` instead of a listener. A frozen instance runs no timer, so the JWKS is
//! refreshed by the invocations themselves (when past its `max-age`, and on an unknown `kid`, in
//! a single flight), and it is fetched once during initialization, so the first partner request
//! does not wait for it. The verified-token cache lives as long as the instance.

use std::time::Duration;

use crate::app;
use crate::config::Settings;
use crate::jwks::JwksCache;

/// The longest initialization waits for the JWKS; a slower token service is asked again by the
/// first request.
const PREFETCH: Duration = Duration::from_secs(2);

/// Serves Lambda invocations until the runtime stops.
pub async fn run(settings: Settings) -> anyhow::Result<()> {
    if settings.redis.is_none() {
        edge::lambda::warn_limits_per_instance("RESOURCE_REDIS_URL");
    }
    // No listener runs beside an invocation, so nothing would ever read (or fold) what was
    // recorded: metrics are off under Lambda (use CloudWatch's own invocation metrics).
    if settings.metrics_bind.is_some() {
        tracing::warn!("RESOURCE_METRICS_BIND is ignored under AWS Lambda: no listener runs there");
    }
    let (state, router) = app::prepare(&settings, edge::Metrics::off()).await?;
    prefetch_jwks(state.verifier.jwks()).await;
    edge::lambda::serve(router, None).await
}

/// Makes `jwks` refresh itself on demand (no timer runs in a frozen instance) and loads it once,
/// waiting at most [`PREFETCH`]: a slower token service is asked again by the first invocation.
pub(crate) async fn prefetch_jwks(jwks: &JwksCache) {
    jwks.refresh_on_demand();
    match tokio::time::timeout(PREFETCH, jwks.refresh()).await {
        Ok(Ok(())) => {}
        Ok(Err(err)) => {
            tracing::warn!(error = %err, "JWKS not loaded at start; the first request will try again")
        }
        Err(_) => tracing::warn!(
            "JWKS not loaded within {PREFETCH:?} at start; the first request will try again"
        ),
    }
}
