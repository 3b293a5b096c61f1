//! Clients managed by a clients file (`clients plan|apply`): the clients it created, read with
//! their certificates, and a whole apply as one transaction whose plan is decided inside it.

use sqlx::FromRow;

use super::clients::{CertRow, ClientRow, INSERT_CERT, certs_by_client};
use super::{AuditEvent, Client, NewCert, NewClient, RegisteredCert, Store, on_pool};

/// A client the clients file created, as stored now.
#[derive(Debug, Clone)]
pub struct ManagedClient {
    /// The file entry that manages it (its table key).
    pub managed_name: String,
    pub client: Client,
    /// A self-signed client's registered certificates.
    pub certs: Vec<RegisteredCert>,
}

/// Every field of a managed client that its file entry sets, written all at once by an update,
/// so that an apply puts back whatever `client update` changed.
#[derive(Debug, Clone)]
pub struct ManagedFields {
    pub name: String,
    pub scopes: String,
    pub audiences: Vec<String>,
    pub access_token_ttl: Option<i64>,
    pub refresh_enabled: bool,
    pub introspect_allowed: bool,
    /// Only ever changed within the secret family (basic and post).
    pub auth_method: &'static str,
    pub tls_subject: Option<String>,
    pub tls_san: Option<String>,
    pub jwks: Option<String>,
    pub jwks_uri: Option<String>,
}

/// One change of an apply, with its audit event.
pub enum ManagedChange {
    /// A new client, its `managed_name` set.
    Create { new: NewClient, audit: AuditEvent },
    /// A managed client's fields set to the file's values, certificates added and withdrawn.
    Update {
        client_id: String,
        managed_name: String,
        fields: ManagedFields,
        add_certs: Vec<NewCert>,
        remove_certs: Vec<String>,
        audit: AuditEvent,
    },
    /// A managed client deleted, with (by cascade) its secrets, certificates and refresh tokens.
    Delete {
        client_id: String,
        managed_name: String,
        audit: AuditEvent,
    },
}

#[derive(FromRow)]
struct ManagedRow {
    #[sqlx(flatten)]
    client: ClientRow,
    managed_name: String,
}

const MANAGED_CLIENTS: &str = concat!(
    "SELECT ",
    client_columns!(),
    ", managed_name FROM clients WHERE managed_name IS NOT NULL ORDER BY managed_name"
);
const MANAGED_CERTS: &str = "SELECT c.client_id, c.thumbprint, c.subject, c.not_after, c.created_at \
     FROM client_certs c JOIN clients k ON k.client_id = c.client_id \
     WHERE k.managed_name IS NOT NULL ORDER BY c.thumbprint";

impl Store {
    /// Every managed client with its certificates, from one snapshot.
    pub async fn managed_clients(&self) -> anyhow::Result<Vec<ManagedClient>> {
        let (rows, certs): (Vec<ManagedRow>, Vec<CertRow>) = on_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            let rows = sqlx::query_as(MANAGED_CLIENTS).fetch_all(&mut *tx).await?;
            let certs = sqlx::query_as(MANAGED_CERTS).fetch_all(&mut *tx).await?;
            tx.commit().await?;
            (rows, certs)
        });
        assemble(rows, certs)
    }

    /// Applies a clients file in one transaction. `decide` sees the managed clients as they are
    /// inside that transaction and returns the changes to make (and what to report); nothing is
    /// written if it fails, if any change fails, or if it has nothing to change.
    ///
    /// The transaction begins by moving `client_generation` (which every change to clients moves
    /// anyway, so running servers reload): that write makes it the one writer of the client
    /// tables until it ends, on SQLite (the write lock is taken at once, so the read that follows
    /// cannot be overtaken) and on PostgreSQL (every client change updates that row, so it waits).
    /// No change can slip in between the plan and its apply.
    pub async fn apply_managed_changes<T>(
        &self,
        decide: impl FnOnce(Vec<ManagedClient>) -> anyhow::Result<(Vec<ManagedChange>, T)>,
    ) -> anyhow::Result<T> {
        let outcome = on_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query("UPDATE client_generation SET generation = generation + 1 WHERE id = 1")
                .execute(&mut *tx)
                .await?;
            let rows = sqlx::query_as(MANAGED_CLIENTS).fetch_all(&mut *tx).await?;
            let certs = sqlx::query_as(MANAGED_CERTS).fetch_all(&mut *tx).await?;
            let (changes, outcome) = decide(assemble(rows, certs)?)?;
            if changes.is_empty() {
                // Rolled back: an empty apply does not even make servers reload.
                return Ok(outcome);
            }
            for change in &changes {
                match change {
                    ManagedChange::Create { new, audit } => {
                        anyhow::ensure!(
                            new.managed_name.is_some(),
                            "a client created by a clients file must name its entry"
                        );
                        insert_new_client!(&mut *tx, new);
                        audit.insert(&mut *tx).await?;
                    }
                    ManagedChange::Update { client_id, managed_name, fields, add_certs, remove_certs, audit } => {
                        let audiences = serde_json::to_string(&fields.audiences)?;
                        let done = sqlx::query(
                            "UPDATE clients SET name = $3, scopes = $4, audiences = $5, \
                             access_token_ttl = $6, refresh_enabled = $7, introspect_allowed = $8, \
                             auth_method = $9, tls_subject = $10, tls_san = $11, jwks = $12, \
                             jwks_uri = $13, updated_at = $14 \
                             WHERE client_id = $1 AND managed_name = $2",
                        )
                        .bind(client_id.as_str())
                        .bind(managed_name.as_str())
                        .bind(fields.name.as_str())
                        .bind(fields.scopes.as_str())
                        .bind(&audiences)
                        .bind(fields.access_token_ttl)
                        .bind(fields.refresh_enabled)
                        .bind(fields.introspect_allowed)
                        .bind(fields.auth_method)
                        .bind(fields.tls_subject.as_deref())
                        .bind(fields.tls_san.as_deref())
                        .bind(fields.jwks.as_deref())
                        .bind(fields.jwks_uri.as_deref())
                        .bind(audit.at)
                        .execute(&mut *tx)
                        .await?;
                        anyhow::ensure!(
                            done.rows_affected() == 1,
                            "the managed client {managed_name} ({client_id}) is gone"
                        );
                        for thumbprint in remove_certs {
                            sqlx::query("DELETE FROM client_certs WHERE client_id = $1 AND thumbprint = $2")
                                .bind(client_id.as_str())
                                .bind(thumbprint.as_str())
                                .execute(&mut *tx)
                                .await?;
                        }
                        for cert in add_certs {
                            sqlx::query(INSERT_CERT)
                                .bind(client_id.as_str())
                                .bind(&cert.thumbprint)
                                .bind(&cert.subject)
                                .bind(cert.not_after)
                                .bind(&cert.der)
                                .bind(audit.at)
                                .execute(&mut *tx)
                                .await?;
                        }
                        audit.insert(&mut *tx).await?;
                    }
                    ManagedChange::Delete { client_id, managed_name, audit } => {
                        let done = sqlx::query("DELETE FROM clients WHERE client_id = $1 AND managed_name = $2")
                            .bind(client_id.as_str())
                            .bind(managed_name.as_str())
                            .execute(&mut *tx)
                            .await?;
                        anyhow::ensure!(
                            done.rows_affected() == 1,
                            "the managed client {managed_name} ({client_id}) is gone"
                        );
                        audit.insert(&mut *tx).await?;
                    }
                }
            }
            tx.commit().await?;
            outcome
        });
        Ok(outcome)
    }
}

/// Managed rows and their certificates, as [`ManagedClient`]s.
fn assemble(rows: Vec<ManagedRow>, certs: Vec<CertRow>) -> anyhow::Result<Vec<ManagedClient>> {
    let mut by_client = certs_by_client(certs);
    rows.into_iter()
        .map(|row| {
            let client = Client::try_from(row.client)?;
            Ok(ManagedClient {
                certs: by_client
                    .remove(client.client_id.as_str())
                    .unwrap_or_default(),
                managed_name: row.managed_name,
                client,
            })
        })
        .collect()
}
