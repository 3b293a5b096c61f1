//! The secret key of a keyed hash (HMAC-SHA-256), for credentials the server must find by their
//! value rather than check against a known client: API keys. A keyed hash rather than a plain
//! SHA-256 means that a copy of the database alone cannot even tell whether a candidate key (one
//! seen in a log, say) is valid. At rest the hash key is sealed under the master key like a
//! signing key ([`SealedHashKey`]), with its id as associated data; it is re-sealed, never
//! replaced, when the master key changes, so the stored hashes stay valid.

use std::fmt;

use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

use crate::{KeyError, MasterKey};

/// Bytes of a hash key: 256 bits, the output size of SHA-256 (RFC 2104 §3).
const HASH_KEY_BYTES: usize = 32;

/// An opened hash key: computes keyed hashes, never shows its bytes.
#[derive(Clone)]
pub struct HashKey {
    id: String,
    key: hmac::Key,
}

impl HashKey {
    /// The id it is stored under.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// HMAC-SHA-256 of `data` under this key.
    pub fn hash(&self, data: &[u8]) -> [u8; 32] {
        let tag = hmac::sign(&self.key, data);
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }
}

impl fmt::Debug for HashKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HashKey").field("id", &self.id).finish()
    }
}

/// A hash key sealed under a master key, as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedHashKey {
    id: String,
    ciphertext: Vec<u8>,
}

impl SealedHashKey {
    /// A new random hash key named `id`, sealed under `master`, and the same key opened.
    pub fn generate(id: &str, master: &MasterKey) -> Result<(HashKey, SealedHashKey), KeyError> {
        let mut bytes = Zeroizing::new([0u8; HASH_KEY_BYTES]);
        SystemRandom::new()
            .fill(bytes.as_mut())
            .map_err(|_| KeyError::Generation)?;
        let sealed = SealedHashKey {
            id: id.to_owned(),
            ciphertext: master.seal(bytes.as_ref(), &associated_data(id))?,
        };
        Ok((opened(id, bytes.as_ref()), sealed))
    }

    /// A stored hash key as read back.
    pub fn from_stored(id: String, ciphertext: Vec<u8>) -> SealedHashKey {
        SealedHashKey { id, ciphertext }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// The sealed bytes (nonce, ciphertext, tag), to store.
    pub fn ciphertext(&self) -> &[u8] {
        &self.ciphertext
    }

    /// Opens the key. Fails with [`KeyError::WrongMasterKey`] if `master` did not seal it or the
    /// bytes were moved to another id.
    pub fn open(&self, master: &MasterKey) -> Result<HashKey, KeyError> {
        let bytes = master.open(&self.ciphertext, &associated_data(&self.id))?;
        if bytes.len() != HASH_KEY_BYTES {
            return Err(KeyError::WrongMasterKey);
        }
        Ok(opened(&self.id, &bytes))
    }

    /// The same key sealed under `new` instead of `current` (master-key rotation).
    pub fn rewrap(&self, current: &MasterKey, new: &MasterKey) -> Result<SealedHashKey, KeyError> {
        let aad = associated_data(&self.id);
        let bytes = current.open(&self.ciphertext, &aad)?;
        Ok(SealedHashKey {
            id: self.id.clone(),
            ciphertext: new.seal(&bytes, &aad)?,
        })
    }
}

impl fmt::Debug for SealedHashKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedHashKey")
            .field("id", &self.id)
            .field("sealed_bytes", &self.ciphertext.len())
            .finish()
    }
}

/// The associated data of a sealed hash key: its id, in a namespace of its own so that a
/// signing key's sealed bytes (whose associated data is a bare `kid`) never open as a hash key.
fn associated_data(id: &str) -> Vec<u8> {
    format!("hash-key:{id}").into_bytes()
}

fn opened(id: &str, bytes: &[u8]) -> HashKey {
    HashKey {
        id: id.to_owned(),
        key: hmac::Key::new(hmac::HMAC_SHA256, bytes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Algorithm, SealedKey};

    #[test]
    fn a_sealed_hash_key_opens_under_its_master_key_and_hashes_the_same() {
        let master = MasterKey::generate().unwrap();
        let (key, sealed) = SealedHashKey::generate("api-keys", &master).unwrap();
        let reopened = sealed.open(&master).unwrap();
        assert_eq!(reopened.hash(b"pak_x"), key.hash(b"pak_x"));
        assert_ne!(key.hash(b"pak_x"), key.hash(b"pak_y"));
        // Keyed: another key, or a plain SHA-256, gives another value.
        let (other, _) = SealedHashKey::generate("api-keys", &master).unwrap();
        assert_ne!(other.hash(b"pak_x"), key.hash(b"pak_x"));
        let plain = ring::digest::digest(&ring::digest::SHA256, b"pak_x");
        assert_ne!(plain.as_ref(), key.hash(b"pak_x"));
    }

    #[test]
    fn a_hash_key_opens_under_no_other_master_key_or_id() {
        let master = MasterKey::generate().unwrap();
        let (_, sealed) = SealedHashKey::generate("api-keys", &master).unwrap();
        let stranger = MasterKey::generate().unwrap();
        assert!(matches!(
            sealed.open(&stranger),
            Err(KeyError::WrongMasterKey)
        ));
        let moved = SealedHashKey::from_stored("other".into(), sealed.ciphertext().to_vec());
        assert!(matches!(moved.open(&master), Err(KeyError::WrongMasterKey)));
        // A signing key's sealed bytes stored under its kid do not open as a hash key.
        let (signing, sealed_signing) = SealedKey::generate(Algorithm::ES256, &master).unwrap();
        let confused = SealedHashKey::from_stored(
            signing.kid().to_owned(),
            sealed_signing.ciphertext().to_vec(),
        );
        assert!(matches!(
            confused.open(&master),
            Err(KeyError::WrongMasterKey)
        ));
    }

    #[test]
    fn a_rewrapped_hash_key_hashes_the_same_under_the_new_master_key_only() {
        let (old, new) = (
            MasterKey::generate().unwrap(),
            MasterKey::generate().unwrap(),
        );
        let (key, sealed) = SealedHashKey::generate("api-keys", &old).unwrap();
        let rewrapped = sealed.rewrap(&old, &new).unwrap();
        assert_eq!(rewrapped.open(&new).unwrap().hash(b"k"), key.hash(b"k"));
        assert!(rewrapped.open(&old).is_err());
        assert!(sealed.rewrap(&new, &old).is_err(), "the wrong current key");
    }

    #[test]
    fn debug_output_shows_no_key_bytes() {
        let master = MasterKey::generate().unwrap();
        let (key, sealed) = SealedHashKey::generate("api-keys", &master).unwrap();
        assert_eq!(format!("{key:?}"), "HashKey { id: \"api-keys\" }");
        let shown = format!("{sealed:?}");
        assert!(
            shown.contains("sealed_bytes")
                && !shown.contains(&format!("{:?}", &sealed.ciphertext()[..8]))
        );
    }
}
