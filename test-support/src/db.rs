//! A database of its own for one test: a SQLite file in a temporary folder, or a private schema
//! on the PostgreSQL server, dropped when the test is done.

use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A database of its own for one test, and a folder for its files (the master key). A
/// PostgreSQL schema is dropped when this is dropped.
pub struct TestDb {
    pub url: String,
    pub dir: tempfile::TempDir,
    schema: Option<(String, String)>,
}

impl TestDb {
    /// A second handle on the same database (for a second instance): same URL, and a copy of
    /// the master key file; only the first handle drops a PostgreSQL schema.
    pub fn sharing(other: &TestDb) -> TestDb {
        let dir = tempfile::tempdir().expect("temporary directory");
        std::fs::copy(other.master_key_path(), dir.path().join("master.key")).ok();
        TestDb {
            url: other.url.clone(),
            dir,
            schema: None,
        }
    }

    pub fn master_key_path(&self) -> PathBuf {
        self.dir.path().join("master.key")
    }

    /// Pretends the token service's pending signing key was published `seconds` ago (time
    /// travel in the test database, SQLite only), for tests of the rotation rules.
    pub async fn age_pending_key(&self, seconds: i64) {
        let pool = sqlx::SqlitePool::connect(&self.url).await.unwrap();
        sqlx::query("UPDATE signing_keys SET created_at = created_at - $1 WHERE state = 'pending'")
            .bind(seconds)
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    }

    /// The SQLite file, when the backend is SQLite.
    pub fn sqlite_path(&self) -> Option<PathBuf> {
        self.url
            .starts_with("sqlite:")
            .then(|| self.dir.path().join("auth.db"))
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((base, schema)) = self.schema.take() {
            // Tests cannot drop asynchronously; a short-lived runtime on its own thread can.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .ok()?;
                rt.block_on(async {
                    let pool = sqlx::PgPool::connect(&base).await.ok()?;
                    let sql = format!("DROP SCHEMA IF EXISTS {schema} CASCADE");
                    sqlx::query(sqlx::AssertSqlSafe(sql))
                        .execute(&pool)
                        .await
                        .ok()?;
                    pool.close().await;
                    Some(())
                })
            })
            .join();
        }
    }
}

pub fn postgres_base_url() -> String {
    std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A fresh database, or `None` when PostgreSQL is wanted but absent outside CI (the test is then
/// skipped with a loud notice). Under `CI=true` an absent PostgreSQL fails the test.
pub async fn test_db(backend: Backend) -> Option<TestDb> {
    let dir = tempfile::tempdir().expect("temporary directory");
    if backend == Backend::Sqlite {
        let url = format!("sqlite://{}", dir.path().join("auth.db").display());
        return Some(TestDb {
            url,
            dir,
            schema: None,
        });
    }
    let base = postgres_base_url();
    let pool = admin_pool(&base).await?;
    let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&pool)
        .await
        .expect("create test schema");
    pool.close().await;
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
    Some(TestDb {
        url,
        dir,
        schema: Some((base, schema)),
    })
}

/// One connection to the PostgreSQL server at `base`, or `None` when it is absent outside CI
/// (under `CI=true` an absent PostgreSQL fails the test).
async fn admin_pool(base: &str) -> Option<sqlx::PgPool> {
    let connect = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(3))
        .connect(base);
    match tokio::time::timeout(Duration::from_secs(5), connect).await {
        Ok(Ok(pool)) => Some(pool),
        Ok(Err(err)) => postgres_missing(base, &err.to_string()),
        Err(_) => postgres_missing(base, "timed out"),
    }
}

fn postgres_missing<T>(base: &str, why: &str) -> Option<T> {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("PostgreSQL at {base} is required under CI=true but is not answering: {why}");
    }
    eprintln!(
        "\n*** SKIPPING a PostgreSQL test: no server at {base} ({why}). Set TEST_POSTGRES_URL or start PostgreSQL. ***\n"
    );
    None
}

/// A PostgreSQL database of its own (not a schema), for tests that change settings of the whole
/// database (`default_transaction_read_only`) or end every session on it
/// (`pg_terminate_backend`); dropped, with its sessions, when this is dropped.
pub struct OwnPgDatabase {
    pub url: String,
    pub name: String,
    admin: sqlx::PgPool,
}

impl OwnPgDatabase {
    /// A fresh database, or `None` when PostgreSQL is absent outside CI (see [`test_db`]).
    pub async fn create() -> Option<OwnPgDatabase> {
        let base = postgres_base_url();
        let admin = admin_pool(&base).await?;
        let name = format!("fault_{}", uuid::Uuid::new_v4().simple());
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&admin)
            .await
            .expect("create test database");
        let (server, params) = base
            .split_once('?')
            .map_or((base.as_str(), ""), |(s, p)| (s, p));
        let server = server.rsplit_once('/').map_or(server, |(server, _)| server);
        let url = if params.is_empty() {
            format!("{server}/{name}")
        } else {
            format!("{server}/{name}?{params}")
        };
        Some(OwnPgDatabase { url, name, admin })
    }

    /// Runs `sql` as the administrator, on the server's own database.
    pub async fn admin(&self, sql: &str) {
        sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(&self.admin)
            .await
            .unwrap_or_else(|err| panic!("{sql}: {err}"));
    }

    /// New sessions on this database are read-only (`on`), or not.
    pub async fn set_read_only(&self, on: bool) {
        let sql = if on {
            format!(
                "ALTER DATABASE {} SET default_transaction_read_only = on",
                self.name
            )
        } else {
            format!(
                "ALTER DATABASE {} RESET default_transaction_read_only",
                self.name
            )
        };
        self.admin(&sql).await;
    }

    /// Ends every session on this database; returns how many there were.
    pub async fn terminate_sessions(&self) -> i64 {
        let sql = format!(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = '{}'",
            self.name
        );
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_one(&self.admin)
            .await
            .expect("terminate sessions")
    }
}

impl Drop for OwnPgDatabase {
    fn drop(&mut self) {
        let admin = self.admin.clone();
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                // The pool belongs to the test's runtime; a connection of this runtime drops it.
                let _ = admin;
                let pool = sqlx::PgPool::connect(&postgres_base_url()).await.ok()?;
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .execute(&pool)
                    .await
                    .ok()?;
                pool.close().await;
                Some(())
            })
        })
        .join();
    }
}
