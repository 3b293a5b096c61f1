//! Queries on `refresh_tokens` and `revoked_access_tokens`.

use sqlx::FromRow;

use super::{AuditEvent, Store, on_pool};

/// A stored refresh token (its hash, never the token).
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct RefreshRow {
    pub id: String,
    pub token_hash: Vec<u8>,
    pub client_id: String,
    pub family_id: String,
    pub scope: String,
    pub audiences: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

/// The outcome of trying to spend a refresh token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spend {
    /// This request spent it and stored its successor.
    Rotated,
    /// It was already spent or revoked: a replay, or the loser of a race.
    AlreadySpent,
}

impl Store {
    pub async fn insert_refresh_token(&self, row: &RefreshRow) -> anyhow::Result<()> {
        on_pool!(&self.db, pool => {
            sqlx::query(
                "INSERT INTO refresh_tokens (id, token_hash, client_id, family_id, scope, audiences, \
                 created_at, expires_at, used_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, NULL)",
            )
            .bind(&row.id)
            .bind(&row.token_hash)
            .bind(&row.client_id)
            .bind(&row.family_id)
            .bind(&row.scope)
            .bind(&row.audiences)
            .bind(row.created_at)
            .bind(row.expires_at)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    pub async fn refresh_token_by_hash(&self, hash: &[u8]) -> anyhow::Result<Option<RefreshRow>> {
        let row = on_pool!(&self.db, pool => {
            sqlx::query_as(
                "SELECT id, token_hash, client_id, family_id, scope, audiences, created_at, expires_at, \
                 used_at, revoked_at FROM refresh_tokens WHERE token_hash = $1",
            )
            .bind(hash)
            .fetch_optional(pool)
            .await?
        });
        Ok(row)
    }

    /// Spends `old_id` and stores `successor` in one transaction. The conditional update is the
    /// whole concurrency story: however many requests (or token-service instances) present the
    /// same token at once, the database lets exactly one of them flip `used_at`.
    pub async fn spend_refresh_token(
        &self,
        old_id: &str,
        successor: &RefreshRow,
        now: i64,
    ) -> anyhow::Result<Spend> {
        on_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            let spent = sqlx::query(
                "UPDATE refresh_tokens SET used_at = $2 WHERE id = $1 AND used_at IS NULL AND revoked_at IS NULL",
            )
            .bind(old_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            if spent.rows_affected() != 1 {
                return Ok(Spend::AlreadySpent);
            }
            sqlx::query(
                "INSERT INTO refresh_tokens (id, token_hash, client_id, family_id, scope, audiences, \
                 created_at, expires_at, used_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, NULL)",
            )
            .bind(&successor.id)
            .bind(&successor.token_hash)
            .bind(&successor.client_id)
            .bind(&successor.family_id)
            .bind(&successor.scope)
            .bind(&successor.audiences)
            .bind(successor.created_at)
            .bind(successor.expires_at)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        });
        Ok(Spend::Rotated)
    }

    /// Revokes every live token of a family; returns how many were live.
    pub async fn revoke_refresh_family(
        &self,
        family_id: &str,
        now: i64,
        audit: &AuditEvent,
    ) -> anyhow::Result<u64> {
        let count = on_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            let done = sqlx::query(
                "UPDATE refresh_tokens SET revoked_at = $2 WHERE family_id = $1 AND revoked_at IS NULL",
            )
            .bind(family_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            audit.insert(&mut *tx).await?;
            tx.commit().await?;
            done.rows_affected()
        });
        Ok(count)
    }

    /// Revokes every live refresh token of a client; returns how many.
    pub async fn revoke_client_refresh_tokens(
        &self,
        client_id: &str,
        now: i64,
        audit: &AuditEvent,
    ) -> anyhow::Result<u64> {
        let count = on_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            let done = sqlx::query(
                "UPDATE refresh_tokens SET revoked_at = $2 WHERE client_id = $1 AND revoked_at IS NULL",
            )
            .bind(client_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            audit.insert(&mut *tx).await?;
            tx.commit().await?;
            done.rows_affected()
        });
        Ok(count)
    }

    /// Records a revoked access token until it expires.
    pub async fn revoke_access_token(
        &self,
        jti: &str,
        client_id: &str,
        expires_at: i64,
        audit: &AuditEvent,
    ) -> anyhow::Result<()> {
        on_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "INSERT INTO revoked_access_tokens (jti, client_id, expires_at, revoked_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (jti) DO NOTHING",
            )
            .bind(jti)
            .bind(client_id)
            .bind(expires_at)
            .bind(audit.at)
            .execute(&mut *tx)
            .await?;
            audit.insert(&mut *tx).await?;
            tx.commit().await?;
        });
        Ok(())
    }

    pub async fn is_access_token_revoked(&self, jti: &str) -> anyhow::Result<bool> {
        let row: Option<(String,)> = on_pool!(&self.db, pool => {
            sqlx::query_as("SELECT jti FROM revoked_access_tokens WHERE jti = $1")
                .bind(jti)
                .fetch_optional(pool)
                .await?
        });
        Ok(row.is_some())
    }

    /// Deletes expired refresh tokens (spent and revoked ones included: reuse detection needs a
    /// spent token only while it could still be presented) and expired revocation records.
    pub async fn purge_expired_tokens(&self, now: i64) -> anyhow::Result<(u64, u64)> {
        let (refresh, access) = on_pool!(&self.db, pool => {
            let refresh = sqlx::query("DELETE FROM refresh_tokens WHERE expires_at <= $1")
                .bind(now)
                .execute(pool)
                .await?
                .rows_affected();
            let access = sqlx::query("DELETE FROM revoked_access_tokens WHERE expires_at <= $1")
                .bind(now)
                .execute(pool)
                .await?
                .rows_affected();
            (refresh, access)
        });
        Ok((refresh, access))
    }

    /// How many refresh tokens are stored, for tests and operators.
    pub async fn count_refresh_tokens(&self) -> anyhow::Result<i64> {
        let (n,): (i64,) = on_pool!(&self.db, pool => {
            sqlx::query_as("SELECT COUNT(*) FROM refresh_tokens").fetch_one(pool).await?
        });
        Ok(n)
    }
}
