//! The master key of a running server, re-read from its file when it no longer opens the stored
//! keys, so that an operator who rewraps the keys (or starts over after losing the master key)
//! and replaces the file keeps running servers working.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use keys::MasterKey;

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

    /// Re-reads the file.
    pub(crate) fn reload(&self) -> anyhow::Result<()> {
        let key = Arc::new(MasterKey::load(&self.path)?);
        match self.current.write() {
            Ok(mut guard) => *guard = key,
            Err(poisoned) => *poisoned.into_inner() = key,
        }
        Ok(())
    }
}
