//! A database connection chosen by URL alone: SQLite (the embedded default, WAL mode) or
//! PostgreSQL (several instances sharing one database), shared by both services.
//!
//! Both backends run the same SQL (`$n` placeholders work on both). [`Db`] holds a typed pool per
//! backend and [`on_pool!`] expands a query body once for each, which keeps row types plain and
//! avoids sqlx's `Any` driver (no chrono/uuid there).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use sqlx::error::DatabaseError;
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

/// Who copies SQLite's write-ahead log back into the database file (a checkpoint).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Checkpoints {
    /// SQLite, in the connection whose commit grows the log past 1,000 pages: that commit
    /// waits for the copy and its `fsync`s. Right for short-lived processes such as the CLI.
    Automatic,
    /// The owner of the pool, at moments it chooses, by calling [`Db::checkpoint`] (the token
    /// service's audit writer, between two batches, about once a second while it writes).
    /// After a burst that outran the checkpoints, the log file is cut back to
    /// [`JOURNAL_SIZE_LIMIT`] when it starts over. PostgreSQL checkpoints by itself either way.
    ByOwner,
}

/// What SQLite's write-ahead log file is cut back to when it starts over after a complete
/// checkpoint, with [`Checkpoints::ByOwner`]: a burst of writes that outran the checkpoints
/// leaves no larger file behind.
pub const JOURNAL_SIZE_LIMIT: u64 = 64 * 1024 * 1024;

/// What a [`Db::checkpoint`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// Frames in the write-ahead log.
    pub log_frames: i64,
    /// Frames of the log now in the database file.
    pub copied_frames: i64,
    /// A [`Db::restart_log`] that gave up waiting for a writer or a reader.
    pub gave_up: bool,
}

impl Checkpoint {
    /// Whether the whole log is in the database file, so that the next write starts the log
    /// over from its beginning (unless a reader that began earlier is still reading it).
    pub fn complete(&self) -> bool {
        !self.gave_up && self.copied_frames >= self.log_frames
    }
}

/// How long a request waits for the database by default (`AUTH_DATABASE_WAIT`,
/// `RESOURCE_DATABASE_WAIT`): for a lock, SQLite's busy timeout, or a connection from the pool.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(2);

impl Db {
    /// Connects to `url` waiting at most [`DEFAULT_WAIT`] for locks and connections; see
    /// [`Db::connect_waiting`].
    pub async fn connect(url: &str) -> anyhow::Result<Db> {
        Db::connect_waiting(url, DEFAULT_WAIT).await
    }

    /// Connects to `url` (`sqlite://path` or `postgres://...`). A SQLite file is created if missing
    /// and put in WAL mode, so readers never wait for the single writer.
    ///
    /// `wait` bounds each wait of a statement: for a connection from the pool, for SQLite's
    /// write lock (its busy timeout), for a PostgreSQL lock (`lock_timeout`). A wait that runs
    /// out is an error that [`unavailable`] recognises, answered 503 rather than 500.
    ///
    /// A connection opened before the latest fault [`unavailable`] saw (a read-only or closed
    /// database, an I/O error) is not handed out again but replaced, so a fault that is fixed
    /// heals by itself: SQLite opens a file it cannot write read-only and keeps it so, and a
    /// PostgreSQL session keeps the `default_transaction_read_only` it started with.
    ///
    /// A SQLite database holds client secret hashes, sealed keys and partner data, so a missing
    /// file is created owner-only (mode 0600) before SQLite opens it, and the database file and
    /// its `-wal` and `-shm` companions are each named in a warning when they are readable by
    /// group or others.
    pub async fn connect_waiting(url: &str, wait: Duration) -> anyhow::Result<Db> {
        Db::connect_checkpointing(url, wait, Checkpoints::Automatic).await
    }

    /// [`Db::connect_waiting`], with SQLite's checkpoints left to the caller when
    /// `checkpoints` is [`Checkpoints::ByOwner`].
    pub async fn connect_checkpointing(
        url: &str,
        wait: Duration,
        checkpoints: Checkpoints,
    ) -> anyhow::Result<Db> {
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
                .busy_timeout(wait);
            // A setting of each connection: 0 turns the automatic checkpoint off.
            let options = match checkpoints {
                Checkpoints::Automatic => options,
                Checkpoints::ByOwner => options
                    .pragma("wal_autocheckpoint", "0")
                    .pragma("journal_size_limit", JOURNAL_SIZE_LIMIT.to_string()),
            };
            let pool = sqlite_pool(4, wait)
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
            let lock_timeout = format!("{}ms", wait.as_millis().max(1));
            let options = PgConnectOptions::from_str(url)
                .context("the database URL is not a valid PostgreSQL URL")?
                .options([("lock_timeout", lock_timeout.as_str())]);
            let pool = PgPoolOptions::new()
                .max_connections(10)
                .acquire_timeout(wait)
                .before_acquire(|_, meta| Box::pin(async move { Ok(!opened_before_fault(meta)) }))
                .connect_with(options)
                .await
                .context("cannot connect to PostgreSQL")?;
            Ok(Db::Postgres(pool))
        } else {
            anyhow::bail!("unsupported database URL: use sqlite://PATH or postgres://...")
        }
    }

    /// A pool of one connection to the same SQLite database, with the same settings, for a task
    /// that writes often (the token service's audit writer); on PostgreSQL, this pool.
    ///
    /// SQLite empties a connection's page cache whenever another connection has written since
    /// that connection's last transaction. A writer that takes whichever connection of a shared
    /// pool comes next (the pool hands its idle connections out in turn) finds that cache cold
    /// at almost every write, and reads again the pages it is about to change. Its own
    /// connection keeps them. The connection is opened at first use, and replaced after a fault
    /// like any other (see [`Db::connect_waiting`]).
    pub fn dedicated(&self) -> Db {
        match self {
            Db::Sqlite(pool) => {
                let options = (*pool.connect_options()).clone();
                let wait = pool.options().get_acquire_timeout();
                Db::Sqlite(sqlite_pool(1, wait).connect_lazy_with(options))
            }
            Db::Postgres(pool) => Db::Postgres(pool.clone()),
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

    /// Readiness probe of a service that reads: `statement` should read one of its tables (a
    /// bare `SELECT 1` would not touch a SQLite file at all).
    pub async fn probe_read(&self, statement: &'static str) -> anyhow::Result<()> {
        on_pool!(self, pool => {
            sqlx::query(statement).execute(pool).await?;
        });
        Ok(())
    }

    /// Readiness probe of a service that writes: `statement` (an `UPDATE` that matches no row)
    /// runs in a transaction that is rolled back. It changes nothing, yet needs what a real
    /// write needs (a writable file and SQLite's write lock; a read-write PostgreSQL
    /// transaction), so it fails when writes would.
    pub async fn probe_write(&self, statement: &'static str) -> anyhow::Result<()> {
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(statement).execute(&mut *tx).await?;
            tx.rollback().await?;
        });
        Ok(())
    }

    pub async fn close(&self) {
        on_pool!(self, pool => pool.close().await)
    }

    /// Whether this database has a write-ahead log for [`Db::checkpoint`] to copy back (SQLite).
    pub fn has_wal(&self) -> bool {
        matches!(self, Db::Sqlite(_))
    }

    /// Copies what SQLite's write-ahead log holds into the database file, as far as no reader
    /// still needs it, without waiting for any lock (a `PASSIVE` checkpoint): readers and
    /// writers go on meanwhile. Frames it cannot copy yet wait for the next call. Nothing to do
    /// on PostgreSQL (an empty log).
    ///
    /// The log starts over from its beginning only at a write that follows a complete
    /// checkpoint with no write between them, and when no reader that began before the
    /// checkpoint still reads the log; a checkpoint beside a steady stream of writes never lets
    /// it, and the log file grows without bound. [`Db::restart_log`] makes sure it does.
    pub async fn checkpoint(&self) -> anyhow::Result<Checkpoint> {
        let (log_frames, copied_frames) = match self {
            Db::Sqlite(pool) => {
                let (_busy, log, copied): (i64, i64, i64) =
                    sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
                        .fetch_one(pool)
                        .await
                        .context("WAL checkpoint failed")?;
                (log, copied)
            }
            Db::Postgres(_) => (0, 0),
        };
        Ok(Checkpoint {
            log_frames,
            copied_frames,
            gave_up: false,
        })
    }

    /// A checkpoint after which the log starts over from its beginning at the next write
    /// (`RESTART`), for the owner of a [`Checkpoints::ByOwner`] pool: it waits for a writer to
    /// finish and keeps the next from starting while it copies the whole log, then waits until
    /// no reader that began before the copy still reads the log. Those waits take no more than
    /// `wait` together, so a long reader (an administrator's query) costs the caller that much
    /// at most: the checkpoint then reports itself incomplete, and the log starts over at a
    /// later one. Run on a [`Db::dedicated`] connection, since it changes that connection's
    /// busy timeout while it runs.
    pub async fn restart_log(&self, wait: Duration) -> anyhow::Result<Checkpoint> {
        let Db::Sqlite(pool) = self else {
            return self.checkpoint().await;
        };
        let mut conn = pool.acquire().await.context("WAL checkpoint failed")?;
        let busy = |wait: Duration| format!("PRAGMA busy_timeout = {}", wait.as_millis().max(1));
        sqlx::raw_sql(sqlx::AssertSqlSafe(busy(wait)))
            .execute(&mut *conn)
            .await
            .context("WAL checkpoint failed")?;
        let done: Result<(i64, i64, i64), sqlx::Error> =
            sqlx::query_as("PRAGMA wal_checkpoint(RESTART)")
                .fetch_one(&mut *conn)
                .await;
        // The connection's own busy timeout again; one that cannot be restored is not kept.
        let usual = busy(pool.options().get_acquire_timeout());
        if sqlx::raw_sql(sqlx::AssertSqlSafe(usual))
            .execute(&mut *conn)
            .await
            .is_err()
        {
            conn.close_on_drop();
        }
        let (busy, log_frames, copied_frames) = done.context("WAL checkpoint failed")?;
        Ok(Checkpoint {
            log_frames,
            copied_frames,
            gave_up: busy != 0,
        })
    }
}

/// How a SQLite pool of at most `connections` hands them out: a connection opened before the
/// latest fault is replaced, and a wait for one is bounded by `wait`.
fn sqlite_pool(connections: u32, wait: Duration) -> SqlitePoolOptions {
    SqlitePoolOptions::new()
        .max_connections(connections)
        // A ping finds a connection a server closed; a SQLite connection is a file handle in
        // this process, and the ping a round trip to its thread per checkout.
        .test_before_acquire(false)
        .acquire_timeout(wait)
        .before_acquire(|_, meta| Box::pin(async move { Ok(!opened_before_fault(meta)) }))
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

/// Whether `err` says the database cannot serve now (a fault of the infrastructure, not of the
/// request): a wait that ran out (lock, busy timeout, pool), a database that cannot be written
/// (read-only, disk full) or reached (connection refused or lost, server shutting down). Such a
/// request is answered 503 with `Retry-After`; anything else stays a 500.
///
/// A fault that can stick to a connection (everything but a wait that ran out) is remembered,
/// and connections opened before it are replaced rather than reused (see
/// [`Db::connect_waiting`]).
pub fn unavailable(err: &anyhow::Error) -> bool {
    let Some(fault) = err
        .chain()
        .find_map(|cause| cause.downcast_ref::<sqlx::Error>())
        .and_then(fault)
    else {
        return false;
    };
    if fault == Fault::Sticky {
        note_fault();
    }
    true
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// A wait ran out: the connection is fine.
    Waited,
    /// The connection may stay broken (read-only, closed): replace it.
    Sticky,
}

fn fault(err: &sqlx::Error) -> Option<Fault> {
    match err {
        sqlx::Error::PoolTimedOut => Some(Fault::Waited),
        sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => Some(Fault::Sticky),
        sqlx::Error::Database(db) => {
            if let Some(sqlite) = db.try_downcast_ref::<sqlx::sqlite::SqliteError>() {
                let code = sqlite.code().and_then(|c| c.parse::<i32>().ok())?;
                // The primary result code is the low byte of the extended one.
                match code & 0xff {
                    // SQLITE_BUSY, SQLITE_LOCKED: the busy timeout ran out.
                    5 | 6 => Some(Fault::Waited),
                    // SQLITE_READONLY, SQLITE_IOERR, SQLITE_FULL, SQLITE_CANTOPEN.
                    8 | 10 | 13 | 14 => Some(Fault::Sticky),
                    _ => None,
                }
            } else {
                let code = db.code()?;
                match code.as_ref() {
                    // lock_not_available: lock_timeout ran out.
                    "55P03" => Some(Fault::Waited),
                    // read_only_sql_transaction; admin_shutdown, crash_shutdown,
                    // cannot_connect_now; io_error.
                    "25006" | "57P01" | "57P02" | "57P03" | "58030" => Some(Fault::Sticky),
                    // Class 08: connection exception; class 53: insufficient resources (disk
                    // full, out of memory, too many connections).
                    c if c.starts_with("08") || c.starts_with("53") => Some(Fault::Sticky),
                    _ => None,
                }
            }
        }
        _ => None,
    }
}

/// When the latest sticky fault was seen, in nanoseconds since [`epoch`]; 0: never. One per
/// process: a service has one database, and a connection replaced needlessly costs only a
/// reconnect.
static LAST_FAULT: AtomicU64 = AtomicU64::new(0);

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn since_epoch(at: Instant) -> u64 {
    u64::try_from(at.saturating_duration_since(epoch()).as_nanos()).unwrap_or(u64::MAX)
}

fn note_fault() {
    // Never 0, which means "no fault".
    LAST_FAULT.fetch_max(since_epoch(Instant::now()).max(1), Ordering::Relaxed);
}

/// Whether a pooled connection was opened before the latest sticky fault.
fn opened_before_fault(meta: sqlx::pool::PoolConnectionMetadata) -> bool {
    let fault = LAST_FAULT.load(Ordering::Relaxed);
    if fault == 0 {
        return false;
    }
    let opened = Instant::now().checked_sub(meta.age).map_or(0, since_epoch);
    opened <= fault
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

    /// How many rows of table `t` a copy of the database file alone (without its write-ahead
    /// log) holds: what a checkpoint has copied back so far.
    async fn rows_in_the_file_alone(path: &Path) -> i64 {
        let dir = tempfile::tempdir().unwrap();
        let copy = dir.path().join("copy.db");
        fs::copy(path, &copy).unwrap();
        let db = Db::connect(&format!("sqlite://{}", copy.display()))
            .await
            .unwrap();
        let rows = on_pool!(&db, pool => {
            sqlx::query_scalar("SELECT count(*) FROM t").fetch_one(pool).await.unwrap_or(0)
        });
        db.close().await;
        rows
    }

    #[tokio::test]
    async fn owner_checkpoints_leave_the_log_to_the_caller() {
        let dir = tempfile::tempdir().unwrap();
        for (checkpoints, automatic, size_limit) in [
            (Checkpoints::Automatic, 1000, -1),
            (Checkpoints::ByOwner, 0, JOURNAL_SIZE_LIMIT as i64),
        ] {
            let path = dir.path().join(format!("{checkpoints:?}.db"));
            let url = format!("sqlite://{}", path.display());
            let db = Db::connect_checkpointing(&url, DEFAULT_WAIT, checkpoints)
                .await
                .unwrap();
            assert!(db.has_wal());
            on_pool!(&db, pool => {
                // Every connection of the pool has the setting, not only the first.
                let mut held = Vec::new();
                for _ in 0..4 {
                    let mut conn = pool.acquire().await.unwrap();
                    let pages: i64 = sqlx::query_scalar("PRAGMA wal_autocheckpoint")
                        .fetch_one(&mut *conn)
                        .await
                        .unwrap();
                    assert_eq!(pages, automatic, "{checkpoints:?}");
                    let limit: i64 = sqlx::query_scalar("PRAGMA journal_size_limit")
                        .fetch_one(&mut *conn)
                        .await
                        .unwrap();
                    assert_eq!(limit, size_limit, "{checkpoints:?}");
                    held.push(conn);
                }
                drop(held);
                sqlx::query("CREATE TABLE t (x INTEGER)").execute(pool).await.unwrap();
                sqlx::query("INSERT INTO t VALUES (1), (2)").execute(pool).await.unwrap();
            });
            // Still in the log only, until a checkpoint copies the rows into the file.
            assert_eq!(rows_in_the_file_alone(&path).await, 0, "{checkpoints:?}");
            assert!(db.checkpoint().await.unwrap().complete(), "{checkpoints:?}");
            assert_eq!(rows_in_the_file_alone(&path).await, 2, "{checkpoints:?}");
            db.close().await;
        }
    }

    #[tokio::test]
    async fn a_write_after_a_complete_checkpoint_starts_the_log_over() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("restart.db").display());
        let db = Db::connect_checkpointing(&url, DEFAULT_WAIT, Checkpoints::ByOwner)
            .await
            .unwrap();
        let insert = |n: i64| {
            let db = db.clone();
            async move {
                on_pool!(&db, pool => {
                    sqlx::query("INSERT INTO t VALUES ($1)").bind(n).execute(pool).await.unwrap();
                });
            }
        };
        on_pool!(&db, pool => {
            sqlx::query("CREATE TABLE t (x INTEGER)").execute(pool).await.unwrap();
        });
        for n in 0..50 {
            insert(n).await;
        }
        let grown = db.checkpoint().await.unwrap();
        assert!(grown.complete() && grown.log_frames >= 50, "{grown:?}");
        // The next write begins at the start of the log, not after its 50-odd frames.
        insert(50).await;
        let restarted = db.restart_log(DEFAULT_WAIT).await.unwrap();
        assert!(
            restarted.complete() && restarted.log_frames < 5,
            "{restarted:?}"
        );
        insert(51).await;
        let again = db.checkpoint().await.unwrap();
        assert!(again.complete() && again.log_frames < 5, "{again:?}");
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
