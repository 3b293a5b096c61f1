//! Queries on `signing_keys`. Every lifecycle step (bootstrap, rotation, revocation, purge,
//! master-key rewrap) is a list of [`KeyChange`]s applied in one transaction, each of which must
//! touch exactly the row it names: if another process changed the keys in between, nothing is
//! applied. With the unique indexes on the active and pending states, this is what makes
//! concurrent rotations by several instances or admins safe without any lock in a process.

use keys::{Algorithm, KeyState, SealedHashKey, SealedKey, SigningKey};
use sqlx::FromRow;

use super::{AuditEvent, Store, is_unique_violation, on_pool};

/// A stored signing key. The private key stays sealed until the key ring opens it; algorithm and
/// state are read straight into their types, so an unknown value in the table is a load error,
/// never a string compared to a literal.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct SigningKeyRow {
    pub kid: String,
    #[sqlx(try_from = "String")]
    pub alg: Algorithm,
    #[sqlx(try_from = "String")]
    pub state: KeyState,
    pub public_jwk: String,
    pub private_key_sealed: Vec<u8>,
    pub created_at: i64,
    pub activated_at: Option<i64>,
    pub retired_at: Option<i64>,
}

impl SigningKeyRow {
    /// A new row for `key`, sealed as `sealed`, stored in `state` at `now`.
    pub fn new(
        key: &SigningKey,
        sealed: &SealedKey,
        state: KeyState,
        now: i64,
    ) -> anyhow::Result<SigningKeyRow> {
        Ok(SigningKeyRow {
            kid: key.kid().to_owned(),
            alg: key.alg(),
            state,
            public_jwk: serde_json::to_string(key.public_jwk())?,
            private_key_sealed: sealed.ciphertext().to_vec(),
            created_at: now,
            activated_at: (state == KeyState::Active).then_some(now),
            retired_at: None,
        })
    }

    /// The private key as stored, to open with the master key.
    pub fn sealed(&self) -> SealedKey {
        SealedKey::from_stored(self.kid.clone(), self.alg, self.private_key_sealed.clone())
    }
}

/// One step of a key-lifecycle transaction.
#[derive(Debug, Clone)]
pub enum KeyChange<'a> {
    /// Store a new key in the state its row names.
    Insert(&'a SigningKeyRow),
    /// The pending key `kid` starts signing.
    Activate(&'a str),
    /// The active key `kid` stops signing and stays published.
    Retire(&'a str),
    /// The key `kid` is unpublished at once (revocation, purge, or a replaced pending key).
    Delete(&'a str),
    /// The key gets its private key sealed anew (master-key rotation).
    Reseal(&'a SealedKey),
    /// A hash key (`hash_keys`) sealed anew (master-key rotation).
    ResealHashKey(&'a SealedHashKey),
    /// The hash key of this id dropped (its master key was lost).
    DeleteHashKey(&'a str),
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
    pub async fn signing_key_states(&self) -> anyhow::Result<Vec<(String, KeyState)>> {
        let rows: Vec<(String, String)> = on_pool!(&self.db, pool => {
            sqlx::query_as("SELECT kid, state FROM signing_keys ORDER BY kid").fetch_all(pool).await?
        });
        rows.into_iter()
            .map(|(kid, state)| Ok((kid, state.parse()?)))
            .collect()
    }

    /// The longest access-token lifetime any client has configured, if any overrides exist.
    pub async fn longest_client_ttl(&self) -> anyhow::Result<Option<i64>> {
        let (ttl,): (Option<i64>,) = on_pool!(&self.db, pool => {
            sqlx::query_as("SELECT MAX(access_token_ttl) FROM clients").fetch_one(pool).await?
        });
        Ok(ttl)
    }

    /// Every stored hash key, sealed (see migration 0010).
    pub async fn hash_keys(&self) -> anyhow::Result<Vec<SealedHashKey>> {
        let rows: Vec<(String, Vec<u8>)> = on_pool!(&self.db, pool => {
            sqlx::query_as("SELECT id, sealed FROM hash_keys ORDER BY id").fetch_all(pool).await?
        });
        Ok(rows
            .into_iter()
            .map(|(id, sealed)| SealedHashKey::from_stored(id, sealed))
            .collect())
    }

    /// Stores `sealed` unless a hash key of its id exists already (another process created it
    /// first); the caller reads back whichever was stored.
    pub async fn insert_hash_key(&self, sealed: &SealedHashKey, now: i64) -> anyhow::Result<()> {
        on_pool!(&self.db, pool => {
            sqlx::query(
                "INSERT INTO hash_keys (id, sealed, created_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (id) DO NOTHING",
            )
            .bind(sealed.id())
            .bind(sealed.ciphertext())
            .bind(now)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Applies `changes` and records `audit` atomically. Returns false, having changed nothing, if
    /// any step found its row gone or in another state, or if the result would break the
    /// one-active/one-pending rule: the keys changed under us, and the caller may look again.
    pub async fn apply_key_changes(
        &self,
        changes: &[KeyChange<'_>],
        audit: &AuditEvent,
    ) -> anyhow::Result<bool> {
        let now = audit.at;
        let result: Result<bool, sqlx::Error> = on_pool!(&self.db, pool => {
            async {
                let mut tx = pool.begin().await?;
                for change in changes {
                    let query = match change {
                        KeyChange::Insert(row) => sqlx::query(
                            "INSERT INTO signing_keys (kid, alg, state, public_jwk, private_key_sealed, \
                             created_at, activated_at, retired_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                        )
                        .bind(&row.kid)
                        .bind(row.alg.as_str())
                        .bind(row.state.as_str())
                        .bind(&row.public_jwk)
                        .bind(&row.private_key_sealed)
                        .bind(row.created_at)
                        .bind(row.activated_at)
                        .bind(row.retired_at),
                        KeyChange::Activate(kid) => sqlx::query(
                            "UPDATE signing_keys SET state = 'active', activated_at = $2 \
                             WHERE kid = $1 AND state = 'pending'",
                        )
                        .bind(*kid)
                        .bind(now),
                        KeyChange::Retire(kid) => sqlx::query(
                            "UPDATE signing_keys SET state = 'retired', retired_at = $2 \
                             WHERE kid = $1 AND state = 'active'",
                        )
                        .bind(*kid)
                        .bind(now),
                        KeyChange::Delete(kid) => {
                            sqlx::query("DELETE FROM signing_keys WHERE kid = $1").bind(*kid)
                        }
                        KeyChange::Reseal(sealed) => {
                            sqlx::query("UPDATE signing_keys SET private_key_sealed = $2 WHERE kid = $1")
                                .bind(sealed.kid())
                                .bind(sealed.ciphertext())
                        }
                        KeyChange::DeleteHashKey(id) => {
                            sqlx::query("DELETE FROM hash_keys WHERE id = $1").bind(*id)
                        }
                        KeyChange::ResealHashKey(sealed) => {
                            sqlx::query("UPDATE hash_keys SET sealed = $2 WHERE id = $1")
                                .bind(sealed.id())
                                .bind(sealed.ciphertext())
                        }
                    };
                    if query.execute(&mut *tx).await?.rows_affected() != 1 {
                        return Ok(false);
                    }
                }
                audit.insert(&mut *tx).await?;
                tx.commit().await?;
                Ok(true)
            }
            .await
        });
        match result {
            Ok(true) => {
                // Rare, and the keys that signed tokens must outlive a power loss: copied into
                // the database file at once, not left in SQLite's write-ahead log until the
                // audit writer's next checkpoint (see `crate::audit`).
                if let Err(err) = self.db.checkpoint().await {
                    tracing::warn!(
                        error = format!("{err:#}"),
                        "WAL checkpoint after a key change failed"
                    );
                }
                Ok(true)
            }
            Ok(false) => Ok(false),
            Err(err) if is_unique_violation(&err) => Ok(false),
            Err(err) => Err(err.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{AuditEvent, file_alone};

    #[tokio::test]
    async fn a_key_change_reaches_the_database_file_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let (db, path) = file_alone::service_store(dir.path(), "keys.db").await;
        let row = SigningKeyRow {
            kid: "k1".to_owned(),
            alg: keys::Algorithm::ES256,
            state: keys::KeyState::Pending,
            public_jwk: "{}".to_owned(),
            private_key_sealed: vec![1, 2, 3],
            created_at: 1,
            activated_at: None,
            retired_at: None,
        };
        let audit = AuditEvent::new("test", "key.create", 1, serde_json::json!({}));
        assert!(
            db.apply_key_changes(&[KeyChange::Insert(&row)], &audit)
                .await
                .unwrap()
        );
        // Automatic checkpoints are off for a service's pool.
        let (copied, _copy_dir) = file_alone::copy(&path).await;
        let kids: Vec<String> = copied
            .list_signing_keys()
            .await
            .unwrap()
            .into_iter()
            .map(|key| key.kid)
            .collect();
        assert_eq!(kids, ["k1"]);
        copied.close().await;
        db.close().await;
    }
}
