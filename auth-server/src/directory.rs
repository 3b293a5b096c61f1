//! The clients, in memory: authentication at the token endpoint reads no database row.
//!
//! The whole table is loaded (it holds tens of clients, and stays small at 100,000), then
//! reloaded whenever `client_generation` moves, which triggers on `clients` and `client_secrets`
//! make every writer do, the CLI and other instances included. The server checks it every key
//! reload interval, and at once after any failed authentication, so a new client or a new secret
//! works at its first request; a disabled client or a withdrawn secret stops working within the
//! reload interval (default 5 s).
//!
//! API keys are found by their keyed hash (`crate::api_key`), in a map of their own that holds
//! only `api_key` clients' keys.
//!
//! Known and unknown client ids cost the same: one map lookup, a client copied (the decoy's for
//! an unknown id, see migration 0006) and the same constant-time hash comparison.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use subtle::ConstantTimeEq;

use crate::store::{Client, ClientAuthMethod, DECOY_CLIENT_ID, DirectoryEntry, Store};

struct Snapshot {
    generation: i64,
    clients: HashMap<String, Arc<DirectoryEntry>>,
    decoy: Option<Arc<DirectoryEntry>>,
    /// `api_key` clients by the keyed hash of each of their keys (an API key names no client).
    api_keys: HashMap<Vec<u8>, Arc<DirectoryEntry>>,
}

/// Cheap to clone; every clone shares the snapshot.
#[derive(Clone)]
pub struct ClientDirectory {
    current: Arc<ArcSwap<Snapshot>>,
    /// Serializes reloads, so a burst of failures causes one.
    reload: Arc<tokio::sync::Mutex<()>>,
}

impl ClientDirectory {
    pub async fn load(db: &Store) -> anyhow::Result<ClientDirectory> {
        let snapshot = read(db).await?;
        Ok(ClientDirectory {
            current: Arc::new(ArcSwap::from_pointee(snapshot)),
            reload: Arc::new(tokio::sync::Mutex::new(())),
        })
    }

    fn snapshot(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// Reloads if the database's generation has moved; true if it did.
    pub async fn refresh(&self, db: &Store) -> anyhow::Result<bool> {
        let _one_at_a_time = self.reload.lock().await;
        let generation = db.client_generation().await?;
        if generation == self.snapshot().generation {
            return Ok(false);
        }
        let snapshot = read(db).await?;
        self.current.store(Arc::new(snapshot));
        Ok(true)
    }

    /// The same contract as the database lookup it replaces: the client (`None` for an unknown
    /// id) and up to two live secret hashes, the decoy's for an unknown id.
    pub fn for_auth(&self, client_id: &str, now: i64) -> (Option<Client>, Vec<Vec<u8>>) {
        let snapshot = self.snapshot();
        let found = snapshot
            .clients
            .get(client_id)
            .filter(|_| client_id != DECOY_CLIENT_ID);
        let known = found.is_some();
        let Some(entry) = found.or(snapshot.decoy.as_ref()) else {
            return (None, Vec::new());
        };
        let client = entry.client.clone();
        let hashes = entry
            .secrets
            .iter()
            .filter(|(_, expires_at)| expires_at.is_none_or(|at| at > now))
            .take(2)
            .map(|(hash, _)| hash.clone())
            .collect();
        (known.then_some(client), hashes)
    }

    /// The `api_key` client holding a live key with this keyed hash, and when that key stops
    /// working (`None`: not before a rotation); `None` for no such key, an expired one, or a key
    /// of another kind of client (a secret's hash is never in this map).
    pub fn by_api_key(&self, hash: &[u8], now: i64) -> Option<(Client, Option<i64>)> {
        let snapshot = self.snapshot();
        // Found by the keyed hash (a map lookup reveals nothing usable: an HMAC under our hash
        // key), then compared in constant time with every hash the client holds.
        let entry = snapshot.api_keys.get(hash)?;
        let (_, expires_at) = entry
            .secrets
            .iter()
            .find(|(stored, _)| bool::from(stored.as_slice().ct_eq(hash)))?;
        if expires_at.is_some_and(|at| at <= now) {
            return None;
        }
        Some((entry.client.clone(), *expires_at))
    }

    /// A known client's entry (never the decoy's), for the certificate and assertion methods,
    /// whose checks hold no secret to compare.
    pub fn entry(&self, client_id: &str) -> Option<Arc<DirectoryEntry>> {
        if client_id == DECOY_CLIENT_ID {
            return None;
        }
        self.snapshot().clients.get(client_id).cloned()
    }

    /// Keeps the directory current: checks the generation every `interval`.
    pub fn spawn_refresher(&self, db: Store, interval: std::time::Duration) {
        let directory = self.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                match directory.refresh(&db).await {
                    Ok(true) => tracing::debug!("clients reloaded"),
                    Ok(false) => {}
                    Err(err) => {
                        tracing::warn!(error = %err, "client reload failed; keeping the current clients")
                    }
                }
            }
        });
    }
}

async fn read(db: &Store) -> anyhow::Result<Snapshot> {
    // The generation first: a change landing between the two reads moves it again, and the next
    // check reloads.
    let generation = db.client_generation().await?;
    let entries = db.clients_for_directory(crate::now()).await?;
    let mut clients = HashMap::with_capacity(entries.len());
    let mut api_keys = HashMap::new();
    for entry in entries {
        let entry = Arc::new(entry);
        if entry.client.auth_method == ClientAuthMethod::ApiKey {
            for (hash, _) in &entry.secrets {
                api_keys.insert(hash.clone(), entry.clone());
            }
        }
        clients.insert(entry.client.client_id.as_str().to_owned(), entry);
    }
    let decoy = clients.get(DECOY_CLIENT_ID).cloned();
    Ok(Snapshot {
        generation,
        clients,
        decoy,
        api_keys,
    })
}
