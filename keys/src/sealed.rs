//! Private keys at rest. A [`SealedKey`] is what the database stores: the PKCS#8 document sealed
//! under the master key with the `kid` as associated data. It is made by generating or importing
//! a key, opened straight into a [`SigningKey`], and re-sealed under another master key, all
//! inside this crate: the plaintext document never reaches a caller.

use std::fmt;

use crate::signing_key::{generate_pkcs8, pkcs8_from_pem};
use crate::{Algorithm, KeyError, MasterKey, SigningKey};

/// A private signing key sealed under a master key, as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedKey {
    kid: String,
    alg: Algorithm,
    ciphertext: Vec<u8>,
}

impl SealedKey {
    /// A new key of `alg`, sealed under `master`, and the same key opened for signing. An RS256
    /// key is generated as an imported one would be parsed: its PKCS#8 document goes through the
    /// same [`SigningKey`] parsing (ring) before it is sealed.
    pub fn generate(
        alg: Algorithm,
        master: &MasterKey,
    ) -> Result<(SigningKey, SealedKey), KeyError> {
        let pkcs8 = generate_pkcs8(alg)?;
        Self::seal_document(alg, &pkcs8, master)
    }

    /// A key imported from a PKCS#8 private key PEM (`-----BEGIN PRIVATE KEY-----`, as
    /// `openssl genpkey` writes it): a key made elsewhere, such as an RSA key larger than the
    /// ones generated here.
    pub fn import_pem(
        alg: Algorithm,
        pem: &str,
        master: &MasterKey,
    ) -> Result<(SigningKey, SealedKey), KeyError> {
        let pkcs8 = pkcs8_from_pem(pem)?;
        Self::seal_document(alg, &pkcs8, master)
    }

    fn seal_document(
        alg: Algorithm,
        pkcs8: &[u8],
        master: &MasterKey,
    ) -> Result<(SigningKey, SealedKey), KeyError> {
        let key = SigningKey::from_pkcs8(alg, pkcs8)?;
        let ciphertext = master.seal(pkcs8, key.kid().as_bytes())?;
        let sealed = SealedKey {
            kid: key.kid().to_owned(),
            alg,
            ciphertext,
        };
        Ok((key, sealed))
    }

    /// A stored key as read back: its `kid`, algorithm and sealed bytes.
    pub fn from_stored(kid: String, alg: Algorithm, ciphertext: Vec<u8>) -> SealedKey {
        SealedKey {
            kid,
            alg,
            ciphertext,
        }
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn alg(&self) -> Algorithm {
        self.alg
    }

    /// The sealed bytes (nonce, ciphertext, tag), to store.
    pub fn ciphertext(&self) -> &[u8] {
        &self.ciphertext
    }

    /// Opens the key for signing. Fails with [`KeyError::WrongMasterKey`] if `master` did not seal
    /// it or the bytes were moved to another `kid` (the `kid` is the associated data), and with
    /// [`KeyError::KidMismatch`] if the document inside is another key than the `kid` says.
    pub fn open(&self, master: &MasterKey) -> Result<SigningKey, KeyError> {
        let pkcs8 = master.open(&self.ciphertext, self.kid.as_bytes())?;
        let key = SigningKey::from_pkcs8(self.alg, &pkcs8)?;
        if key.kid() != self.kid {
            return Err(KeyError::KidMismatch(self.kid.clone()));
        }
        Ok(key)
    }

    /// The same key sealed under `new` instead of `current` (master-key rotation). The document
    /// is checked to be the key its `kid` names before it is sealed again.
    pub fn rewrap(&self, current: &MasterKey, new: &MasterKey) -> Result<SealedKey, KeyError> {
        let pkcs8 = current.open(&self.ciphertext, self.kid.as_bytes())?;
        let key = SigningKey::from_pkcs8(self.alg, &pkcs8)?;
        if key.kid() != self.kid {
            return Err(KeyError::KidMismatch(self.kid.clone()));
        }
        Ok(SealedKey {
            kid: self.kid.clone(),
            alg: self.alg,
            ciphertext: new.seal(&pkcs8, self.kid.as_bytes())?,
        })
    }
}

impl fmt::Debug for SealedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("sealed_bytes", &self.ciphertext.len())
            .finish()
    }
}

/// What only an insider with the master key could do, for tests that must know the plaintext
/// (to scan a database or logs for it, or to forge tokens with the real key). Compiled only with
/// the `dangerous-insider` feature, which only dev-dependencies turn on.
#[cfg(feature = "dangerous-insider")]
pub mod dangerous {
    use zeroize::Zeroizing;

    use super::SealedKey;
    use crate::{KeyError, MasterKey};

    /// The PKCS#8 document inside `sealed`.
    pub fn reveal_pkcs8(
        sealed: &SealedKey,
        master: &MasterKey,
    ) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        master.open(sealed.ciphertext(), sealed.kid().as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_key_opens_only_under_its_master_key_and_its_kid() {
        let master = MasterKey::generate().unwrap();
        let (key, sealed) = SealedKey::generate(Algorithm::ES256, &master).unwrap();
        assert_eq!(sealed.kid(), key.kid());
        assert_eq!(sealed.open(&master).unwrap().kid(), key.kid());
        let stranger = MasterKey::generate().unwrap();
        assert!(matches!(
            sealed.open(&stranger),
            Err(KeyError::WrongMasterKey)
        ));
        // The same bytes under another kid do not open: the kid is the associated data.
        let (other, _) = SealedKey::generate(Algorithm::ES256, &master).unwrap();
        let moved = SealedKey::from_stored(
            other.kid().to_owned(),
            Algorithm::ES256,
            sealed.ciphertext().to_vec(),
        );
        assert!(matches!(moved.open(&master), Err(KeyError::WrongMasterKey)));
    }

    #[test]
    fn a_rewrapped_key_opens_under_the_new_master_key_only() {
        let (old, new) = (
            MasterKey::generate().unwrap(),
            MasterKey::generate().unwrap(),
        );
        let (key, sealed) = SealedKey::generate(Algorithm::EdDSA, &old).unwrap();
        let rewrapped = sealed.rewrap(&old, &new).unwrap();
        assert_eq!(rewrapped.open(&new).unwrap().kid(), key.kid());
        assert!(rewrapped.open(&old).is_err());
        assert!(sealed.rewrap(&new, &old).is_err(), "the wrong current key");
    }

    #[test]
    fn a_generated_rsa_key_is_sealed_opened_and_rewrapped_like_any_other() {
        let (old, new) = (
            MasterKey::generate().unwrap(),
            MasterKey::generate().unwrap(),
        );
        let (key, sealed) = SealedKey::generate(Algorithm::RS256, &old).unwrap();
        assert_eq!(key.alg(), Algorithm::RS256);
        assert_eq!((sealed.kid(), sealed.alg()), (key.kid(), Algorithm::RS256));
        let opened = sealed.open(&old).unwrap();
        assert_eq!(opened.public_jwk(), key.public_jwk());
        let rewrapped = sealed.rewrap(&old, &new).unwrap();
        assert_eq!(rewrapped.open(&new).unwrap().kid(), key.kid());
        assert!(matches!(sealed.open(&new), Err(KeyError::WrongMasterKey)));
        // Stored under another algorithm, the document does not open as that algorithm's key.
        let mislabelled = SealedKey::from_stored(
            sealed.kid().to_owned(),
            Algorithm::ES256,
            sealed.ciphertext().to_vec(),
        );
        assert!(matches!(
            mislabelled.open(&old),
            Err(KeyError::MalformedPrivateKey(Algorithm::ES256))
        ));
    }

    #[test]
    fn debug_output_shows_no_key_bytes() {
        let master = MasterKey::generate().unwrap();
        let (_, sealed) = SealedKey::generate(Algorithm::ES256, &master).unwrap();
        let shown = format!("{sealed:?}");
        assert!(shown.contains(sealed.kid()) && shown.contains("sealed_bytes"));
        assert!(!shown.contains(&format!("{:?}", &sealed.ciphertext()[..8])));
    }
}
