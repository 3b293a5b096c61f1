//! Queries on `signing_keys`.

use sqlx::FromRow;

use super::{AuditEvent, Store, is_unique_violation, on_pool};

/// A stored signing key. The private key stays sealed until the key ring opens it.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct SigningKeyRow {
    pub kid: String,
    pub alg: String,
    pub state: String,
    pub public_jwk: String,
    pub private_key_sealed: Vec<u8>,
    pub created_at: i64,
    pub activated_at: Option<i64>,
    pub retired_at: Option<i64>,
}

macro_rules! key_columns {
    () => {
        "kid, alg, state, public_jwk, private_key_sealed, created_at, activated_at, retired_at"
    };
}

impl Store {
    /// Every stored key, oldest first.
    pub async fn list_signing_keys(&self) -> anyhow::Result<Vec<SigningKeyRow>> {
        const SQL: &str = concat!(
            "SELECT ",
            key_columns!(),
            " FROM signing_keys ORDER BY created_at, kid"
        );
        let rows = on_pool!(&self.db, pool => sqlx::query_as(SQL).fetch_all(pool).await?);
        Ok(rows)
    }

    /// A cheap summary of the key table (kid and state of every key), polled by running servers
    /// to notice CLI changes without decrypting anything.
    pub async fn signing_key_states(&self) -> anyhow::Result<Vec<(String, String)>> {
        let rows = on_pool!(&self.db, pool => {
            sqlx::query_as("SELECT kid, state FROM signing_keys ORDER BY kid").fetch_all(pool).await?
        });
        Ok(rows)
    }

    /// Makes `new_key` the active key and retires the previous active key, atomically.
    ///
    /// With `only_if_none_active`, nothing happens when an active key already exists (used when
    /// several instances start at once on one database; the unique index on the active state
    /// settles any race). Returns whether the key was stored.
    pub async fn activate_new_key(
        &self,
        new_key: &SigningKeyRow,
        only_if_none_active: bool,
        audit: &AuditEvent,
    ) -> anyhow::Result<bool> {
        let now = audit.at;
        let result: Result<bool, sqlx::Error> = on_pool!(&self.db, pool => {
            async {
                let mut tx = pool.begin().await?;
                let (active,): (i64,) =
                    sqlx::query_as("SELECT COUNT(*) FROM signing_keys WHERE state = 'active'")
                        .fetch_one(&mut *tx)
                        .await?;
                if only_if_none_active && active > 0 {
                    return Ok(false);
                }
                sqlx::query("UPDATE signing_keys SET state = 'retired', retired_at = $1 WHERE state = 'active'")
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(
                    "INSERT INTO signing_keys (kid, alg, state, public_jwk, private_key_sealed, \
                     created_at, activated_at, retired_at) VALUES ($1, $2, 'active', $3, $4, $5, $5, NULL)",
                )
                .bind(&new_key.kid)
                .bind(&new_key.alg)
                .bind(&new_key.public_jwk)
                .bind(&new_key.private_key_sealed)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                audit.insert(&mut *tx).await?;
                tx.commit().await?;
                Ok(true)
            }
            .await
        });
        match result {
            Ok(stored) => Ok(stored),
            // Another instance activated a key between our check and our insert.
            Err(err) if only_if_none_active && is_unique_violation(&err) => Ok(false),
            Err(err) => Err(err.into()),
        }
    }
}
