//! Storage of the token service: one small function per query, parameters always bound, the
//! same SQL on SQLite and PostgreSQL (see the `storage` crate).

mod audit;
// Its query macros (`client_columns!`, `insert_new_client!`) serve `managed` too.
#[macro_use]
mod clients;
mod keys;
mod managed;
mod refresh;

use sqlx::migrate::Migrator;

pub use audit::{AuditEvent, AuditRecord, CLI_ACTOR};
pub use clients::{
    Client, ClientAuthMethod, ClientUpdate, DECOY_CLIENT_ID, DirectoryEntry, KeySourceUpdate,
    NewCert, NewClient, RegisteredCert,
};
pub use keys::{KeyChange, SigningKeyRow};
pub use managed::{ManagedChange, ManagedClient, ManagedFields};
pub use refresh::{RefreshRow, Spend};
pub(crate) use storage::on_pool;
pub use storage::{Db, is_unique_violation};

/// The token service's store: the database pool with one method per query.
#[derive(Clone, Debug)]
pub struct Store {
    pub(crate) db: Db,
}

static SQLITE: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES: Migrator = sqlx::migrate!("./migrations/postgres");

impl Store {
    /// Connects waiting at most [`storage::DEFAULT_WAIT`] for the database; see
    /// [`Store::connect_waiting`].
    pub async fn connect(url: &str) -> anyhow::Result<Store> {
        Store::connect_waiting(url, storage::DEFAULT_WAIT).await
    }

    /// Connects; a statement waits at most `wait` for a lock or a connection
    /// ([`Db::connect_waiting`]).
    pub async fn connect_waiting(url: &str, wait: std::time::Duration) -> anyhow::Result<Store> {
        Ok(Store {
            db: Db::connect_waiting(url, wait).await?,
        })
    }

    /// [`Store::connect_waiting`] for a long-running service: SQLite's write-ahead log is
    /// checkpointed by the audit writer ([`storage::Checkpoints::ByOwner`]), which sees every
    /// write of a request, between two of its batches about once a second
    /// ([`crate::audit::AuditLog::spawn`]), instead of by whichever commit grows the log past
    /// 1,000 pages, so the requests of a batch never wait for the copy and its `fsync`s.
    pub async fn connect_for_service(
        url: &str,
        wait: std::time::Duration,
    ) -> anyhow::Result<Store> {
        Ok(Store {
            db: Db::connect_checkpointing(url, wait, storage::Checkpoints::ByOwner).await?,
        })
    }

    /// Creates or upgrades the token service's schema.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        self.db.migrate(&SQLITE, &POSTGRES).await
    }

    /// Readiness: the database can be written (see [`Db::probe_write`]).
    pub async fn probe_write(&self) -> anyhow::Result<()> {
        self.db
            .probe_write("UPDATE signing_keys SET state = state WHERE 1 = 0")
            .await
    }

    pub async fn close(&self) {
        self.db.close().await
    }

    /// This database through a connection of its own ([`Db::dedicated`]), for the audit writer.
    pub fn dedicated(&self) -> Store {
        Store {
            db: self.db.dedicated(),
        }
    }

    /// Whether [`Store::checkpoint`] has anything to do (SQLite).
    pub fn has_wal(&self) -> bool {
        self.db.has_wal()
    }

    /// A passive checkpoint of SQLite's write-ahead log ([`Db::checkpoint`]).
    pub async fn checkpoint(&self) -> anyhow::Result<storage::Checkpoint> {
        self.db.checkpoint().await
    }

    /// A checkpoint after which the log starts over, waiting at most `wait` for other
    /// connections ([`Db::restart_log`]).
    pub async fn restart_log(
        &self,
        wait: std::time::Duration,
    ) -> anyhow::Result<storage::Checkpoint> {
        self.db.restart_log(wait).await
    }
}

/// Test helpers for what is in a SQLite database file itself, apart from its write-ahead log.
#[cfg(test)]
pub(crate) mod file_alone {
    use std::path::{Path, PathBuf};

    use super::Store;

    /// A migrated store as a service opens it (checkpoints by the audit writer), on `name` in `dir`.
    pub(crate) async fn service_store(dir: &Path, name: &str) -> (Store, PathBuf) {
        let path = dir.join(name);
        let url = format!("sqlite://{}", path.display());
        let db = Store::connect_for_service(&url, storage::DEFAULT_WAIT)
            .await
            .unwrap();
        db.migrate().await.unwrap();
        (db, path)
    }

    /// A store on a copy of the database file `path` alone, without its write-ahead log, as a
    /// power loss could leave it: it holds what checkpoints have copied back. The copy lives in
    /// the returned directory.
    pub(crate) async fn copy(path: &Path) -> (Store, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let copy = dir.path().join("copy.db");
        std::fs::copy(path, &copy).unwrap();
        let db = Store::connect(&format!("sqlite://{}", copy.display()))
            .await
            .unwrap();
        (db, dir)
    }
}
