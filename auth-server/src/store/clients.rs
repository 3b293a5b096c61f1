//! Queries on `clients` and `client_secrets`.

use anyhow::Context;
use shared_claims::{ClientId, PartnerId, ScopeSet};
use sqlx::FromRow;

use super::{AuditEvent, Store, on_pool};

/// The id of the decoy row that authentication reads for unknown ids (migration 0006). It is not
/// a client: listings, lookups and admin commands never see it.
pub const DECOY_CLIENT_ID: &str = "~decoy~";

/// How a client authenticates at the token endpoint: the method it was registered with, which is
/// the only one it may use (RFC 8705 §2, RFC 7523 §2.2). The two secret methods are one family: a
/// secret client may present its secret either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuthMethod {
    ClientSecretBasic,
    ClientSecretPost,
    TlsClientAuth,
    SelfSignedTlsClientAuth,
    PrivateKeyJwt,
    /// Not a token-endpoint method: the client holds an API key (hashed in `client_secrets`)
    /// that it presents to the partner API, and cannot get tokens.
    ApiKey,
}

impl ClientAuthMethod {
    /// The methods of the token endpoint (its metadata's `token_endpoint_auth_methods_supported`):
    /// every method but [`ClientAuthMethod::ApiKey`].
    pub const ALL: [ClientAuthMethod; 5] = [
        ClientAuthMethod::ClientSecretBasic,
        ClientAuthMethod::ClientSecretPost,
        ClientAuthMethod::TlsClientAuth,
        ClientAuthMethod::SelfSignedTlsClientAuth,
        ClientAuthMethod::PrivateKeyJwt,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ClientAuthMethod::ClientSecretBasic => "client_secret_basic",
            ClientAuthMethod::ClientSecretPost => "client_secret_post",
            ClientAuthMethod::TlsClientAuth => "tls_client_auth",
            ClientAuthMethod::SelfSignedTlsClientAuth => "self_signed_tls_client_auth",
            ClientAuthMethod::PrivateKeyJwt => "private_key_jwt",
            ClientAuthMethod::ApiKey => "api_key",
        }
    }

    pub fn parse(text: &str) -> Option<ClientAuthMethod> {
        ClientAuthMethod::ALL
            .into_iter()
            .chain([ClientAuthMethod::ApiKey])
            .find(|m| m.as_str() == text)
    }

    /// The client holds secrets (`client_secrets`) for the token endpoint.
    pub fn uses_secret(self) -> bool {
        matches!(
            self,
            ClientAuthMethod::ClientSecretBasic | ClientAuthMethod::ClientSecretPost
        )
    }

    /// The client authenticates with a TLS client certificate, and its tokens are bound to it.
    pub fn uses_certificate(self) -> bool {
        matches!(
            self,
            ClientAuthMethod::TlsClientAuth | ClientAuthMethod::SelfSignedTlsClientAuth
        )
    }
}

impl std::fmt::Display for ClientAuthMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A client as the domain sees it: every field parsed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Client {
    pub client_id: ClientId,
    pub name: String,
    pub partner_id: PartnerId,
    pub scopes: ScopeSet,
    /// Allowed audiences; the first is the default when a request names no `resource`.
    pub audiences: Vec<String>,
    pub access_token_ttl: Option<i64>,
    pub refresh_enabled: bool,
    pub introspect_allowed: bool,
    pub disabled_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    pub auth_method: ClientAuthMethod,
    /// `tls_client_auth`: the subject DN (RFC 4514) its CA-issued certificate must carry.
    pub tls_subject: Option<String>,
    /// `tls_client_auth`: a DNS name or URI its certificate must carry as a SAN.
    pub tls_san: Option<String>,
    /// `private_key_jwt`: the client's public keys, as the JWKS document registered.
    pub jwks: Option<String>,
    /// `private_key_jwt`: where the client publishes its public keys.
    pub jwks_uri: Option<String>,
}

impl Client {
    pub fn is_disabled(&self) -> bool {
        self.disabled_at.is_some()
    }
}

#[derive(FromRow)]
pub(super) struct ClientRow {
    client_id: String,
    name: String,
    partner_id: String,
    scopes: String,
    audiences: String,
    access_token_ttl: Option<i64>,
    refresh_enabled: bool,
    introspect_allowed: bool,
    disabled_at: Option<i64>,
    created_at: i64,
    updated_at: i64,
    auth_method: String,
    tls_subject: Option<String>,
    tls_san: Option<String>,
    jwks: Option<String>,
    jwks_uri: Option<String>,
}

impl TryFrom<ClientRow> for Client {
    type Error = anyhow::Error;

    fn try_from(row: ClientRow) -> anyhow::Result<Client> {
        Ok(Client {
            client_id: ClientId::parse(&row.client_id).context("stored client id")?,
            name: row.name,
            partner_id: PartnerId::parse(&row.partner_id).context("stored partner id")?,
            scopes: ScopeSet::parse(&row.scopes).context("stored scopes")?,
            audiences: serde_json::from_str(&row.audiences).context("stored audiences")?,
            access_token_ttl: row.access_token_ttl,
            refresh_enabled: row.refresh_enabled,
            introspect_allowed: row.introspect_allowed,
            disabled_at: row.disabled_at,
            created_at: row.created_at,
            updated_at: row.updated_at,
            auth_method: ClientAuthMethod::parse(&row.auth_method)
                .with_context(|| format!("stored auth method '{}'", row.auth_method))?,
            tls_subject: row.tls_subject,
            tls_san: row.tls_san,
            jwks: row.jwks,
            jwks_uri: row.jwks_uri,
        })
    }
}

/// The column list of [`ClientRow`], as a macro so that queries stay `&'static str` literals.
macro_rules! client_columns {
    () => {
        "client_id, name, partner_id, scopes, audiences, access_token_ttl, refresh_enabled, \
         introspect_allowed, disabled_at, created_at, updated_at, auth_method, tls_subject, \
         tls_san, jwks, jwks_uri"
    };
}

pub(super) const INSERT_CERT: &str = "INSERT INTO client_certs (client_id, thumbprint, subject, not_after, cert_der, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6)";

/// A secret hash and when it stops working (`None`: never).
pub type LiveSecret = (Vec<u8>, Option<i64>);

/// A client and its live secret hashes with their expiry, newest first, and its registered
/// certificates.
pub struct DirectoryEntry {
    pub client: Client,
    pub secrets: Vec<LiveSecret>,
    pub certs: Vec<RegisteredCert>,
}

/// A `client_secrets` row as the directory reads it.
type SecretRow = (String, Vec<u8>, Option<i64>);

/// A self-signed client's registered certificate (`client_certs`), without its DER.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, FromRow)]
pub struct RegisteredCert {
    /// `x5t#S256`: base64url of the SHA-256 of the certificate's DER.
    pub thumbprint: String,
    pub subject: String,
    pub not_after: i64,
    pub created_at: i64,
}

/// A certificate to register.
#[derive(Debug, Clone)]
pub struct NewCert {
    pub thumbprint: String,
    pub subject: String,
    pub not_after: i64,
    pub der: Vec<u8>,
}

/// What `client create` stores: the client, and its first secret or its certificates.
pub struct NewClient {
    pub client: Client,
    pub secret_hash: Option<Vec<u8>>,
    pub certs: Vec<NewCert>,
    /// The clients-file entry that manages it (`clients apply`); `None` for `client create`.
    pub managed_name: Option<String>,
}

/// Fields `client update` may change; `None` leaves a field as it is.
#[derive(Debug, Default, Clone)]
pub struct ClientUpdate {
    pub name: Option<String>,
    pub scopes: Option<ScopeSet>,
    /// `Some(None)` clears the override, so the server default applies again.
    pub access_token_ttl: Option<Option<i64>>,
    pub tls_subject: Option<String>,
    pub tls_san: Option<String>,
    /// A new key source for a `private_key_jwt` client: a JWKS document or a URI, the other
    /// cleared.
    pub keys: Option<KeySourceUpdate>,
}

/// Where a `private_key_jwt` client's keys come from from now on.
#[derive(Debug, Clone)]
pub enum KeySourceUpdate {
    Document(String),
    Uri(String),
}

/// Inserts `$new` (a [`NewClient`]: the client, its first secret, its certificates) on `$conn`,
/// inside the caller's transaction. A macro rather than a function because the statements run on
/// either backend's connection type (see `on_pool!`).
macro_rules! insert_new_client {
    ($conn:expr, $new:expr) => {{
        let new: &NewClient = $new;
        let c = &new.client;
        let audiences = serde_json::to_string(&c.audiences)?;
        sqlx::query(
            "INSERT INTO clients (client_id, name, partner_id, scopes, audiences, \
             access_token_ttl, refresh_enabled, introspect_allowed, disabled_at, created_at, updated_at, \
             auth_method, tls_subject, tls_san, jwks, jwks_uri, managed_name) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
        )
        .bind(c.client_id.as_str())
        .bind(&c.name)
        .bind(c.partner_id.as_str())
        .bind(c.scopes.to_string())
        .bind(&audiences)
        .bind(c.access_token_ttl)
        .bind(c.refresh_enabled)
        .bind(c.introspect_allowed)
        .bind(c.disabled_at)
        .bind(c.created_at)
        .bind(c.updated_at)
        .bind(c.auth_method.as_str())
        .bind(c.tls_subject.as_deref())
        .bind(c.tls_san.as_deref())
        .bind(c.jwks.as_deref())
        .bind(c.jwks_uri.as_deref())
        .bind(new.managed_name.as_deref())
        .execute($conn)
        .await?;
        if let Some(hash) = &new.secret_hash {
            sqlx::query(
                "INSERT INTO client_secrets (id, client_id, secret_hash, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, NULL)",
            )
            .bind(uuid::Uuid::now_v7().to_string())
            .bind(c.client_id.as_str())
            .bind(hash)
            .bind(c.created_at)
            .execute($conn)
            .await?;
        }
        for cert in &new.certs {
            sqlx::query($crate::store::clients::INSERT_CERT)
                .bind(c.client_id.as_str())
                .bind(&cert.thumbprint)
                .bind(&cert.subject)
                .bind(cert.not_after)
                .bind(&cert.der)
                .bind(c.created_at)
                .execute($conn)
                .await?;
        }
    }};
}

impl Store {
    /// Inserts a client, its first secret and the audit event in one transaction.
    pub async fn insert_client(&self, new: &NewClient, audit: &AuditEvent) -> anyhow::Result<()> {
        on_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            insert_new_client!(&mut *tx, new);
            audit.insert(&mut *tx).await?;
            tx.commit().await?;
        });
        Ok(())
    }

    pub async fn get_client(&self, client_id: &str) -> anyhow::Result<Option<Client>> {
        const SQL: &str = concat!(
            "SELECT ",
            client_columns!(),
            " FROM clients WHERE client_id = $1 AND client_id <> '~decoy~'"
        );
        let row: Option<ClientRow> = on_pool!(&self.db, pool => {
            sqlx::query_as(SQL).bind(client_id).fetch_optional(pool).await?
        });
        row.map(Client::try_from).transpose()
    }

    /// Bumped by triggers on every change to `clients` or `client_secrets` (migration 0007), by
    /// any process; the in-memory client directory reloads when it moves.
    pub async fn client_generation(&self) -> anyhow::Result<i64> {
        let generation: i64 = on_pool!(&self.db, pool => {
            sqlx::query_scalar("SELECT generation FROM client_generation WHERE id = 1")
                .fetch_one(pool)
                .await?
        });
        Ok(generation)
    }

    /// Every client, the decoy included, with its secrets still live at `now` (newest first),
    /// for the in-memory directory authentication reads.
    pub async fn clients_for_directory(&self, now: i64) -> anyhow::Result<Vec<DirectoryEntry>> {
        const CLIENTS: &str = concat!("SELECT ", client_columns!(), " FROM clients");
        const SECRETS: &str = "SELECT client_id, secret_hash, expires_at FROM client_secrets \
             WHERE expires_at IS NULL OR expires_at > $1 ORDER BY created_at DESC, id DESC";
        const CERTS: &str = "SELECT client_id, thumbprint, subject, not_after, created_at FROM client_certs \
             ORDER BY created_at DESC, thumbprint";
        let (clients, secrets, certs): (Vec<ClientRow>, Vec<SecretRow>, Vec<CertRow>) = on_pool!(&self.db, pool => {
            // One snapshot of the three tables.
            let mut tx = pool.begin().await?;
            let clients = sqlx::query_as(CLIENTS).fetch_all(&mut *tx).await?;
            let secrets = sqlx::query_as(SECRETS).bind(now).fetch_all(&mut *tx).await?;
            let certs = sqlx::query_as(CERTS).fetch_all(&mut *tx).await?;
            tx.commit().await?;
            (clients, secrets, certs)
        });
        let mut certs_by_client = certs_by_client(certs);
        let mut by_client: std::collections::HashMap<String, Vec<LiveSecret>> =
            std::collections::HashMap::new();
        for (client_id, hash, expires_at) in secrets {
            by_client
                .entry(client_id)
                .or_default()
                .push((hash, expires_at));
        }
        let mut entries = Vec::with_capacity(clients.len());
        for row in clients {
            let secrets = by_client.remove(&row.client_id).unwrap_or_default();
            let certs = certs_by_client.remove(&row.client_id).unwrap_or_default();
            match Client::try_from(row) {
                Ok(client) => entries.push(DirectoryEntry {
                    client,
                    secrets,
                    certs,
                }),
                // One bad row must not lock every other client out.
                Err(err) => tracing::warn!(error = %err, "skipping an unreadable client row"),
            }
        }
        Ok(entries)
    }

    pub async fn list_clients(&self) -> anyhow::Result<Vec<Client>> {
        const SQL: &str = concat!(
            "SELECT ",
            client_columns!(),
            " FROM clients WHERE client_id <> '~decoy~' ORDER BY partner_id, name, client_id"
        );
        let rows: Vec<ClientRow> = on_pool!(&self.db, pool => {
            sqlx::query_as(SQL).fetch_all(pool).await?
        });
        rows.into_iter().map(Client::try_from).collect()
    }

    /// Applies `update` and records `audit` atomically; returns false if the client does not exist.
    pub async fn update_client(
        &self,
        client_id: &str,
        update: &ClientUpdate,
        now: i64,
        audit: &AuditEvent,
    ) -> anyhow::Result<bool> {
        let scopes = update.scopes.as_ref().map(ToString::to_string);
        let (ttl_set, ttl) = match update.access_token_ttl {
            Some(value) => (true, value),
            None => (false, None),
        };
        // A DN replaces a SAN and the other way round: exactly one identifies the client.
        let tls_set = update.tls_subject.is_some() || update.tls_san.is_some();
        let (keys_set, jwks, jwks_uri) = match &update.keys {
            None => (false, None, None),
            Some(KeySourceUpdate::Document(doc)) => (true, Some(doc.as_str()), None),
            Some(KeySourceUpdate::Uri(uri)) => (true, None, Some(uri.as_str())),
        };
        on_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            let done = sqlx::query(
                "UPDATE clients SET name = COALESCE($2, name), scopes = COALESCE($3, scopes), \
                 access_token_ttl = CASE WHEN $4 THEN $5 ELSE access_token_ttl END, updated_at = $6, \
                 tls_subject = CASE WHEN $7 THEN $8 ELSE tls_subject END, \
                 tls_san = CASE WHEN $7 THEN $9 ELSE tls_san END, \
                 jwks = CASE WHEN $10 THEN $11 ELSE jwks END, \
                 jwks_uri = CASE WHEN $10 THEN $12 ELSE jwks_uri END \
                 WHERE client_id = $1",
            )
            .bind(client_id)
            .bind(update.name.as_deref())
            .bind(scopes.as_deref())
            .bind(ttl_set)
            .bind(ttl)
            .bind(now)
            .bind(tls_set)
            .bind(update.tls_subject.as_deref())
            .bind(update.tls_san.as_deref())
            .bind(keys_set)
            .bind(jwks)
            .bind(jwks_uri)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 0 {
                return Ok(false);
            }
            audit.insert(&mut *tx).await?;
            tx.commit().await?;
        });
        Ok(true)
    }

    /// A client's registered certificates, newest first.
    pub async fn client_certs(&self, client_id: &str) -> anyhow::Result<Vec<RegisteredCert>> {
        let rows: Vec<RegisteredCert> = on_pool!(&self.db, pool => {
            sqlx::query_as(
                "SELECT thumbprint, subject, not_after, created_at FROM client_certs \
                 WHERE client_id = $1 ORDER BY created_at DESC, thumbprint",
            )
            .bind(client_id)
            .fetch_all(pool)
            .await?
        });
        Ok(rows)
    }

    /// Registers one more certificate for a client; returns false if the client does not exist.
    /// A certificate registered already is a unique violation.
    pub async fn add_client_cert(
        &self,
        client_id: &str,
        cert: &NewCert,
        audit: &AuditEvent,
    ) -> anyhow::Result<bool> {
        let now = audit.at;
        on_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            let exists = sqlx::query("UPDATE clients SET updated_at = $2 WHERE client_id = $1")
                .bind(client_id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            if exists.rows_affected() == 0 {
                return Ok(false);
            }
            sqlx::query(INSERT_CERT)
                .bind(client_id)
                .bind(&cert.thumbprint)
                .bind(&cert.subject)
                .bind(cert.not_after)
                .bind(&cert.der)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            audit.insert(&mut *tx).await?;
            tx.commit().await?;
        });
        Ok(true)
    }

    /// Withdraws one registered certificate; returns false if the client has no such certificate.
    pub async fn remove_client_cert(
        &self,
        client_id: &str,
        thumbprint: &str,
        audit: &AuditEvent,
    ) -> anyhow::Result<bool> {
        on_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            let done = sqlx::query("DELETE FROM client_certs WHERE client_id = $1 AND thumbprint = $2")
                .bind(client_id)
                .bind(thumbprint)
                .execute(&mut *tx)
                .await?;
            if done.rows_affected() == 0 {
                return Ok(false);
            }
            sqlx::query("UPDATE clients SET updated_at = $2 WHERE client_id = $1")
                .bind(client_id)
                .bind(audit.at)
                .execute(&mut *tx)
                .await?;
            audit.insert(&mut *tx).await?;
            tx.commit().await?;
        });
        Ok(true)
    }

    /// Records a `private_key_jwt` assertion's `jti` as spent until `expires_at`: true the first
    /// time, false for a replay (on any instance sharing the database).
    pub async fn spend_assertion(
        &self,
        client_id: &str,
        jti: &str,
        expires_at: i64,
    ) -> anyhow::Result<bool> {
        let done = on_pool!(&self.db, pool => {
            sqlx::query(
                "INSERT INTO client_assertions (client_id, jti, expires_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (client_id, jti) DO NOTHING",
            )
            .bind(client_id)
            .bind(jti)
            .bind(expires_at)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(done == 1)
    }

    /// Forgets spent assertions that have expired (they would be refused as expired anyway).
    pub async fn purge_expired_assertions(&self, now: i64) -> anyhow::Result<u64> {
        let done = on_pool!(&self.db, pool => {
            sqlx::query("DELETE FROM client_assertions WHERE expires_at <= $1")
                .bind(now)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(done)
    }

    /// Disables (`Some(now)`) or enables (`None`) a client; returns false if it does not exist.
    pub async fn set_client_disabled(
        &self,
        client_id: &str,
        disabled_at: Option<i64>,
        now: i64,
        audit: &AuditEvent,
    ) -> anyhow::Result<bool> {
        on_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            let done = sqlx::query("UPDATE clients SET disabled_at = $2, updated_at = $3 WHERE client_id = $1")
                .bind(client_id)
                .bind(disabled_at)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            if done.rows_affected() == 0 {
                return Ok(false);
            }
            if disabled_at.is_some() {
                // A disabled client keeps nothing that could mint tokens later.
                sqlx::query("UPDATE refresh_tokens SET revoked_at = $2 WHERE client_id = $1 AND revoked_at IS NULL")
                    .bind(client_id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
            }
            audit.insert(&mut *tx).await?;
            tx.commit().await?;
        });
        Ok(true)
    }

    /// Deletes a client and (by cascade) its secrets; returns false if it does not exist.
    pub async fn delete_client(&self, client_id: &str, audit: &AuditEvent) -> anyhow::Result<bool> {
        on_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            let done = sqlx::query("DELETE FROM clients WHERE client_id = $1")
                .bind(client_id)
                .execute(&mut *tx)
                .await?;
            if done.rows_affected() == 0 {
                return Ok(false);
            }
            audit.insert(&mut *tx).await?;
            tx.commit().await?;
        });
        Ok(true)
    }

    /// Replaces every secret of a client with one new secret (used by the demo launcher, which
    /// cannot show a secret it only holds as a hash).
    pub async fn replace_client_secrets(
        &self,
        client_id: &str,
        secret_hash: &[u8],
        now: i64,
        audit: &AuditEvent,
    ) -> anyhow::Result<()> {
        on_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query("DELETE FROM client_secrets WHERE client_id = $1")
                .bind(client_id)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO client_secrets (id, client_id, secret_hash, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, NULL)",
            )
            .bind(uuid::Uuid::now_v7().to_string())
            .bind(client_id)
            .bind(secret_hash)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            audit.insert(&mut *tx).await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// Adds a new secret; the current one keeps working until `grace_until`, and any older one
    /// (from an earlier rotation) is dropped, so a client never holds more than two secrets.
    /// Returns false if the client does not exist.
    pub async fn rotate_client_secret(
        &self,
        client_id: &str,
        new_hash: &[u8],
        grace_until: i64,
        audit: &AuditEvent,
    ) -> anyhow::Result<bool> {
        let now = audit.at;
        on_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            let exists = sqlx::query("UPDATE clients SET updated_at = $2 WHERE client_id = $1")
                .bind(client_id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            if exists.rows_affected() == 0 {
                return Ok(false);
            }
            sqlx::query("DELETE FROM client_secrets WHERE client_id = $1 AND expires_at IS NOT NULL")
                .bind(client_id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("UPDATE client_secrets SET expires_at = $2 WHERE client_id = $1 AND expires_at IS NULL")
                .bind(client_id)
                .bind(grace_until)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO client_secrets (id, client_id, secret_hash, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, NULL)",
            )
            .bind(uuid::Uuid::now_v7().to_string())
            .bind(client_id)
            .bind(new_hash)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            audit.insert(&mut *tx).await?;
            tx.commit().await?;
        });
        Ok(true)
    }

    /// Every scope some enabled client may be granted, for the RFC 8414 metadata.
    pub async fn granted_scopes(&self) -> anyhow::Result<ScopeSet> {
        let rows: Vec<(String,)> = on_pool!(&self.db, pool => {
            sqlx::query_as("SELECT DISTINCT scopes FROM clients WHERE disabled_at IS NULL")
                .fetch_all(pool)
                .await?
        });
        let mut all = Vec::new();
        for (text,) in rows {
            all.extend(
                ScopeSet::parse(&text)
                    .context("stored scopes")?
                    .iter()
                    .cloned(),
            );
        }
        Ok(all.into_iter().collect())
    }
}

/// A `client_certs` row: client id, thumbprint, subject, `not_after`, `created_at`.
pub(super) type CertRow = (String, String, String, i64, i64);

/// Certificate rows grouped by their client.
pub(super) fn certs_by_client(
    rows: Vec<CertRow>,
) -> std::collections::HashMap<String, Vec<RegisteredCert>> {
    let mut by_client: std::collections::HashMap<String, Vec<RegisteredCert>> =
        std::collections::HashMap::new();
    for (client_id, thumbprint, subject, not_after, created_at) in rows {
        by_client
            .entry(client_id)
            .or_default()
            .push(RegisteredCert {
                thumbprint,
                subject,
                not_after,
                created_at,
            });
    }
    by_client
}
