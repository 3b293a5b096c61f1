//! The append-only audit trail.

use std::net::IpAddr;

use shared_claims::ClientId;
use sqlx::FromRow;

use super::{Store, on_pool};

/// Events per INSERT statement when SQLite stores a batch (6 parameters each).
const ROWS_PER_STATEMENT: usize = 256;

/// One audit event before it is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    pub at: i64,
    /// Who acted: `cli`, `server`, or `client:<id>`.
    pub actor: String,
    /// What happened, as a dotted name such as `client.create` or `token.issue`.
    pub action: String,
    pub client_id: Option<String>,
    pub source_ip: Option<String>,
    /// Non-secret details as a JSON object. Never a secret, a token or key material.
    pub detail: serde_json::Value,
}

/// A stored audit event.
#[derive(Debug, Clone, PartialEq, Eq, FromRow, serde::Serialize)]
pub struct AuditRecord {
    pub id: i64,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub client_id: Option<String>,
    pub source_ip: Option<String>,
    pub detail: String,
}

/// Who performs admin actions from the command line, as recorded in the audit trail.
pub const CLI_ACTOR: &str = "cli";

impl AuditEvent {
    /// `actor` did `action` at `at`; no client or source address yet (see [`AuditEvent::about`]
    /// and [`AuditEvent::from_source`]).
    pub fn new(actor: &str, action: &str, at: i64, detail: serde_json::Value) -> AuditEvent {
        AuditEvent {
            at,
            actor: actor.to_owned(),
            action: action.to_owned(),
            client_id: None,
            source_ip: None,
            detail,
        }
    }

    /// A client did `action` through the API: it is both the actor and the subject.
    pub fn by_client(
        client: &ClientId,
        action: &str,
        at: i64,
        detail: serde_json::Value,
    ) -> AuditEvent {
        AuditEvent::new(&format!("client:{client}"), action, at, detail)
            .about(Some(client.as_str()))
    }

    /// An admin did `action` from the CLI, now.
    pub fn by_admin(action: &str, detail: serde_json::Value) -> AuditEvent {
        AuditEvent::new(CLI_ACTOR, action, crate::now(), detail)
    }

    /// The client the event is about.
    pub fn about(mut self, client_id: Option<&str>) -> AuditEvent {
        self.client_id = client_id.map(str::to_owned);
        self
    }

    /// The address the request came from.
    pub fn from_source(mut self, source: Option<IpAddr>) -> AuditEvent {
        self.source_ip = source.map(|ip| ip.to_string());
        self
    }

    /// Inserts this event on `conn`, so callers can make it part of their own transaction.
    pub(crate) async fn insert<'c, DB, E>(&self, conn: E) -> Result<(), sqlx::Error>
    where
        DB: sqlx::Database,
        E: sqlx::Executor<'c, Database = DB>,
        for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
        for<'q> String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
        for<'q> Option<String>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
        for<'q> <DB as sqlx::Database>::Arguments: sqlx::IntoArguments<DB>,
    {
        sqlx::query::<DB>(
            "INSERT INTO audit_events (at, actor, action, client_id, source_ip, detail) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(self.at)
        .bind(self.actor.clone())
        .bind(self.action.clone())
        .bind(self.client_id.clone())
        .bind(self.source_ip.clone())
        .bind(self.detail.to_string())
        .execute(conn)
        .await?;
        Ok(())
    }
}

/// Batches of at most this many events have their statement prepared once per connection (as
/// full SQLite chunks do): preparing a statement for each batch would cost more than its
/// insert. Under load at 32 connections batches hold about 25 events; the audit writer's
/// connection is its own ([`Store::dedicated`]) and prepares nothing else, so its statement
/// cache (100 statements) holds all 64 sizes. Larger sizes are rare and prepared per use.
const PREPARED_UP_TO: usize = 64;

/// Runs one multi-row `INSERT` of `events` on `conn`.
async fn insert_audit_rows<'c, DB, E>(events: &[AuditEvent], conn: E) -> Result<(), sqlx::Error>
where
    DB: sqlx::Database + sqlx::database::HasStatementCache,
    E: sqlx::Executor<'c, Database = DB>,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> Option<String>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> <DB as sqlx::Database>::Arguments: sqlx::IntoArguments<DB>,
{
    let mut insert = sqlx::QueryBuilder::<DB>::new(
        "INSERT INTO audit_events (at, actor, action, client_id, source_ip, detail) ",
    );
    insert.push_values(events, |mut row, event| {
        row.push_bind(event.at)
            .push_bind(event.actor.clone())
            .push_bind(event.action.clone())
            .push_bind(event.client_id.clone())
            .push_bind(event.source_ip.clone())
            .push_bind(event.detail.to_string());
    });
    let persistent = events.len() <= PREPARED_UP_TO || events.len() == ROWS_PER_STATEMENT;
    insert.build().persistent(persistent).execute(conn).await?;
    Ok(())
}

impl Store {
    /// Stores a batch of events atomically: one commit for many events.
    pub async fn insert_audit_events(&self, events: &[AuditEvent]) -> anyhow::Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        // SQLite: multi-row INSERTs of at most `ROWS_PER_STATEMENT` events rather than one
        // statement for the whole batch, so SQLite's thread is not held for one long statement,
        // and the writer yields between them. Full chunks are one statement, prepared once per
        // connection. PostgreSQL: one statement per batch, because each large statement waits
        // ~40 ms: sqlx 0.9.0 no longer sets TCP_NODELAY, so Nagle's algorithm meets the server's
        // delayed ACK (transact-rs/sqlx#4335, fixed upstream but not released). Sixteen of them
        // per 4,096-event batch capped issuance at ~5,400/s; see BENCHMARKS.md.
        let rows_per_statement = match &self.db {
            super::Db::Sqlite(_) => ROWS_PER_STATEMENT,
            super::Db::Postgres(_) => events.len(),
        };
        // A batch that fits one statement is written without an explicit transaction: the
        // statement is atomic on its own, and BEGIN and COMMIT would be two more round trips to
        // the database (on SQLite, to its connection's thread), paid per batch, that is per
        // request when requests come one at a time.
        let single = events.len() <= rows_per_statement;
        on_pool!(&self.db, pool => {
            if single {
                insert_audit_rows(events, pool).await?;
            } else {
                let mut tx = pool.begin().await?;
                for chunk in events.chunks(rows_per_statement) {
                    insert_audit_rows(chunk, &mut *tx).await?;
                }
                tx.commit().await?;
            }
        });
        Ok(())
    }

    /// The newest `limit` events, newest first, optionally for one client.
    pub async fn list_audit(
        &self,
        client_id: Option<&str>,
        limit: i64,
    ) -> anyhow::Result<Vec<AuditRecord>> {
        let rows = on_pool!(&self.db, pool => {
            sqlx::query_as(
                "SELECT id, at, actor, action, client_id, source_ip, detail FROM audit_events \
                 WHERE ($1 IS NULL OR client_id = $1) ORDER BY id DESC LIMIT $2",
            )
            .bind(client_id)
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        Ok(rows)
    }
}
