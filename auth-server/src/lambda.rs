//! The token service as an AWS Lambda function: the same state, router and answers as the
//! server, behind `edge::lambda` instead of a listener. A frozen instance runs no timer, so what
//! a server does in the background happens at the time of an invocation instead:
//!
//! - before a request, the signing keys and the clients are reloaded when the last reload is older
//!   than `AUTH_KEY_RELOAD_INTERVAL` (one reload at a time);
//! - every audit event of a request is committed before its response is returned;
//! - an EventBridge scheduled event runs the maintenance round of a server: rotation when due
//!   (`AUTH_KEY_ROTATION_INTERVAL`), key and token purges. Several instances may run it at once:
//!   a due rotation still happens exactly once.
//!
//! The database must outlive the instance, so a SQLite URL is refused at start.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use serde_json::{Value, json};

use crate::config::Settings;
use crate::state::AppState;
use crate::{app, housekeeping, signing};

/// Serves Lambda invocations until the runtime stops.
pub async fn run(settings: Settings) -> anyhow::Result<()> {
    refuse_sqlite(&settings.database_url)?;
    if settings.redis.is_none() {
        edge::lambda::warn_limits_per_instance("AUTH_REDIS_URL");
    }
    // No listener runs beside an invocation, so nothing would ever read (or fold) what was
    // recorded: metrics are off under Lambda (use CloudWatch's own invocation metrics).
    if settings.metrics_bind.is_some() {
        tracing::warn!("AUTH_METRICS_BIND is ignored under AWS Lambda: no listener runs there");
    }
    let state = app::prepare(settings, edge::Metrics::off()).await?;
    let reloads = Arc::new(Reloads {
        state: state.clone(),
        last: tokio::sync::Mutex::new(Instant::now()),
    });
    let router = app::router(state.clone())
        .layer(middleware::from_fn_with_state(reloads, reload_when_stale));
    let scheduled: edge::lambda::EventHandler = Box::new(move |event| {
        let state = state.clone();
        Box::pin(async move { on_event(&state, event).await })
    });
    edge::lambda::serve(router, Some(scheduled)).await
}

/// Refuses a SQLite database: the file would vanish with the instance, and each instance would
/// have its own.
pub fn refuse_sqlite(database_url: &str) -> anyhow::Result<()> {
    if database_url
        .trim_start()
        .to_ascii_lowercase()
        .starts_with("sqlite:")
    {
        anyhow::bail!(
            "AUTH_DATABASE_URL is a SQLite database, which cannot work under AWS Lambda: the file \
             would vanish with the instance, and every instance would have its own. Use a shared \
             PostgreSQL database (postgres://…)"
        );
    }
    Ok(())
}

struct Reloads {
    state: AppState,
    last: tokio::sync::Mutex<Instant>,
}

impl Reloads {
    async fn if_due(&self) {
        let mut last = self.last.lock().await;
        if last.elapsed() < self.state.config.key_reload_interval {
            return;
        }
        let state = &self.state;
        if let Err(err) = state.keys.refresh(&state.db, &state.master).await {
            tracing::warn!(error = %err, "signing key reload failed; keeping the current keys");
        }
        if let Err(err) = state.clients.refresh(&state.db).await {
            tracing::warn!(error = %err, "client reload failed; keeping the current clients");
        }
        *last = Instant::now();
    }
}

async fn reload_when_stale(
    State(reloads): State<Arc<Reloads>>,
    request: Request,
    next: Next,
) -> Response {
    reloads.if_due().await;
    next.run(request).await
}

/// An event that is not an HTTP request: a scheduled event runs the maintenance round.
async fn on_event(state: &AppState, event: Value) -> anyhow::Result<Value> {
    if !edge::lambda::is_scheduled_event(&event) {
        anyhow::bail!("unexpected event: neither an HTTP request nor an EventBridge schedule");
    }
    let config = &state.config;
    signing::maintenance::run_once(
        &state.keys,
        &state.db,
        &state.master,
        &config.key_policy(),
        config.key_rotation_interval,
    )
    .await?;
    housekeeping::run_once(&state.db, &state.lockouts).await?;
    state.clients.refresh(&state.db).await?;
    let ring = state.keys.get();
    Ok(json!({
        "maintenance": "done",
        "active_kid": ring.active().map(|key| key.kid().to_owned()),
    }))
}

#[cfg(test)]
mod tests {
    #[test]
    fn sqlite_is_refused_and_postgres_is_not() {
        let err = super::refuse_sqlite("sqlite://auth.db").unwrap_err();
        assert!(err.to_string().contains("SQLite"), "{err}");
        assert!(super::refuse_sqlite("SQLITE:auth.db").is_err());
        assert!(super::refuse_sqlite("postgres://u@db/auth").is_ok());
    }
}
