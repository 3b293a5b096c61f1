//! API keys: the credential of clients created with `--auth-method api_key`, presented to the
//! partner API on every request instead of a token. Generated like client secrets (256 bits from
//! the OS CSPRNG, shown once) with their own prefix, so that scanners find leaked ones. A key
//! names no client, so the server must find the client by the key itself; it is stored as an
//! HMAC-SHA-256 under a hash key of ours ([`keys::HashKey`], sealed under the master key in
//! `hash_keys`), never as the key or a plain hash: a copy of the database alone cannot even
//! confirm a candidate key. Lookups go through the in-memory directory (a map from the keyed
//! hash), and a found key is then compared again in constant time.

use std::sync::Arc;

use arc_swap::ArcSwap;
use keys::{HashKey, MasterKey, SealedHashKey};

use crate::signing::MasterKeySource;
use crate::store::Store;

/// Every API key starts with this.
pub const API_KEY_PREFIX: &str = "pak_";

/// The id of the hash key that hashes API keys.
pub const HASH_KEY_ID: &str = "api-keys";

/// Characters after the prefix: 256 bits in unpadded base64url.
const KEY_CHARS: usize = 43;

/// Whether `text` has the form of an API key: the prefix and 43 base64url characters. Anything
/// else is not looked up at all.
pub fn looks_like_api_key(text: &str) -> bool {
    text.strip_prefix(API_KEY_PREFIX).is_some_and(|rest| {
        rest.len() == KEY_CHARS
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

/// The API-key hash key, opened under `master`; created and stored on first use (by whichever
/// process gets there first: the others read back the one stored).
pub async fn hash_key(db: &Store, master: &MasterKey) -> anyhow::Result<HashKey> {
    Ok(held(db, master).await?.key)
}

/// The hash key as a running server holds it: opened (or created) at start, then kept in step
/// with the stored one at each key introspection. A rewrap re-seals it (the same key: nothing
/// changes); a recovery from a lost master key deletes it, and from then on no key is active
/// until the CLI issues one under the new master key, which creates a new hash key that the
/// server then opens (reading the master key file again if it must). A stored key the server
/// cannot open yet (a rewrap whose new master key file is not in place) leaves the held one in
/// use, with a warning.
pub struct ApiKeyHasher {
    held: ArcSwap<Option<Held>>,
}

struct Held {
    sealed: SealedHashKey,
    key: HashKey,
}

impl ApiKeyHasher {
    /// Opens the stored hash key under `master`, creating it on first use.
    pub async fn load(db: &Store, master: &MasterKey) -> anyhow::Result<ApiKeyHasher> {
        let held = held(db, master).await?;
        Ok(ApiKeyHasher {
            held: ArcSwap::from_pointee(Some(held)),
        })
    }

    /// HMAC-SHA-256 of `data` under the hash key held; `None` while there is none (after a
    /// recovery from a lost master key, until a key is issued again).
    pub fn hash(&self, data: &[u8]) -> Option<[u8; 32]> {
        self.held
            .load()
            .as_ref()
            .as_ref()
            .map(|held| held.key.hash(data))
    }

    /// The hash key held, for issuing keys in-process (tests, the demo).
    pub fn current(&self) -> Option<HashKey> {
        self.held
            .load()
            .as_ref()
            .as_ref()
            .map(|held| held.key.clone())
    }

    /// Brings the held key in step with the stored one (one read of `hash_keys`).
    pub async fn refresh(&self, db: &Store, master: &MasterKeySource) -> anyhow::Result<()> {
        let Some(sealed) = stored(db).await? else {
            self.held.store(Arc::new(None));
            return Ok(());
        };
        if self.held.load().as_ref().as_ref().map(|h| &h.sealed) == Some(&sealed) {
            return Ok(());
        }
        let key = match sealed.open(&master.get()) {
            Ok(key) => key,
            Err(_) => match master
                .reload()
                .ok()
                .and_then(|()| sealed.open(&master.get()).ok())
            {
                Some(key) => key,
                None => {
                    tracing::warn!(
                        "the stored API-key hash key does not open under the master key; keeping the one held (put the new master key file in place after a rewrap)"
                    );
                    return Ok(());
                }
            },
        };
        self.held.store(Arc::new(Some(Held { sealed, key })));
        Ok(())
    }
}

/// The stored hash key, opened under `master`; created and stored first if there is none.
async fn held(db: &Store, master: &MasterKey) -> anyhow::Result<Held> {
    if let Some(sealed) = stored(db).await? {
        let key = open(&sealed, master)?;
        return Ok(Held { sealed, key });
    }
    let (_, sealed) = SealedHashKey::generate(HASH_KEY_ID, master)?;
    db.insert_hash_key(&sealed, crate::now()).await?;
    let sealed = stored(db).await?.ok_or_else(|| {
        anyhow::anyhow!("the API-key hash key was stored but cannot be read back")
    })?;
    let key = open(&sealed, master)?;
    Ok(Held { sealed, key })
}

async fn stored(db: &Store) -> anyhow::Result<Option<SealedHashKey>> {
    Ok(db
        .hash_keys()
        .await?
        .into_iter()
        .find(|k| k.id() == HASH_KEY_ID))
}

fn open(sealed: &SealedHashKey, master: &MasterKey) -> anyhow::Result<HashKey> {
    sealed.open(master).map_err(|err| {
        anyhow::anyhow!(
            "cannot open the API-key hash key ({err}): the master key is not the one it was sealed under"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::ClientSecret;

    #[test]
    fn generated_keys_have_the_form_and_nothing_else_does() {
        let key = ClientSecret::generate_api_key().unwrap();
        assert!(looks_like_api_key(key.expose()), "{}", key.expose().len());
        let secret = ClientSecret::generate().unwrap();
        assert!(!looks_like_api_key(secret.expose()));
        for text in [
            "pak_",
            "pak_short",
            &format!("pak_{}", "a".repeat(42)),
            &format!("pak_{}", "a".repeat(44)),
            &format!("pak_{}=", "a".repeat(42)),
            &format!("pak_{}+", "a".repeat(42)),
            &format!("PAK_{}", "a".repeat(43)),
            &format!("pak_{}é", "a".repeat(41)),
        ] {
            assert!(!looks_like_api_key(text), "{text}");
        }
    }
}
