//! The signing keys a running token service uses: the active key opened once into memory, and the
//! JWKS document of every published key, serialized once per change rather than per request.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context;
use axum::body::Bytes;
use keys::{Algorithm, KeyState, MasterKey, SigningKey};

use crate::store::{AuditEvent, SigningKeyRow, Store};

/// A consistent snapshot of the key table.
pub struct KeyRing {
    active: Option<Arc<SigningKey>>,
    jwks_json: Bytes,
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
        let mut states = Vec::new();
        for row in &rows {
            states.push((row.kid.clone(), row.state.clone()));
            let state: KeyState = row
                .state
                .parse()
                .map_err(|_| anyhow::anyhow!("stored key {} has unknown state", row.kid))?;
            let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_str(&row.public_jwk)
                .with_context(|| format!("stored JWK of key {}", row.kid))?;
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
            states,
        })
    }

    pub fn active(&self) -> Option<&Arc<SigningKey>> {
        self.active.as_ref()
    }

    pub fn jwks_json(&self) -> &Bytes {
        &self.jwks_json
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

/// Generates a key and seals its private half for storage.
pub fn new_key_row(alg: Algorithm, master: &MasterKey, now: i64) -> anyhow::Result<SigningKeyRow> {
    let (key, der) = SigningKey::generate(alg)?;
    let sealed = master.seal(&der, key.kid().as_bytes())?;
    Ok(SigningKeyRow {
        kid: key.kid().to_owned(),
        alg: alg.as_str().to_owned(),
        state: KeyState::Active.as_str().to_owned(),
        public_jwk: serde_json::to_string(key.public_jwk())?,
        private_key_sealed: sealed,
        created_at: now,
        activated_at: Some(now),
        retired_at: None,
    })
}

/// Creates the first active key if the database has none. Safe when several instances start at
/// once: the database lets exactly one of them store a key.
pub async fn ensure_active_key(
    db: &Store,
    master: &MasterKey,
    alg: Algorithm,
    now: i64,
) -> anyhow::Result<Option<String>> {
    let row = new_key_row(alg, master, now)?;
    let audit = AuditEvent {
        at: now,
        actor: "server".into(),
        action: "key.create".into(),
        client_id: None,
        source_ip: None,
        detail: serde_json::json!({ "kid": row.kid, "alg": row.alg, "state": "active" }),
    };
    Ok(db
        .activate_new_key(&row, true, &audit)
        .await?
        .then_some(row.kid))
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
    pub async fn refresh(&self, db: &Store, master: &MasterKey) -> anyhow::Result<bool> {
        let mut states = db.signing_key_states().await?;
        states.sort();
        if states == self.get().states {
            return Ok(false);
        }
        self.set(KeyRing::load(db, master).await?);
        Ok(true)
    }

    /// Polls the key table every `interval`, so CLI changes reach a running server within seconds.
    pub fn spawn_reloader(
        &self,
        db: Store,
        master: Arc<MasterKey>,
        interval: Duration,
    ) -> tokio::task::JoinHandle<()> {
        let keys = self.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
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
