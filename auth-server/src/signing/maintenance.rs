//! The key maintenance loop of a running server: every reload interval it picks up key changes
//! made elsewhere (the CLI, another instance), runs scheduled rotation, and purges retired keys
//! whose tokens have all expired.

use std::sync::Arc;
use std::time::Duration;

use super::{KeyPolicy, MasterKeySource, SharedKeys, lifecycle};
use crate::store::Store;

/// Spawns the loop. `rotation_interval` is `AUTH_KEY_ROTATION_INTERVAL`, if set.
pub fn spawn(
    keys: SharedKeys,
    db: Store,
    master: Arc<MasterKeySource>,
    policy: KeyPolicy,
    rotation_interval: Option<Duration>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(policy.reload_interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            if let Some(interval) = rotation_interval
                && let Err(err) =
                    lifecycle::scheduled_rotation(&db, &master.get(), &policy, interval).await
            {
                tracing::warn!(error = %err, "scheduled key rotation failed");
            }
            match lifecycle::purge(&db, &policy, "server", crate::now()).await {
                Ok(purged) if !purged.is_empty() => {
                    tracing::info!(?purged, "purged retired signing keys")
                }
                Ok(_) => {}
                Err(err) => tracing::warn!(error = %err, "automatic key purge failed"),
            }
            match keys.refresh(&db, &master).await {
                Ok(true) => tracing::info!("signing keys reloaded"),
                Ok(false) => {}
                Err(err) => {
                    tracing::warn!(error = %err, "signing key reload failed; keeping the current keys")
                }
            }
        }
    })
}
