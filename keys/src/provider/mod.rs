//! A jsonwebtoken `CryptoProvider` over ring.
//!
//! jsonwebtoken 12 is built without a crypto backend in this workspace, so every `encode`,
//! `decode` and JWK helper goes through the functions here. Each factory parses its key once,
//! when jsonwebtoken asks for a signer or verifier, and reports unusable keys and algorithms ring
//! cannot do as errors, never panics.

mod der;
#[cfg(test)]
mod tests;

use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::{Error, ErrorKind, Result};
use jsonwebtoken::jwk::{EllipticCurve, ThumbprintHash};
use jsonwebtoken::signature::{self, Signer, Verifier};
use jsonwebtoken::{Algorithm, DecodingKey, DecodingKeyKind, EncodingKey};
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED,
    ECDSA_P384_SHA384_FIXED_SIGNING, ED25519, EcdsaKeyPair, EcdsaSigningAlgorithm, Ed25519KeyPair,
    KeyPair, RsaEncoding, RsaKeyPair, RsaParameters, RsaPublicKeyComponents, UnparsedPublicKey,
    VerificationAlgorithm,
};
use ring::{digest, hmac};

/// jsonwebtoken CryptoProvider implemented over ring.
pub static RING_PROVIDER: CryptoProvider = CryptoProvider {
    signer_factory: new_signer,
    verifier_factory: new_verifier,
    key_utils: KeyUtils {
        rsa_pub_components_from_private_key,
        rsa_pub_components_from_public_key,
        ec_pub_components_from_private_key,
        ed_pub_components_from_private_key,
        compute_digest,
    },
};

/// Installs [`RING_PROVIDER`] as jsonwebtoken's process default. Idempotent and safe to call from
/// many threads and tests: when a provider is already installed, that one stays.
pub fn install_crypto_provider() {
    // The only error is "already installed", which is the state we want.
    let _ = RING_PROVIDER.install_default();
}

fn new_signer(alg: &Algorithm, key: &EncodingKey) -> Result<Box<dyn JwtSigner>> {
    let alg = *alg;
    // A key of another family would otherwise be misread, e.g. an HMAC secret parsed as DER.
    if key.family() != alg.family() {
        return Err(ErrorKind::InvalidKeyFormat.into());
    }
    let der = key.as_bytes();
    Ok(match alg {
        Algorithm::HS256 => HmacSigner::boxed(alg, hmac::HMAC_SHA256, der),
        Algorithm::HS384 => HmacSigner::boxed(alg, hmac::HMAC_SHA384, der),
        Algorithm::HS512 => HmacSigner::boxed(alg, hmac::HMAC_SHA512, der),
        Algorithm::ES256 => EcdsaSigner::boxed(alg, &ECDSA_P256_SHA256_FIXED_SIGNING, der)?,
        Algorithm::ES384 => EcdsaSigner::boxed(alg, &ECDSA_P384_SHA384_FIXED_SIGNING, der)?,
        Algorithm::RS256 => RsaSigner::boxed(alg, &ring::signature::RSA_PKCS1_SHA256, der)?,
        Algorithm::RS384 => RsaSigner::boxed(alg, &ring::signature::RSA_PKCS1_SHA384, der)?,
        Algorithm::RS512 => RsaSigner::boxed(alg, &ring::signature::RSA_PKCS1_SHA512, der)?,
        Algorithm::PS256 => RsaSigner::boxed(alg, &ring::signature::RSA_PSS_SHA256, der)?,
        Algorithm::PS384 => RsaSigner::boxed(alg, &ring::signature::RSA_PSS_SHA384, der)?,
        Algorithm::PS512 => RsaSigner::boxed(alg, &ring::signature::RSA_PSS_SHA512, der)?,
        Algorithm::EdDSA => Box::new(EdDsaSigner(ed25519_from_pkcs8(der)?)),
        _ => return Err(ErrorKind::UnsupportedAlgorithm.into()),
    })
}

fn new_verifier(alg: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>> {
    let alg = *alg;
    // Checking the family stops algorithm confusion, such as an RSA public key used as an HMAC
    // secret by a token that claims HS256.
    if key.family() != alg.family() {
        return Err(ErrorKind::InvalidKeyFormat.into());
    }
    Ok(match alg {
        Algorithm::HS256 => HmacVerifier::boxed(alg, hmac::HMAC_SHA256, key)?,
        Algorithm::HS384 => HmacVerifier::boxed(alg, hmac::HMAC_SHA384, key)?,
        Algorithm::HS512 => HmacVerifier::boxed(alg, hmac::HMAC_SHA512, key)?,
        Algorithm::ES256 => PublicKeyVerifier::boxed(alg, &ECDSA_P256_SHA256_FIXED, key)?,
        Algorithm::ES384 => PublicKeyVerifier::boxed(alg, &ECDSA_P384_SHA384_FIXED, key)?,
        Algorithm::EdDSA => PublicKeyVerifier::boxed(alg, &ED25519, key)?,
        Algorithm::RS256 => {
            RsaVerifier::boxed(alg, &ring::signature::RSA_PKCS1_2048_8192_SHA256, key)?
        }
        Algorithm::RS384 => {
            RsaVerifier::boxed(alg, &ring::signature::RSA_PKCS1_2048_8192_SHA384, key)?
        }
        Algorithm::RS512 => {
            RsaVerifier::boxed(alg, &ring::signature::RSA_PKCS1_2048_8192_SHA512, key)?
        }
        Algorithm::PS256 => {
            RsaVerifier::boxed(alg, &ring::signature::RSA_PSS_2048_8192_SHA256, key)?
        }
        Algorithm::PS384 => {
            RsaVerifier::boxed(alg, &ring::signature::RSA_PSS_2048_8192_SHA384, key)?
        }
        Algorithm::PS512 => {
            RsaVerifier::boxed(alg, &ring::signature::RSA_PSS_2048_8192_SHA512, key)?
        }
        _ => return Err(ErrorKind::UnsupportedAlgorithm.into()),
    })
}

struct HmacSigner {
    alg: Algorithm,
    key: hmac::Key,
}

impl HmacSigner {
    fn boxed(alg: Algorithm, hmac_alg: hmac::Algorithm, secret: &[u8]) -> Box<dyn JwtSigner> {
        Box::new(HmacSigner {
            alg,
            key: hmac::Key::new(hmac_alg, secret),
        })
    }
}

impl Signer<Vec<u8>> for HmacSigner {
    fn try_sign(&self, msg: &[u8]) -> std::result::Result<Vec<u8>, signature::Error> {
        Ok(hmac::sign(&self.key, msg).as_ref().to_vec())
    }
}

impl JwtSigner for HmacSigner {
    fn algorithm(&self) -> Algorithm {
        self.alg
    }
}

struct EcdsaSigner {
    alg: Algorithm,
    pair: EcdsaKeyPair,
    rng: SystemRandom,
}

impl EcdsaSigner {
    fn boxed(
        alg: Algorithm,
        signing_alg: &'static EcdsaSigningAlgorithm,
        pkcs8: &[u8],
    ) -> Result<Box<dyn JwtSigner>> {
        let rng = SystemRandom::new();
        let pair = EcdsaKeyPair::from_pkcs8(signing_alg, pkcs8, &rng)
            .map_err(|_| Error::from(ErrorKind::InvalidEcdsaKey))?;
        Ok(Box::new(EcdsaSigner { alg, pair, rng }))
    }
}

impl Signer<Vec<u8>> for EcdsaSigner {
    fn try_sign(&self, msg: &[u8]) -> std::result::Result<Vec<u8>, signature::Error> {
        let signature = self
            .pair
            .sign(&self.rng, msg)
            .map_err(|_| signature::Error::new())?;
        Ok(signature.as_ref().to_vec())
    }
}

impl JwtSigner for EcdsaSigner {
    fn algorithm(&self) -> Algorithm {
        self.alg
    }
}

struct RsaSigner {
    alg: Algorithm,
    padding: &'static dyn RsaEncoding,
    pair: RsaKeyPair,
    rng: SystemRandom,
}

impl RsaSigner {
    fn boxed(
        alg: Algorithm,
        padding: &'static dyn RsaEncoding,
        der: &[u8],
    ) -> Result<Box<dyn JwtSigner>> {
        Ok(Box::new(RsaSigner {
            alg,
            padding,
            pair: rsa_key_pair(der)?,
            rng: SystemRandom::new(),
        }))
    }
}

impl Signer<Vec<u8>> for RsaSigner {
    fn try_sign(&self, msg: &[u8]) -> std::result::Result<Vec<u8>, signature::Error> {
        let mut signature = vec![0; self.pair.public().modulus_len()];
        self.pair
            .sign(self.padding, &self.rng, msg, &mut signature)
            .map_err(|_| signature::Error::new())?;
        Ok(signature)
    }
}

impl JwtSigner for RsaSigner {
    fn algorithm(&self) -> Algorithm {
        self.alg
    }
}

struct EdDsaSigner(Ed25519KeyPair);

impl Signer<Vec<u8>> for EdDsaSigner {
    fn try_sign(&self, msg: &[u8]) -> std::result::Result<Vec<u8>, signature::Error> {
        Ok(self.0.sign(msg).as_ref().to_vec())
    }
}

impl JwtSigner for EdDsaSigner {
    fn algorithm(&self) -> Algorithm {
        Algorithm::EdDSA
    }
}

struct HmacVerifier {
    alg: Algorithm,
    key: hmac::Key,
}

impl HmacVerifier {
    fn boxed(
        alg: Algorithm,
        hmac_alg: hmac::Algorithm,
        key: &DecodingKey,
    ) -> Result<Box<dyn JwtVerifier>> {
        Ok(Box::new(HmacVerifier {
            alg,
            key: hmac::Key::new(hmac_alg, key.try_get_as_bytes()?),
        }))
    }
}

impl Verifier<Vec<u8>> for HmacVerifier {
    fn verify(&self, msg: &[u8], signature: &Vec<u8>) -> std::result::Result<(), signature::Error> {
        // ring compares tags in constant time.
        hmac::verify(&self.key, msg, signature).map_err(|_| signature::Error::new())
    }
}

impl JwtVerifier for HmacVerifier {
    fn algorithm(&self) -> Algorithm {
        self.alg
    }
}

/// ECDSA and Ed25519 verification, where the key is the raw public point ring expects
/// (0x04 || x || y for ECDSA, 32 bytes for Ed25519), as `DecodingKey::from_jwk` builds it.
struct PublicKeyVerifier {
    alg: Algorithm,
    key: UnparsedPublicKey<Vec<u8>>,
}

impl PublicKeyVerifier {
    fn boxed(
        alg: Algorithm,
        verification_alg: &'static dyn VerificationAlgorithm,
        key: &DecodingKey,
    ) -> Result<Box<dyn JwtVerifier>> {
        Ok(Box::new(PublicKeyVerifier {
            alg,
            key: UnparsedPublicKey::new(verification_alg, key.try_get_as_bytes()?.to_vec()),
        }))
    }
}

impl Verifier<Vec<u8>> for PublicKeyVerifier {
    fn verify(&self, msg: &[u8], signature: &Vec<u8>) -> std::result::Result<(), signature::Error> {
        // ring rejects out-of-range ECDSA scalars, including r = 0 or s = 0.
        self.key
            .verify(msg, signature)
            .map_err(|_| signature::Error::new())
    }
}

impl JwtVerifier for PublicKeyVerifier {
    fn algorithm(&self) -> Algorithm {
        self.alg
    }
}

struct RsaVerifier {
    alg: Algorithm,
    params: &'static RsaParameters,
    key: RsaPublicKeyComponents<Vec<u8>>,
}

impl RsaVerifier {
    fn boxed(
        alg: Algorithm,
        params: &'static RsaParameters,
        key: &DecodingKey,
    ) -> Result<Box<dyn JwtVerifier>> {
        // Both kinds become (n, e) once, so verification never re-parses DER per token.
        let (n, e) = match key.kind() {
            DecodingKeyKind::SecretOrDer(der) => rsa_pub_components_from_public_key(der)?,
            DecodingKeyKind::RsaModulusExponent { n, e } => (n.clone(), e.clone()),
        };
        Ok(Box::new(RsaVerifier {
            alg,
            params,
            key: RsaPublicKeyComponents { n, e },
        }))
    }
}

impl Verifier<Vec<u8>> for RsaVerifier {
    fn verify(&self, msg: &[u8], signature: &Vec<u8>) -> std::result::Result<(), signature::Error> {
        self.key
            .verify(self.params, msg, signature)
            .map_err(|_| signature::Error::new())
    }
}

impl JwtVerifier for RsaVerifier {
    fn algorithm(&self) -> Algorithm {
        self.alg
    }
}

/// Parses an RSA private key as PKCS#1 `RSAPrivateKey` DER (what jsonwebtoken's other providers
/// expect) or, failing that, PKCS#8.
fn rsa_key_pair(der: &[u8]) -> Result<RsaKeyPair> {
    RsaKeyPair::from_der(der)
        .or_else(|_| RsaKeyPair::from_pkcs8(der))
        .map_err(|rejected| ErrorKind::InvalidRsaKey(rejected.to_string()).into())
}

/// Accepts PKCS#8 v1 as well as v2, because `openssl genpkey` and jsonwebtoken's own JWK code
/// produce v1 Ed25519 keys.
fn ed25519_from_pkcs8(der: &[u8]) -> Result<Ed25519KeyPair> {
    Ed25519KeyPair::from_pkcs8_maybe_unchecked(der).map_err(|_| ErrorKind::InvalidEddsaKey.into())
}

fn rsa_pub_components_from_private_key(der: &[u8]) -> Result<(Vec<u8>, Vec<u8>)> {
    let components = RsaPublicKeyComponents::<Vec<u8>>::from(rsa_key_pair(der)?.public());
    Ok((components.n, components.e))
}

fn rsa_pub_components_from_public_key(der: &[u8]) -> Result<(Vec<u8>, Vec<u8>)> {
    der::rsa_public_key_components(der).ok_or_else(|| {
        ErrorKind::InvalidRsaKey("not a DER RSAPublicKey or SubjectPublicKeyInfo".to_owned()).into()
    })
}

fn ec_pub_components_from_private_key(
    der: &[u8],
    alg: Algorithm,
) -> Result<(EllipticCurve, Vec<u8>, Vec<u8>)> {
    let (signing_alg, curve, coordinate_len) = match alg {
        Algorithm::ES256 => (&ECDSA_P256_SHA256_FIXED_SIGNING, EllipticCurve::P256, 32),
        Algorithm::ES384 => (&ECDSA_P384_SHA384_FIXED_SIGNING, EllipticCurve::P384, 48),
        _ => return Err(ErrorKind::InvalidEcdsaKey.into()),
    };
    let pair = EcdsaKeyPair::from_pkcs8(signing_alg, der, &SystemRandom::new())
        .map_err(|_| Error::from(ErrorKind::InvalidEcdsaKey))?;
    // ring encodes public keys as uncompressed points: 0x04 || x || y.
    match pair.public_key().as_ref().split_first() {
        Some((&0x04, coordinates)) if coordinates.len() == 2 * coordinate_len => {
            let (x, y) = coordinates.split_at(coordinate_len);
            Ok((curve, x.to_vec(), y.to_vec()))
        }
        _ => Err(ErrorKind::InvalidEcdsaKey.into()),
    }
}

fn ed_pub_components_from_private_key(der: &[u8], curve: &EllipticCurve) -> Result<Vec<u8>> {
    match curve {
        EllipticCurve::Ed25519 => Ok(ed25519_from_pkcs8(der)?.public_key().as_ref().to_vec()),
        _ => Err(ErrorKind::UnsupportedAlgorithm.into()),
    }
}

fn compute_digest(data: &[u8], hash: ThumbprintHash) -> Result<Vec<u8>> {
    let algorithm = match hash {
        ThumbprintHash::SHA256 => &digest::SHA256,
        ThumbprintHash::SHA384 => &digest::SHA384,
        ThumbprintHash::SHA512 => &digest::SHA512,
        _ => return Err(ErrorKind::UnsupportedAlgorithm.into()),
    };
    Ok(digest::digest(algorithm, data).as_ref().to_vec())
}
