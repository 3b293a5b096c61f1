//! The signing keys of a running token service and their lifecycle.
//!
//! - [`KeyRing`]: the active key opened once into memory, and the JWKS of every published key
//!   (pending, active, retired) serialized once per change rather than per request.
//! - [`SharedKeys`]: the ring a server swaps when the key table changes (CLI changes reach every
//!   instance within the reload interval); its maintenance loop also runs scheduled rotation and
//!   the automatic purge.
//! - [`KeyPolicy`]: when a rotation or a purge is safe.
//! - plans: each lifecycle step as a list of [`KeyChange`]s, applied in one transaction.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context;
use axum::body::Bytes;
use keys::verify::VerifyingKey;
use keys::{Algorithm, KeyState, MasterKey, SigningKey};

use crate::store::{AuditEvent, KeyChange, SigningKeyRow, Store};

/// How often expired refresh tokens and access-token revocations are deleted.
const TOKEN_PURGE_EVERY: Duration = Duration::from_secs(60);

/// Clock skew and propagation slack added to every safety bound, in seconds.
const SLACK_SECS: i64 = 2;
/// The resource API's leeway on `exp`: a retired key must outlive its tokens by this much.
const VERIFIER_LEEWAY_SECS: i64 = shared_claims::DEFAULT_LEEWAY_SECS;

/// The timings that decide when a rotation or purge is safe.
#[derive(Debug, Clone, Copy)]
pub struct KeyPolicy {
    /// The JWKS `Cache-Control: max-age`: how long a resource API may go without refetching.
    pub jwks_max_age: u64,
    /// How long a token-service instance may take to notice a key change.
    pub reload_interval: Duration,
    /// The default access-token lifetime.
    pub access_token_ttl: i64,
}

impl KeyPolicy {
    fn reload_secs(&self) -> i64 {
        self.reload_interval.as_secs_f64().ceil() as i64
    }

    /// When a pending key created at `created_at` is in every resource API's cache: every
    /// instance publishes it within the reload interval, and every cache refetches within max-age.
    pub fn rotation_safe_at(&self, created_at: i64) -> i64 {
        created_at + self.jwks_max_age as i64 + self.reload_secs() + SLACK_SECS
    }

    /// When a key retired at `retired_at` has no unexpired token left: instances may sign with it
    /// for one more reload interval, and its last tokens live `longest_ttl` plus the leeway.
    pub fn purge_safe_at(&self, retired_at: i64, longest_ttl: i64) -> i64 {
        retired_at
            + self.reload_secs()
            + longest_ttl.max(self.access_token_ttl)
            + VERIFIER_LEEWAY_SECS
            + SLACK_SECS
    }
}

/// The master key, re-read from its file when it no longer opens the stored keys, so that an
/// operator who rewraps the keys and replaces the file keeps running servers working.
pub struct MasterKeySource {
    path: PathBuf,
    current: RwLock<Arc<MasterKey>>,
}

impl MasterKeySource {
    pub fn new(path: PathBuf, key: MasterKey) -> MasterKeySource {
        MasterKeySource {
            path,
            current: RwLock::new(Arc::new(key)),
        }
    }

    pub fn get(&self) -> Arc<MasterKey> {
        match self.current.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Re-reads the file; returns whether it holds a different key than before.
    fn reload(&self) -> anyhow::Result<()> {
        let key = Arc::new(MasterKey::load(&self.path)?);
        match self.current.write() {
            Ok(mut guard) => *guard = key,
            Err(poisoned) => *poisoned.into_inner() = key,
        }
        Ok(())
    }
}

/// A consistent snapshot of the key table.
pub struct KeyRing {
    active: Option<Arc<SigningKey>>,
    jwks_json: Bytes,
    /// Every published key, for verifying our own tokens (introspection, revocation). A revoked
    /// key is no longer here, so its tokens stop verifying at once.
    verifying: HashMap<String, Arc<VerifyingKey>>,
    /// (kid, state) of every stored key: what the reload loop compares to notice changes.
    states: Vec<(String, String)>,
}

impl KeyRing {
    /// Reads every key, opens the active one with the master key and builds the JWKS.
    /// A key that the master key cannot open is an error, never a silently skipped key.
    pub async fn load(db: &Store, master: &MasterKey) -> anyhow::Result<KeyRing> {
        let rows = db.list_signing_keys().await?;
        let mut active = None;
        let mut published = Vec::new();
        let mut verifying = HashMap::new();
        let mut states = Vec::new();
        for row in &rows {
            states.push((row.kid.clone(), row.state.clone()));
            let state: KeyState = row
                .state
                .parse()
                .map_err(|_| anyhow::anyhow!("stored key {} has unknown state", row.kid))?;
            let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_str(&row.public_jwk)
                .with_context(|| format!("stored JWK of key {}", row.kid))?;
            if let Some(key) = VerifyingKey::from_jwk(&jwk) {
                verifying.insert(key.kid.clone(), Arc::new(key));
            }
            published.push(jwk);
            if state == KeyState::Active {
                active = Some(Arc::new(open_key(row, master)?));
            }
        }
        states.sort();
        let jwks_json = Bytes::from(serde_json::to_vec(&keys::jwk_set(published.iter()))?);
        Ok(KeyRing {
            active,
            jwks_json,
            verifying,
            states,
        })
    }

    pub fn active(&self) -> Option<&Arc<SigningKey>> {
        self.active.as_ref()
    }

    pub fn jwks_json(&self) -> &Bytes {
        &self.jwks_json
    }

    /// The published key named `kid`, to verify a token we issued.
    pub fn verifying_key(&self, kid: &str) -> Option<&Arc<VerifyingKey>> {
        self.verifying.get(kid)
    }
}

/// Opens a stored key. The kid is the AEAD associated data, so a sealed key copied onto another
/// row does not open.
pub fn open_key(row: &SigningKeyRow, master: &MasterKey) -> anyhow::Result<SigningKey> {
    let alg: Algorithm = row
        .alg
        .parse()
        .map_err(|_| anyhow::anyhow!("stored key {} has unknown algorithm {}", row.kid, row.alg))?;
    let der = master.open(&row.private_key_sealed, row.kid.as_bytes()).map_err(|_| {
        anyhow::anyhow!(
            "the master key cannot open signing key {}: AUTH_MASTER_KEY_FILE is not the key this database was created with",
            row.kid
        )
    })?;
    let key = SigningKey::from_pkcs8(alg, &der)
        .with_context(|| format!("signing key {} is malformed", row.kid))?;
    anyhow::ensure!(
        key.kid() == row.kid,
        "signing key {} does not match its kid",
        row.kid
    );
    Ok(key)
}

/// Seals a key for storage in `state`.
pub fn key_row(
    key: &SigningKey,
    der: &[u8],
    state: KeyState,
    master: &MasterKey,
    now: i64,
) -> anyhow::Result<SigningKeyRow> {
    Ok(SigningKeyRow {
        kid: key.kid().to_owned(),
        alg: key.alg().as_str().to_owned(),
        state: state.as_str().to_owned(),
        public_jwk: serde_json::to_string(key.public_jwk())?,
        private_key_sealed: master.seal(der, key.kid().as_bytes())?,
        created_at: now,
        activated_at: (state == KeyState::Active).then_some(now),
        retired_at: None,
    })
}

/// Generates a key and seals it for storage in `state`.
pub fn new_key_row(
    alg: Algorithm,
    state: KeyState,
    master: &MasterKey,
    now: i64,
) -> anyhow::Result<SigningKeyRow> {
    let (key, der) = SigningKey::generate(alg)?;
    key_row(&key, &der, state, master, now)
}

/// The algorithm of a replacement key: the same as the key it replaces, except that RSA keys
/// cannot be generated here, so their replacements are ES256 (import an RSA key to go on with RSA).
pub fn replacement_alg(alg: &str) -> Algorithm {
    match alg.parse() {
        Ok(Algorithm::RS256) | Err(_) => Algorithm::ES256,
        Ok(other) => other,
    }
}

fn event(actor: &str, action: &str, now: i64, detail: serde_json::Value) -> AuditEvent {
    AuditEvent {
        at: now,
        actor: actor.into(),
        action: action.into(),
        client_id: None,
        source_ip: None,
        detail,
    }
}

/// Makes sure an active and a pending key exist: on a first start both are created, on a database
/// from before pending keys existed a pending key is added. Safe when several instances start at
/// once: the database lets exactly one of them store each key. Returns the kids created.
pub async fn bootstrap(db: &Store, master: &MasterKey, now: i64) -> anyhow::Result<Vec<String>> {
    let rows = db.list_signing_keys().await?;
    let has = |state: &str| rows.iter().any(|r| r.state == state);
    let mut created = Vec::new();
    if !has("active") {
        let active = new_key_row(Algorithm::ES256, KeyState::Active, master, now)?;
        let pending = new_key_row(Algorithm::ES256, KeyState::Pending, master, now)?;
        let audit = event(
            "server",
            "key.bootstrap",
            now,
            serde_json::json!({ "active": active.kid, "pending": pending.kid }),
        );
        if db
            .apply_key_changes(
                &[KeyChange::Insert(&active), KeyChange::Insert(&pending)],
                &audit,
            )
            .await?
        {
            created = vec![active.kid, pending.kid];
        }
    } else if !has("pending") {
        let pending = new_key_row(Algorithm::ES256, KeyState::Pending, master, now)?;
        let audit = event(
            "server",
            "key.create",
            now,
            serde_json::json!({ "pending": pending.kid }),
        );
        if db
            .apply_key_changes(&[KeyChange::Insert(&pending)], &audit)
            .await?
        {
            created = vec![pending.kid];
        }
    }
    Ok(created)
}

/// Why a rotation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum RotationRefused {
    #[error(
        "too early: pending key {pending} was published at {published} and resource servers may not have it before {safe} \
         (in {wait} s); rotate then, or use --force (tokens it signs may be refused until every resource API refreshes its JWKS)"
    )]
    TooEarly {
        pending: String,
        published: String,
        safe: String,
        wait: i64,
    },
    #[error("there is no pending key to promote; use --force to make a new key active at once")]
    NoPending,
    #[error(
        "the signing keys changed while rotating (another admin or instance); nothing was changed, try again"
    )]
    Concurrent,
}

/// What a rotation did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Rotation {
    pub active: String,
    pub pending: String,
    pub retired: Option<String>,
}

fn timestamp(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0).map_or_else(|| unix.to_string(), |t| t.to_rfc3339())
}

/// Rotates: the pending key becomes active, the active key is retired (still published), and a
/// new pending key of `alg` is created. Refused while the pending key may be missing from resource
/// servers' caches, unless `force`.
pub async fn rotate(
    db: &Store,
    master: &MasterKey,
    policy: &KeyPolicy,
    alg: Algorithm,
    force: bool,
    actor: &str,
    now: i64,
) -> anyhow::Result<Result<Rotation, RotationRefused>> {
    let rows = db.list_signing_keys().await?;
    let active = rows.iter().find(|r| r.state == "active");
    let pending = rows.iter().find(|r| r.state == "pending");
    let new_pending = new_key_row(alg, KeyState::Pending, master, now)?;
    // Either the pending key is promoted, or (forced, with no pending key) a fresh key is made
    // active at once.
    let fresh_active = match pending {
        Some(pending) => {
            let safe = policy.rotation_safe_at(pending.created_at);
            if now < safe && !force {
                return Ok(Err(RotationRefused::TooEarly {
                    pending: pending.kid.clone(),
                    published: timestamp(pending.created_at),
                    safe: timestamp(safe),
                    wait: safe - now,
                }));
            }
            // The promoted key must open with this master key, or the servers could not sign.
            open_key(pending, master)?;
            None
        }
        None if force => Some(new_key_row(
            replacement_alg(alg.as_str()),
            KeyState::Active,
            master,
            now,
        )?),
        None => return Ok(Err(RotationRefused::NoPending)),
    };
    let new_active = match (&fresh_active, pending) {
        (Some(row), _) => row.kid.clone(),
        (None, Some(pending)) => pending.kid.clone(),
        (None, None) => return Ok(Err(RotationRefused::NoPending)),
    };
    let mut changes = Vec::new();
    if let Some(active) = active {
        changes.push(KeyChange::Retire(&active.kid));
    }
    changes.push(match &fresh_active {
        Some(row) => KeyChange::Insert(row),
        None => KeyChange::Activate(&new_active),
    });
    changes.push(KeyChange::Insert(&new_pending));
    let rotation = Rotation {
        active: new_active.clone(),
        pending: new_pending.kid.clone(),
        retired: active.map(|a| a.kid.clone()),
    };
    let audit = event(
        actor,
        "key.rotate",
        now,
        serde_json::json!({ "rotation": rotation, "forced": force, "alg": alg.as_str() }),
    );
    if !db.apply_key_changes(&changes, &audit).await? {
        return Ok(Err(RotationRefused::Concurrent));
    }
    Ok(Ok(rotation))
}

/// Shared, swappable key ring of a running server.
#[derive(Clone)]
pub struct SharedKeys {
    current: Arc<RwLock<Arc<KeyRing>>>,
}

impl SharedKeys {
    pub fn new(ring: KeyRing) -> SharedKeys {
        SharedKeys {
            current: Arc::new(RwLock::new(Arc::new(ring))),
        }
    }

    pub fn get(&self) -> Arc<KeyRing> {
        match self.current.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn set(&self, ring: KeyRing) {
        let ring = Arc::new(ring);
        match self.current.write() {
            Ok(mut guard) => *guard = ring,
            Err(poisoned) => *poisoned.into_inner() = ring,
        }
    }

    /// Reloads the ring if the key table changed since the last load. Returns whether it did.
    /// If the master key no longer opens the keys, its file is read again once (an operator may
    /// have rewrapped the keys and replaced the file).
    pub async fn refresh(&self, db: &Store, master: &MasterKeySource) -> anyhow::Result<bool> {
        let mut states = db.signing_key_states().await?;
        states.sort();
        if states == self.get().states {
            return Ok(false);
        }
        let ring = match KeyRing::load(db, &master.get()).await {
            Ok(ring) => ring,
            Err(first) => {
                master.reload().with_context(|| format!("{first:#}"))?;
                KeyRing::load(db, &master.get()).await?
            }
        };
        self.set(ring);
        Ok(true)
    }

    /// Every `interval`: reload keys changed elsewhere, rotate when the schedule says so, and
    /// purge retired keys whose tokens have all expired.
    pub fn spawn_maintenance(
        &self,
        db: Store,
        master: Arc<MasterKeySource>,
        policy: KeyPolicy,
        rotation_interval: Option<Duration>,
    ) -> tokio::task::JoinHandle<()> {
        let keys = self.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(policy.reload_interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut last_token_purge: Option<std::time::Instant> = None;
            loop {
                ticker.tick().await;
                if last_token_purge.is_none_or(|at| at.elapsed() >= TOKEN_PURGE_EVERY) {
                    last_token_purge = Some(std::time::Instant::now());
                    match db.purge_expired_tokens(crate::now()).await {
                        Ok((0, 0)) => {}
                        Ok((refresh, access)) => {
                            tracing::info!(refresh, access, "purged expired tokens")
                        }
                        Err(err) => tracing::warn!(error = %err, "expired-token purge failed"),
                    }
                }
                if let Some(interval) = rotation_interval
                    && let Err(err) =
                        scheduled_rotation(&db, &master.get(), &policy, interval).await
                {
                    tracing::warn!(error = %err, "scheduled key rotation failed");
                }
                match purge(&db, &policy, "server", crate::now()).await {
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
}

/// Rotates if the active key has been active for `interval` and the pending key is safe to
/// promote. Several instances may all decide to; the transaction lets exactly one succeed.
async fn scheduled_rotation(
    db: &Store,
    master: &MasterKey,
    policy: &KeyPolicy,
    interval: Duration,
) -> anyhow::Result<()> {
    let now = crate::now();
    let rows = db.list_signing_keys().await?;
    let due = rows
        .iter()
        .find(|r| r.state == "active")
        .is_some_and(|a| a.activated_at.unwrap_or(a.created_at) + interval.as_secs() as i64 <= now);
    if !due {
        return Ok(());
    }
    let alg = rows
        .iter()
        .find(|r| r.state == "pending")
        .map_or(Algorithm::ES256, |p| replacement_alg(&p.alg));
    match rotate(db, master, policy, alg, false, "server (scheduled)", now).await? {
        Ok(rotation) => tracing::info!(
            active = rotation.active,
            pending = rotation.pending,
            "scheduled key rotation"
        ),
        // Another instance rotated first, or the pending key is not safe yet: try next time.
        Err(RotationRefused::Concurrent | RotationRefused::TooEarly { .. }) => {}
        Err(RotationRefused::NoPending) => {
            bootstrap(db, master, now).await?;
        }
    }
    Ok(())
}

/// Deletes retired keys whose tokens have all expired. Returns the kids purged.
pub async fn purge(
    db: &Store,
    policy: &KeyPolicy,
    actor: &str,
    now: i64,
) -> anyhow::Result<Vec<String>> {
    let rows = db.list_signing_keys().await?;
    let retired: Vec<&SigningKeyRow> = rows.iter().filter(|r| r.state == "retired").collect();
    if retired.is_empty() {
        return Ok(Vec::new());
    }
    let longest = db.longest_client_ttl().await?.unwrap_or(0);
    let expired: Vec<&str> = retired
        .iter()
        .filter(|r| policy.purge_safe_at(r.retired_at.unwrap_or(r.created_at), longest) <= now)
        .map(|r| r.kid.as_str())
        .collect();
    if expired.is_empty() {
        return Ok(Vec::new());
    }
    let changes: Vec<KeyChange> = expired.iter().map(|kid| KeyChange::Delete(kid)).collect();
    let audit = event(
        actor,
        "key.purge",
        now,
        serde_json::json!({ "kids": expired }),
    );
    if !db.apply_key_changes(&changes, &audit).await? {
        // Another instance purged them at the same moment.
        return Ok(Vec::new());
    }
    Ok(expired.into_iter().map(str::to_owned).collect())
}

/// When the oldest retired key may be purged, for the "nothing to purge" message.
pub async fn next_purge_at(db: &Store, policy: &KeyPolicy) -> anyhow::Result<Option<i64>> {
    let rows = db.list_signing_keys().await?;
    let longest = db.longest_client_ttl().await?.unwrap_or(0);
    Ok(rows
        .iter()
        .filter(|r| r.state == "retired")
        .map(|r| policy.purge_safe_at(r.retired_at.unwrap_or(r.created_at), longest))
        .min())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safety_bounds_add_up_the_delays_a_key_change_goes_through() {
        let policy = KeyPolicy {
            jwks_max_age: 300,
            reload_interval: Duration::from_millis(4500),
            access_token_ttl: 600,
        };
        assert_eq!(policy.rotation_safe_at(1000), 1000 + 300 + 5 + SLACK_SECS);
        assert_eq!(
            policy.purge_safe_at(1000, 0),
            1000 + 5 + 600 + 30 + SLACK_SECS
        );
        assert_eq!(
            policy.purge_safe_at(1000, 3600),
            1000 + 5 + 3600 + 30 + SLACK_SECS
        );
    }

    #[test]
    fn rsa_keys_are_replaced_by_keys_that_can_be_generated() {
        assert_eq!(replacement_alg("RS256"), Algorithm::ES256);
        assert_eq!(replacement_alg("EdDSA"), Algorithm::EdDSA);
        assert_eq!(replacement_alg("nonsense"), Algorithm::ES256);
    }
}
