//! A database connection chosen by URL alone: SQLite (the embedded default, WAL mode) or
//! PostgreSQL (several instances sharing one database), shared by both services.
//!
//! Both backends run the same SQL (`$n` placeholders work on both). [`Db`] holds a typed pool per
//! backend and [`on_pool!`] expands a query body once for each, which keeps row types plain and
//! avoids sqlx's `Any` driver (no chrono/uuid there).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

/// A connection pool to the configured database.
#[derive(Clone, Debug)]
pub enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to the concrete pool of either backend.
#[macro_export]
macro_rules! on_pool {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::Db::Sqlite($pool) => $body,
            $crate::Db::Postgres($pool) => $body,
        }
    };
}

impl Db {
    /// Connects to `url` (`sqlite://path` or `postgres://...`). A SQLite file is created if missing
    /// and put in WAL mode, so readers never wait for the single writer.
    ///
    /// A SQLite database holds client secret hashes, sealed keys and partner data, so a missing
    /// file is created owner-only (mode 0600) before SQLite opens it, and the database file and
    /// its `-wal` and `-shm` companions are each named in a warning when they are readable by
    /// group or others.
    pub async fn connect(url: &str) -> anyhow::Result<Db> {
        if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)
                .context("the database URL is not a valid SQLite URL")?;
            let file = sqlite_file(url, &options);
            if let Some(path) = &file {
                // SQLite would create the file with the process's umask (typically 0644). It
                // creates `-wal` and `-shm` with the permissions of the database file, so making
                // the database file owner-only here makes all three owner-only.
                owner_only::create_if_missing(path).with_context(|| {
                    format!("cannot create the SQLite database {}", path.display())
                })?;
            }
            let options = options
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(5));
            let pool = SqlitePoolOptions::new()
                .max_connections(4)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(options)
                .await
                .context("cannot open the SQLite database")?;
            // Checked once connected, when the `-wal` and `-shm` files exist too: a file left
            // loose by an earlier run, or copied in with lax permissions, is reported by name.
            if let Some(path) = &file {
                for loose in owner_only::loose_files(sqlite_files(path)) {
                    tracing::warn!(
                        path = %loose.display(),
                        "database file is readable or writable by group or others; run chmod 600 on it"
                    );
                }
            }
            Ok(Db::Sqlite(pool))
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let options = PgConnectOptions::from_str(url)
                .context("the database URL is not a valid PostgreSQL URL")?;
            let pool = PgPoolOptions::new()
                .max_connections(10)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(options)
                .await
                .context("cannot connect to PostgreSQL")?;
            Ok(Db::Postgres(pool))
        } else {
            anyhow::bail!("unsupported database URL: use sqlite://PATH or postgres://...")
        }
    }

    /// Applies the embedded migrations of the backend in use.
    pub async fn migrate(&self, sqlite: &Migrator, postgres: &Migrator) -> anyhow::Result<()> {
        match self {
            Db::Sqlite(pool) => sqlite.run(pool).await,
            Db::Postgres(pool) => postgres.run(pool).await,
        }
        .context("database migration failed")
    }

    /// Readiness probe: one round trip to the database.
    pub async fn ping(&self) -> anyhow::Result<()> {
        on_pool!(self, pool => {
            sqlx::query("SELECT 1").execute(pool).await?;
        });
        Ok(())
    }

    pub async fn close(&self) {
        on_pool!(self, pool => pool.close().await)
    }
}

/// The file a SQLite URL names, or `None` for an in-memory or temporary database, which has no
/// file of its own to protect.
fn sqlite_file(url: &str, options: &SqliteConnectOptions) -> Option<PathBuf> {
    let rest = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let (database, params) = rest.split_once('?').unwrap_or((rest, ""));
    let in_memory = database.is_empty()
        || database == ":memory:"
        || params.split('&').any(|param| param == "mode=memory");
    (!in_memory).then(|| options.get_filename().to_owned())
}

/// A SQLite database file and its write-ahead log and shared-memory index, which hold the same
/// data (the log holds recent writes until a checkpoint copies them into the database).
fn sqlite_files(database: &Path) -> [PathBuf; 3] {
    let companion = |suffix: &str| {
        let mut name = OsString::from(database.as_os_str());
        name.push(suffix);
        PathBuf::from(name)
    };
    [database.to_owned(), companion("-wal"), companion("-shm")]
}

/// Unique-constraint violations are expected outcomes in a few places; the rest are unexpected.
pub fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}

#[cfg(all(test, unix))]
mod tests {
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    /// The permission bits of `path` in octal, as `ls -l` and `chmod` speak of them.
    fn mode(path: &Path) -> String {
        let metadata = fs::metadata(path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
        format!("{:o}", metadata.permissions().mode() & 0o777)
    }

    /// Connects to `path`, writes a row (so the write-ahead log is in use) and returns the pool,
    /// still open: SQLite removes `-wal` and `-shm` when the last connection closes.
    async fn connect_and_write(path: &Path) -> Db {
        let db = Db::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        on_pool!(&db, pool => {
            sqlx::query("CREATE TABLE t (x INTEGER)").execute(pool).await.unwrap();
            sqlx::query("INSERT INTO t VALUES (1)").execute(pool).await.unwrap();
        });
        db
    }

    #[tokio::test]
    async fn a_new_database_and_its_wal_and_shm_are_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fresh.db");
        let db = connect_and_write(&path).await;
        for file in sqlite_files(&path) {
            assert_eq!(mode(&file), "600", "{}", file.display());
        }
        db.close().await;
    }

    /// The creation above relies on SQLite giving `-wal` and `-shm` the permissions of the
    /// database file (its unix VFS copies them, whatever the umask); this checks that claim
    /// with a mode that neither the umask nor our own creation would produce.
    #[tokio::test]
    async fn sqlite_gives_wal_and_shm_the_permissions_of_the_database_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("existing.db");
        fs::write(&path, b"").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        let db = connect_and_write(&path).await;
        for file in sqlite_files(&path) {
            assert_eq!(mode(&file), "640", "{}", file.display());
        }
        db.close().await;
    }

    #[test]
    fn in_memory_databases_have_no_file() {
        for url in [
            "sqlite::memory:",
            "sqlite://:memory:",
            "sqlite://?mode=memory",
            "sqlite://data.db?mode=memory&cache=shared",
            "sqlite://",
        ] {
            let options = SqliteConnectOptions::from_str(url).unwrap();
            assert_eq!(sqlite_file(url, &options), None, "{url}");
        }
        let url = "sqlite://dir/auth.db?mode=rwc";
        let options = SqliteConnectOptions::from_str(url).unwrap();
        assert_eq!(
            sqlite_file(url, &options),
            Some(PathBuf::from("dir/auth.db"))
        );
        assert_eq!(
            sqlite_files(Path::new("dir/auth.db")),
            ["dir/auth.db", "dir/auth.db-wal", "dir/auth.db-shm"].map(PathBuf::from)
        );
    }
}
