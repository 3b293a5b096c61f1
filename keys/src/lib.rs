//! Signing-key lifecycle: generation, encryption at rest, JWK/JWKS publication, and a ring crypto provider for jsonwebtoken.

mod hash_key;
mod jwk;
mod master_key;
mod provider;
mod rsa_keygen;
mod sealed;
mod signing_key;
pub mod verify;

use std::fmt;
use std::str::FromStr;

pub use hash_key::{HashKey, SealedHashKey};
pub use jwk::{jwk_set, thumbprint};
pub use master_key::{LoadedMasterKey, MasterKey};
pub use provider::{RING_PROVIDER, install_crypto_provider};
pub use sealed::SealedKey;
#[cfg(feature = "dangerous-insider")]
pub use sealed::dangerous;
pub use signing_key::SigningKey;

/// The algorithms this service signs access tokens with. Keys of every one of them can be
/// generated ([`SealedKey::generate`]) or imported from a PKCS#8 PEM ([`SealedKey::import_pem`]);
/// ring signs with all of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Algorithm {
    /// ECDSA over P-256 with SHA-256, the default.
    ES256,
    /// Ed25519.
    EdDSA,
    /// RSASSA-PKCS1-v1_5 with SHA-256, for verifiers (some API gateways) that accept only RSA.
    RS256,
}

impl Algorithm {
    /// The JOSE name, as it appears in a token header and a JWK `alg` member.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::ES256 => "ES256",
            Algorithm::EdDSA => "EdDSA",
            Algorithm::RS256 => "RS256",
        }
    }

    /// The same algorithm as jsonwebtoken names it, for building a `Validation`.
    pub fn to_jwt(self) -> jsonwebtoken::Algorithm {
        match self {
            Algorithm::ES256 => jsonwebtoken::Algorithm::ES256,
            Algorithm::EdDSA => jsonwebtoken::Algorithm::EdDSA,
            Algorithm::RS256 => jsonwebtoken::Algorithm::RS256,
        }
    }
}

impl FromStr for Algorithm {
    type Err = KeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ES256" => Ok(Algorithm::ES256),
            "EdDSA" => Ok(Algorithm::EdDSA),
            "RS256" => Ok(Algorithm::RS256),
            other => Err(KeyError::UnsupportedAlgorithm(other.to_owned())),
        }
    }
}

impl TryFrom<String> for Algorithm {
    type Error = KeyError;

    /// For reading the algorithm of a stored key straight into the type.
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a signing key is in its rotation.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum KeyState {
    /// Published in the JWKS so verifiers cache it, but not yet signing.
    Pending,
    /// The one key that signs new tokens.
    Active,
    /// No longer signing, still published until every token it signed has expired.
    Retired,
}

impl KeyState {
    /// The lowercase name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Pending => "pending",
            KeyState::Active => "active",
            KeyState::Retired => "retired",
        }
    }
}

impl FromStr for KeyState {
    type Err = KeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pending" => Ok(KeyState::Pending),
            "active" => Ok(KeyState::Active),
            "retired" => Ok(KeyState::Retired),
            other => Err(KeyError::UnknownKeyState(other.to_owned())),
        }
    }
}

impl TryFrom<String> for KeyState {
    type Error = KeyError;

    /// For reading the state of a stored key straight into the type.
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl fmt::Display for KeyState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything that can go wrong with keys.
///
/// Messages are one line and never contain key material, so they are safe to log.
#[derive(thiserror::Error, Debug)]
pub enum KeyError {
    /// The system random source failed while generating a key or a nonce.
    #[error("could not generate random key material: system random source failed")]
    Generation,
    /// Stored or supplied private key bytes are not a valid PKCS#8 key for the algorithm.
    #[error("private key is not a valid PKCS#8 {0} key")]
    MalformedPrivateKey(Algorithm),
    /// AEAD authentication failed: the master key is not the one that sealed the data, the
    /// ciphertext was altered, or it belongs to another row.
    #[error("cannot decrypt private key: wrong master key or tampered ciphertext")]
    WrongMasterKey,
    /// Encryption failed; ring only refuses inputs far larger than any key.
    #[error("cannot encrypt private key")]
    Seal,
    /// The master key file is missing or its contents are not a master key. The message says
    /// which (it names the file, when there is one), so callers add nothing to it.
    #[error("{0}")]
    MasterKeyFile(String),
    /// Reading or writing a key file failed.
    #[error("I/O error on {}: {source}", .path.display())]
    Io {
        /// The file being read or written.
        path: std::path::PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Claims could not be serialized to JSON.
    #[error("cannot serialize token claims: {0}")]
    Json(#[from] serde_json::Error),
    /// Signing with the private key failed.
    #[error("signing failed")]
    Signing,
    /// An algorithm name this service does not sign with.
    #[error("unsupported signing algorithm {0:?} (expected \"ES256\", \"EdDSA\" or \"RS256\")")]
    UnsupportedAlgorithm(String),
    /// A PEM file that is not a PKCS#8 private key.
    #[error("not a PKCS#8 private key PEM: {0}")]
    Pem(&'static str),
    /// A sealed key opened into another key than its `kid` names.
    #[error("stored key {0} does not match its kid")]
    KidMismatch(String),
    /// A key state name that is not one of pending, active, retired.
    #[error("unknown key state {0:?} (expected \"pending\", \"active\" or \"retired\")")]
    UnknownKeyState(String),
    /// The JWK has no RFC 7638 thumbprint (an unknown key type or a curve that does not fit it).
    #[error("JWK has no RFC 7638 thumbprint: {0}")]
    UnsupportedJwk(&'static str),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn algorithm_names_round_trip() {
        for alg in [Algorithm::ES256, Algorithm::EdDSA, Algorithm::RS256] {
            assert_eq!(alg.as_str().parse::<Algorithm>().unwrap(), alg);
            assert_eq!(alg.to_string(), alg.as_str());
            assert_eq!(
                serde_json::to_string(&alg).unwrap(),
                format!("\"{}\"", alg.as_str())
            );
        }
        assert!(matches!(
            "HS256".parse::<Algorithm>(),
            Err(KeyError::UnsupportedAlgorithm(_))
        ));
        assert!("es256".parse::<Algorithm>().is_err());
        assert_eq!(Algorithm::ES256.to_jwt(), jsonwebtoken::Algorithm::ES256);
        assert_eq!(Algorithm::EdDSA.to_jwt(), jsonwebtoken::Algorithm::EdDSA);
    }

    #[test]
    fn key_state_names_round_trip() {
        for state in [KeyState::Pending, KeyState::Active, KeyState::Retired] {
            assert_eq!(state.as_str().parse::<KeyState>().unwrap(), state);
            assert_eq!(state.to_string(), state.as_str());
        }
        assert!(matches!(
            "Active".parse::<KeyState>(),
            Err(KeyError::UnknownKeyState(_))
        ));
    }
}
