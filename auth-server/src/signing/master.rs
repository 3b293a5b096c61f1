//! The master key of a running server, re-read from its file when it no longer opens the stored
//! keys, so that an operator who rewraps the keys (or starts over after losing the master key)
//! and replaces the file keeps running servers working.

use std::path::PathBuf;
use std::sync::Arc;

use arc_swap::ArcSwap;

use keys::MasterKey;

pub struct MasterKeySource {
    path: PathBuf,
    current: ArcSwap<MasterKey>,
}

impl MasterKeySource {
    pub fn new(path: PathBuf, key: MasterKey) -> MasterKeySource {
        MasterKeySource {
            path,
            current: ArcSwap::from_pointee(key),
        }
    }

    pub fn get(&self) -> Arc<MasterKey> {
        self.current.load_full()
    }

    /// Re-reads the file.
    pub(crate) fn reload(&self) -> anyhow::Result<()> {
        self.current.store(Arc::new(MasterKey::load(&self.path)?));
        Ok(())
    }
}
