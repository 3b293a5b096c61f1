//! API keys: the credential of clients created with `--auth-method api_key`, presented to the
//! partner API on every request instead of a token. Generated like client secrets (256 bits from
//! the OS CSPRNG, shown once) with their own prefix, so that scanners find leaked ones. A key
//! names no client, so the server must find the client by the key itself; it is stored as an
//! HMAC-SHA-256 under a hash key of ours ([`keys::HashKey`], sealed under the master key in
//! `hash_keys`), never as the key or a plain hash: a copy of the database alone cannot even
//! confirm a candidate key. Lookups go through the in-memory directory (a map from the keyed
//! hash), and a found key is then compared again in constant time.

use keys::{HashKey, MasterKey, SealedHashKey};

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
    if let Some(sealed) = stored(db).await? {
        return open(&sealed, master);
    }
    let (_, sealed) = SealedHashKey::generate(HASH_KEY_ID, master)?;
    db.insert_hash_key(&sealed, crate::now()).await?;
    let sealed = stored(db).await?.ok_or_else(|| {
        anyhow::anyhow!("the API-key hash key was stored but cannot be read back")
    })?;
    open(&sealed, master)
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
