//! The signing keys as a running server holds them: [`KeyRing`], the active key opened once and
//! the JWKS of every published key serialized once per change rather than per request, and
//! [`SharedKeys`], the ring a server swaps when the key table changes.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::Context;
use arc_swap::ArcSwap;
use axum::body::Bytes;
use keys::verify::VerifyingKey;
use keys::{KeyState, MasterKey, SigningKey};

use super::MasterKeySource;
use super::lifecycle::open;
use crate::store::Store;

/// A consistent snapshot of the key table.
pub struct KeyRing {
    active: Option<Arc<SigningKey>>,
    jwks_json: Bytes,
    /// Every published key, for verifying our own tokens (introspection, revocation). A revoked
    /// key is no longer here, so its tokens stop verifying at once.
    verifying: HashMap<String, Arc<VerifyingKey>>,
    /// (kid, state) of every stored key: what the reload loop compares to notice changes.
    states: Vec<(String, KeyState)>,
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
            states.push((row.kid.clone(), row.state));
            let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_str(&row.public_jwk)
                .with_context(|| format!("stored JWK of key {}", row.kid))?;
            if let Some(key) = VerifyingKey::from_jwk(&jwk) {
                verifying.insert(key.kid.clone(), Arc::new(key));
            }
            published.push(jwk);
            if row.state == KeyState::Active {
                active = Some(Arc::new(open(row, master)?));
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

/// Shared, swappable key ring of a running server.
#[derive(Clone)]
pub struct SharedKeys {
    current: Arc<ArcSwap<KeyRing>>,
}

impl SharedKeys {
    pub fn new(ring: KeyRing) -> SharedKeys {
        SharedKeys {
            current: Arc::new(ArcSwap::from_pointee(ring)),
        }
    }

    pub fn get(&self) -> Arc<KeyRing> {
        self.current.load_full()
    }

    fn set(&self, ring: KeyRing) {
        self.current.store(Arc::new(ring));
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
}
