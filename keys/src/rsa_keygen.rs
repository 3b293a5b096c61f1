//! RSA key generation, the one thing ring cannot do for us.
//!
//! The `rsa` crate (RustCrypto) is used here and nowhere else, and only to find the primes and
//! write the new key as a PKCS#8 document. That document then takes the same path as an imported
//! PEM: ring parses it into the key pair that signs, and it is sealed under the master key. No
//! private-key operation (signing, decryption) ever runs in the `rsa` crate, so its timing
//! (RUSTSEC-2023-0071, the Marvin attack) is not something an attacker can observe: generation
//! happens once per key, from the CLI or a scheduled rotation, and answers no request.

use rsa::pkcs8::EncodePrivateKey;
use zeroize::Zeroizing;

use crate::KeyError;

/// The modulus size of the RSA keys generated here.
///
/// 2048 bits: what API gateways and every JOSE library accept, about 112-bit security (NIST SP
/// 800-57: acceptable until 2030), and a signature ring makes in about a third of the time of a
/// 3072-bit one, on every token issued. A generated key lives weeks (rotation, then purge once its
/// tokens expire), and breaking it after it is no longer published gains nothing: no verifier
/// trusts it then. A larger key can still be imported (`keys import --pem`).
pub(crate) const GENERATED_RSA_BITS: usize = 2048;

/// A new RSA key (public exponent 65537) of [`GENERATED_RSA_BITS`] as a PKCS#8 v1 document,
/// from the operating system's random source.
pub(crate) fn generate_rsa_pkcs8() -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let key = rsa::PrivateKey::new(&mut getrandom::SysRng, GENERATED_RSA_BITS)
        .map_err(|_| KeyError::Generation)?;
    // `SecretDocument` zeroizes itself when dropped, and so does the copy handed on; the key's
    // own components are zeroized by the `rsa` crate when `key` is dropped.
    let document = key.to_pkcs8_der().map_err(|_| KeyError::Generation)?;
    Ok(Zeroizing::new(document.as_bytes().to_vec()))
}
