//! Housekeeping that has nothing to do with signing keys: every minute, expired refresh tokens
//! and access-token revocations are deleted, and the failed-authentication limiters forget
//! addresses that have not failed lately. It runs apart from the key maintenance loop, so a slow
//! purge never delays a key reload, and the other way round.

use std::sync::Arc;
use std::time::Duration;

use crate::store::Store;
use shared_limits::Lockouts;

const EVERY: Duration = Duration::from_secs(60);

pub fn spawn(db: Store, lockouts: Arc<Lockouts>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(EVERY);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let _ = run_once(&db, &lockouts).await;
        }
    })
}

/// One round (a Lambda function runs it on a scheduled event).
pub async fn run_once(db: &Store, lockouts: &Lockouts) -> anyhow::Result<()> {
    lockouts.shrink();
    let now = crate::now();
    match db.purge_expired_assertions(now).await {
        Ok(0) => {}
        Ok(assertions) => tracing::debug!(assertions, "forgot expired client assertions"),
        Err(err) => tracing::warn!(error = %err, "expired-assertion purge failed"),
    }
    match db.purge_expired_tokens(now).await {
        Ok((0, 0)) => Ok(()),
        Ok((refresh, access)) => {
            tracing::info!(refresh, access, "purged expired tokens");
            Ok(())
        }
        Err(err) => {
            tracing::warn!(error = %err, "expired-token purge failed");
            Err(err)
        }
    }
}
