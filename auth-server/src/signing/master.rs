//! The master key of a running server, re-read from its file when it no longer opens the stored
//! keys, so that an operator who rewraps the keys (or starts over after losing the master key)
//! and replaces the file keeps running servers working. A key given in `AUTH_MASTER_KEY` has no
//! file: it changes with the environment, that is with a new deployment.

use std::path::PathBuf;
use std::sync::Arc;

use arc_swap::ArcSwap;

use keys::MasterKey;

pub struct MasterKeySource {
    path: Option<PathBuf>,
    current: ArcSwap<MasterKey>,
}

impl MasterKeySource {
    /// `path`: the file to re-read, if the key came from one.
    pub fn new(path: Option<PathBuf>, key: MasterKey) -> MasterKeySource {
        MasterKeySource {
            path,
            current: ArcSwap::from_pointee(key),
        }
    }

    pub fn get(&self) -> Arc<MasterKey> {
        self.current.load_full()
    }

    /// Re-reads the file (nothing to do for a key from the environment).
    pub(crate) fn reload(&self) -> anyhow::Result<()> {
        if let Some(path) = &self.path {
            self.current.store(Arc::new(MasterKey::load(path)?));
        }
        Ok(())
    }
}
