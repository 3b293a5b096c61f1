//! Key maintenance: picking up key changes made elsewhere (the CLI, another instance), scheduled
//! rotation, and purging retired keys whose tokens have all expired. A running server does it
//! every reload interval ([`spawn`]); a Lambda function, where no timer runs, on a scheduled event
//! ([`run_once`]).

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
            if let Err(err) = run_once(&keys, &db, &master, &policy, rotation_interval).await {
                tracing::warn!(error = %err, "key maintenance failed");
            }
        }
    })
}

/// One round: rotation when due, the purge, then the reload. Each step is safe with several
/// instances at once (see `lifecycle`). Returns the first failure after trying every step.
pub async fn run_once(
    keys: &SharedKeys,
    db: &Store,
    master: &MasterKeySource,
    policy: &KeyPolicy,
    rotation_interval: Option<Duration>,
) -> anyhow::Result<()> {
    let mut first_failure = None;
    if let Some(interval) = rotation_interval
        && let Err(err) = lifecycle::scheduled_rotation(db, &master.get(), policy, interval).await
    {
        tracing::warn!(error = %err, "scheduled key rotation failed");
        first_failure.get_or_insert(err);
    }
    match lifecycle::purge(db, policy, "server", crate::now()).await {
        Ok(purged) if !purged.is_empty() => {
            tracing::info!(?purged, "purged retired signing keys")
        }
        Ok(_) => {}
        Err(err) => {
            tracing::warn!(error = %err, "automatic key purge failed");
            first_failure.get_or_insert(err);
        }
    }
    match keys.refresh(db, master).await {
        Ok(true) => tracing::info!("signing keys reloaded"),
        Ok(false) => {}
        Err(err) => {
            tracing::warn!(error = %err, "signing key reload failed; keeping the current keys");
            first_failure.get_or_insert(err);
        }
    }
    first_failure.map_or(Ok(()), Err)
}
