//! Every step of a signing key's life, for the server (bootstrap, scheduled rotation, purge) and
//! the admin CLI (rotate, revoke, purge, rewrap, import, recover). Each step reads the key table,
//! decides, and applies a list of conditional [`KeyChange`]s with its audit event in one
//! transaction; if another instance or admin changed the keys meanwhile, nothing is applied.

use std::time::Duration;

use anyhow::Context;
use keys::{Algorithm, KeyState, MasterKey, SealedHashKey, SealedKey, SigningKey};

use super::KeyPolicy;
use crate::store::{AuditEvent, CLI_ACTOR, KeyChange, SigningKeyRow, Store};

/// Opens a stored key for signing. The kid is the AEAD associated data, so a sealed key copied
/// onto another row does not open.
pub(crate) fn open(row: &SigningKeyRow, master: &MasterKey) -> anyhow::Result<SigningKey> {
    row.sealed().open(master).map_err(|err| match err {
        keys::KeyError::WrongMasterKey => anyhow::anyhow!(
            "the master key cannot open signing key {}: AUTH_MASTER_KEY_FILE is not the key this database was created with \
             (if that key is lost, see \"Lost master key\" in docs/RUNBOOK.md)",
            row.kid
        ),
        other => anyhow::anyhow!("signing key {} cannot be used: {other}", row.kid),
    })
}

/// Generates a key and seals it for storage in `state`.
fn new_key(
    alg: Algorithm,
    state: KeyState,
    master: &MasterKey,
    now: i64,
) -> anyhow::Result<SigningKeyRow> {
    let (key, sealed) = SealedKey::generate(alg, master)?;
    SigningKeyRow::new(&key, &sealed, state, now)
}

/// The algorithm a new key has when nobody asked for one: that of the pending key (the next to
/// sign), else of the active key, else ES256 (a first start). So a deployment keeps its algorithm
/// through every rotation, scheduled or not, until an admin asks for another: an RS256 one, for
/// verifiers that accept only RSA, stays RS256.
pub fn continued_alg(rows: &[SigningKeyRow]) -> Algorithm {
    find(rows, KeyState::Pending)
        .or_else(|| find(rows, KeyState::Active))
        .map_or(Algorithm::ES256, |row| row.alg)
}

fn find(rows: &[SigningKeyRow], state: KeyState) -> Option<&SigningKeyRow> {
    rows.iter().find(|r| r.state == state)
}

/// Makes sure an active and a pending key exist: on a first start both are created, on a database
/// from before pending keys existed a pending key is added. Safe when several instances start at
/// once: the database lets exactly one of them store each key. Returns the kids created.
pub async fn bootstrap(db: &Store, master: &MasterKey, now: i64) -> anyhow::Result<Vec<String>> {
    let rows = db.list_signing_keys().await?;
    let alg = continued_alg(&rows);
    let mut created = Vec::new();
    if find(&rows, KeyState::Active).is_none() {
        let active = new_key(alg, KeyState::Active, master, now)?;
        let pending = new_key(alg, KeyState::Pending, master, now)?;
        let audit = AuditEvent::new(
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
    } else if find(&rows, KeyState::Pending).is_none() {
        let pending = new_key(alg, KeyState::Pending, master, now)?;
        let audit = AuditEvent::new(
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
        "too early: pending key {pending} was published at {published} and verifiers may not have it before {safe} \
         (in {wait} s: AUTH_JWKS_CACHE_HORIZON after publication); rotate then, or use --force (tokens it signs may be refused until every verifier refreshes its JWKS)"
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
    /// The algorithm of the new pending key.
    pub alg: Algorithm,
}

fn timestamp(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0).map_or_else(|| unix.to_string(), |t| t.to_rfc3339())
}

/// The key a rotation makes active.
enum NextActive<'a> {
    /// The pending key, which every resource API has cached.
    Promote(&'a SigningKeyRow),
    /// A key made now (a forced rotation with no pending key).
    Fresh(SigningKeyRow),
}

/// Rotates: the pending key becomes active, the active key is retired (still published), and a
/// new pending key of `alg` is created (`None`: [`continued_alg`]). Refused while the pending key
/// may be missing from verifiers' caches, unless `force`.
pub(crate) async fn rotate(
    db: &Store,
    master: &MasterKey,
    policy: &KeyPolicy,
    alg: Option<Algorithm>,
    force: bool,
    actor: &str,
    now: i64,
) -> anyhow::Result<Result<Rotation, RotationRefused>> {
    let rows = db.list_signing_keys().await?;
    let alg = alg.unwrap_or_else(|| continued_alg(&rows));
    let active = find(&rows, KeyState::Active);
    // Either the pending key is promoted, or (forced, with no pending key) a fresh key is made
    // active at once. Keys are generated only once the rotation is going ahead: an RSA key takes
    // a noticeable moment.
    let next = match find(&rows, KeyState::Pending) {
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
            open(pending, master)?;
            NextActive::Promote(pending)
        }
        None if force => NextActive::Fresh(new_key(alg, KeyState::Active, master, now)?),
        None => return Ok(Err(RotationRefused::NoPending)),
    };
    let new_pending = new_key(alg, KeyState::Pending, master, now)?;
    let mut changes = Vec::new();
    if let Some(active) = active {
        changes.push(KeyChange::Retire(&active.kid));
    }
    let new_active = match &next {
        NextActive::Promote(pending) => {
            changes.push(KeyChange::Activate(&pending.kid));
            pending.kid.clone()
        }
        NextActive::Fresh(row) => {
            changes.push(KeyChange::Insert(row));
            row.kid.clone()
        }
    };
    changes.push(KeyChange::Insert(&new_pending));
    let rotation = Rotation {
        active: new_active,
        pending: new_pending.kid.clone(),
        retired: active.map(|a| a.kid.clone()),
        alg,
    };
    let audit = AuditEvent::new(
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

/// Routine rotation from the CLI: the pending key becomes active, the active key is retired
/// (published until its tokens expire), and a new pending key of `alg` is made (`None`: the
/// algorithm the keys have now, [`continued_alg`]). Refused with a one-line explanation while
/// verifiers may not have the pending key yet, unless `force`.
pub async fn rotate_key(
    db: &Store,
    master: &MasterKey,
    policy: &KeyPolicy,
    alg: Option<Algorithm>,
    force: bool,
) -> anyhow::Result<Rotation> {
    Ok(rotate(db, master, policy, alg, force, CLI_ACTOR, crate::now()).await??)
}

/// Rotates if the active key has been active for `interval` and the pending key is safe to
/// promote, keeping the algorithm ([`continued_alg`]). Several instances may all decide to; the
/// transaction lets exactly one succeed.
pub(crate) async fn scheduled_rotation(
    db: &Store,
    master: &MasterKey,
    policy: &KeyPolicy,
    interval: Duration,
) -> anyhow::Result<()> {
    let now = crate::now();
    let rows = db.list_signing_keys().await?;
    let due = find(&rows, KeyState::Active)
        .is_some_and(|a| a.activated_at.unwrap_or(a.created_at) + interval.as_secs() as i64 <= now);
    if !due {
        return Ok(());
    }
    match rotate(db, master, policy, None, false, "server (scheduled)", now).await? {
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

/// What an emergency revocation did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Revocation {
    pub revoked: String,
    pub was: KeyState,
    /// The key that signs now, if the revoked key was the active one.
    pub active: Option<String>,
    /// The new pending key, if one was made.
    pub pending: Option<String>,
}

/// Emergency revocation: the key is unpublished at once. If it was active, the pending key is
/// promoted (or, if there is none, a new key of its algorithm made active) and a new pending key
/// of its algorithm made; if it was pending, a new pending key replaces it. Tokens it signed stop
/// verifying at every verifier when it next refreshes its JWKS: within the max-age at our
/// resource APIs, within the cache horizon at any verifier.
pub async fn revoke_key(db: &Store, master: &MasterKey, kid: &str) -> anyhow::Result<Revocation> {
    let now = crate::now();
    let rows = db.list_signing_keys().await?;
    let target = rows.iter().find(|r| r.kid == kid).ok_or_else(|| {
        anyhow::anyhow!("no signing key with kid {kid} (see `auth-server keys list`)")
    })?;
    let alg = target.alg;
    let mut changes = vec![KeyChange::Delete(&target.kid)];
    let mut revocation = Revocation {
        revoked: target.kid.clone(),
        was: target.state,
        active: None,
        pending: None,
    };
    let mut fresh_active = None;
    if target.state == KeyState::Active {
        match find(&rows, KeyState::Pending) {
            Some(pending) => {
                open(pending, master)?;
                changes.push(KeyChange::Activate(&pending.kid));
                revocation.active = Some(pending.kid.clone());
            }
            None => fresh_active = Some(new_key(alg, KeyState::Active, master, now)?),
        }
    }
    if let Some(row) = &fresh_active {
        changes.push(KeyChange::Insert(row));
        revocation.active = Some(row.kid.clone());
    }
    // A revoked active or pending key leaves the pending slot empty: fill it.
    let new_pending = match target.state {
        KeyState::Active | KeyState::Pending => Some(new_key(alg, KeyState::Pending, master, now)?),
        KeyState::Retired => None,
    };
    if let Some(row) = &new_pending {
        changes.push(KeyChange::Insert(row));
        revocation.pending = Some(row.kid.clone());
    }
    let audit = AuditEvent::new(CLI_ACTOR, "key.revoke", now, serde_json::json!(revocation));
    anyhow::ensure!(
        db.apply_key_changes(&changes, &audit).await?,
        "the signing keys changed while revoking; nothing was changed, try again"
    );
    Ok(revocation)
}

/// Deletes retired keys whose tokens have all expired. Returns the kids purged.
pub(crate) async fn purge(
    db: &Store,
    policy: &KeyPolicy,
    actor: &str,
    now: i64,
) -> anyhow::Result<Vec<String>> {
    let rows = db.list_signing_keys().await?;
    let retired: Vec<&SigningKeyRow> = rows
        .iter()
        .filter(|r| r.state == KeyState::Retired)
        .collect();
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
    let audit = AuditEvent::new(
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

/// What `keys purge` did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Purge {
    pub purged: Vec<String>,
    /// When the next retired key becomes purgeable, if any remain.
    pub next_purge_at: Option<i64>,
}

/// Drops retired keys whose tokens have all expired, from the CLI.
pub async fn purge_keys(db: &Store, policy: &KeyPolicy) -> anyhow::Result<Purge> {
    let purged = purge(db, policy, CLI_ACTOR, crate::now()).await?;
    let rows = db.list_signing_keys().await?;
    let longest = db.longest_client_ttl().await?.unwrap_or(0);
    let next_purge_at = rows
        .iter()
        .filter(|r| r.state == KeyState::Retired)
        .map(|r| policy.purge_safe_at(r.retired_at.unwrap_or(r.created_at), longest))
        .min();
    Ok(Purge {
        purged,
        next_purge_at,
    })
}

/// Master-key rotation: re-seals every private key under `new` in one transaction. The active and
/// pending keys must open under `current` first, so a wrong current key changes nothing. A
/// retired key that `current` cannot open is left as it is: it never signs again, and it is one
/// sealed under a master key that was lost (see [`recover_lost_master_key`]) until it is purged.
/// Returns the number of keys re-sealed.
pub async fn rewrap_keys(
    db: &Store,
    current: &MasterKey,
    new: &MasterKey,
) -> anyhow::Result<usize> {
    let rows = db.list_signing_keys().await?;
    let mut resealed = Vec::with_capacity(rows.len());
    for row in &rows {
        match row.sealed().rewrap(current, new) {
            Ok(sealed) => resealed.push(sealed),
            Err(_) if row.state == KeyState::Retired => {}
            Err(_) => anyhow::bail!(
                "the current master key cannot open signing key {}; nothing was changed",
                row.kid
            ),
        }
    }
    // The hash keys (API-key hashes) too, in the same transaction: they must open under
    // `current`, or every API key would stop working.
    let mut hash_keys = Vec::new();
    for sealed in db.hash_keys().await? {
        hash_keys.push(sealed.rewrap(current, new).with_context(|| {
            format!(
                "the current master key cannot open hash key {}; nothing was changed",
                sealed.id()
            )
        })?);
    }
    let changes: Vec<KeyChange> = resealed
        .iter()
        .map(KeyChange::Reseal)
        .chain(hash_keys.iter().map(KeyChange::ResealHashKey))
        .collect();
    let kids: Vec<&str> = resealed.iter().map(SealedKey::kid).collect();
    let hash_key_ids: Vec<&str> = hash_keys.iter().map(SealedHashKey::id).collect();
    let audit = AuditEvent::new(
        CLI_ACTOR,
        "key.rewrap",
        crate::now(),
        serde_json::json!({ "kids": kids, "hash_keys": hash_key_ids }),
    );
    anyhow::ensure!(
        db.apply_key_changes(&changes, &audit).await?,
        "the signing keys changed while rewrapping; nothing was changed, try again"
    );
    for row in db.list_signing_keys().await? {
        if row.state != KeyState::Retired {
            open(&row, new).with_context(|| {
                format!("key {} was added during the rewrap and is still under the old master key; run rewrap again", row.kid)
            })?;
        }
    }
    for sealed in db.hash_keys().await? {
        sealed.open(new).with_context(|| {
            format!("hash key {} was added during the rewrap and is still under the old master key; run rewrap again", sealed.id())
        })?;
    }
    Ok(resealed.len())
}

/// Imports a private key (PKCS#8 PEM) as the pending key, replacing any pending key (which has
/// never signed). It becomes active at the next rotation: how a key made elsewhere arrives (an
/// RSA key larger than the 2048 bits `keys rotate --alg RS256` generates, for instance).
pub async fn import_key(
    db: &Store,
    master: &MasterKey,
    alg: Algorithm,
    pem: &str,
) -> anyhow::Result<String> {
    let now = crate::now();
    let (key, sealed) = SealedKey::import_pem(alg, pem, master)?;
    let row = SigningKeyRow::new(&key, &sealed, KeyState::Pending, now)?;
    let rows = db.list_signing_keys().await?;
    anyhow::ensure!(
        !rows.iter().any(|r| r.kid == row.kid),
        "key {} is already stored",
        row.kid
    );
    let mut changes = Vec::new();
    let replaced = find(&rows, KeyState::Pending);
    if let Some(old) = replaced {
        changes.push(KeyChange::Delete(&old.kid));
    }
    changes.push(KeyChange::Insert(&row));
    let audit = AuditEvent::new(
        CLI_ACTOR,
        "key.import",
        now,
        serde_json::json!({ "kid": row.kid, "alg": row.alg, "replaced_pending": replaced.map(|r| &r.kid) }),
    );
    anyhow::ensure!(
        db.apply_key_changes(&changes, &audit).await?,
        "the signing keys changed while importing; nothing was changed, try again"
    );
    Ok(row.kid)
}

/// The fresh start after the master key was lost (`keys rotate --force` with a master key file
/// that had to be created): no stored private key can be opened any more, so a new active and a
/// new pending key of `alg` (`None`: [`continued_alg`]) are made under `master`. The old active key is retired, so the
/// tokens it signed keep verifying until they expire and it is purged; the old pending key,
/// which never signed, is deleted. Refused if `master` opens the active or pending key: then the
/// master key is not lost, and a routine or forced rotation is what is wanted.
pub async fn recover_lost_master_key(
    db: &Store,
    master: &MasterKey,
    alg: Option<Algorithm>,
) -> anyhow::Result<Rotation> {
    let now = crate::now();
    let rows = db.list_signing_keys().await?;
    let alg = alg.unwrap_or_else(|| continued_alg(&rows));
    let active = find(&rows, KeyState::Active);
    let pending = find(&rows, KeyState::Pending);
    if let Some(opens) = [active, pending]
        .into_iter()
        .flatten()
        .find(|row| row.sealed().open(master).is_ok())
    {
        anyhow::bail!(
            "this master key opens signing key {}: it is not a new master key, so nothing was changed",
            opens.kid
        );
    }
    let fresh_active = new_key(alg, KeyState::Active, master, now)?;
    let fresh_pending = new_key(alg, KeyState::Pending, master, now)?;
    let mut changes = Vec::new();
    if let Some(active) = active {
        changes.push(KeyChange::Retire(&active.kid));
    }
    if let Some(pending) = pending {
        changes.push(KeyChange::Delete(&pending.kid));
    }
    changes.push(KeyChange::Insert(&fresh_active));
    changes.push(KeyChange::Insert(&fresh_pending));
    // The API-key hash key was sealed under the lost master key too: it is dropped (a fresh one
    // is made at the next start), so every API key stops working and is issued anew with
    // `client rotate-secret`.
    let hash_keys: Vec<String> = db
        .hash_keys()
        .await?
        .iter()
        .filter(|sealed| sealed.open(master).is_err())
        .map(|sealed| sealed.id().to_owned())
        .collect();
    changes.extend(hash_keys.iter().map(|id| KeyChange::DeleteHashKey(id)));
    let rotation = Rotation {
        active: fresh_active.kid.clone(),
        pending: fresh_pending.kid.clone(),
        retired: active.map(|a| a.kid.clone()),
        alg,
    };
    let audit = AuditEvent::new(
        CLI_ACTOR,
        "key.recover",
        now,
        serde_json::json!({
            "rotation": rotation,
            "deleted_pending": pending.map(|p| &p.kid),
            "deleted_hash_keys": hash_keys,
            "reason": "new master key",
        }),
    );
    anyhow::ensure!(
        db.apply_key_changes(&changes, &audit).await?,
        "the signing keys changed while recovering; nothing was changed, try again"
    );
    Ok(rotation)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(kid: &str, alg: Algorithm, state: KeyState) -> SigningKeyRow {
        SigningKeyRow {
            kid: kid.to_owned(),
            alg,
            state,
            public_jwk: String::new(),
            private_key_sealed: Vec::new(),
            created_at: 0,
            activated_at: None,
            retired_at: None,
        }
    }

    #[test]
    fn new_keys_continue_the_algorithm_of_the_pending_then_the_active_key() {
        use Algorithm::{ES256, EdDSA, RS256};
        use KeyState::{Active, Pending, Retired};
        assert_eq!(continued_alg(&[]), ES256, "a first start");
        // An RS256 deployment stays RS256, whatever its retired keys were.
        let rsa = [
            row("old", ES256, Retired),
            row("a", RS256, Active),
            row("p", RS256, Pending),
        ];
        assert_eq!(continued_alg(&rsa), RS256);
        // The pending key is the next to sign: its algorithm is the one being moved to.
        let moving = [row("a", ES256, Active), row("p", RS256, Pending)];
        assert_eq!(continued_alg(&moving), RS256);
        // Without a pending key (it was revoked), the active key's.
        assert_eq!(continued_alg(&[row("a", EdDSA, Active)]), EdDSA);
        assert_eq!(continued_alg(&[row("r", RS256, Retired)]), ES256);
    }
}
