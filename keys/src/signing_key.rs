//! Private signing keys: generation, parsing, public JWK and token signing.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, EllipticCurve, EllipticCurveKeyParameters,
    EllipticCurveKeyType, Jwk, KeyAlgorithm, OctetKeyPairParameters, OctetKeyPairType,
    PublicKeyUse, RSAKeyParameters, RSAKeyType,
};
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RSA_PKCS1_SHA256,
    RsaKeyPair, RsaPublicKeyComponents,
};
use serde::Serialize;
use zeroize::Zeroizing;

use crate::{Algorithm, KeyError, thumbprint};

/// The `typ` of every token we sign (RFC 9068 access tokens).
const ACCESS_TOKEN_TYPE: &str = "at+jwt";

/// The length of one P-256 coordinate.
const P256_COORDINATE_LEN: usize = 32;

/// A private signing key, parsed once into ring's key pair, never re-parsed per token.
pub struct SigningKey {
    kid: String,
    alg: Algorithm,
    jwk: Jwk,
    /// The base64url JWS header, fixed for the key's lifetime, so signing only encodes claims.
    encoded_header: String,
    pair: RingKeyPair,
    rng: SystemRandom,
}

enum RingKeyPair {
    Es256(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
    Rs256(RsaKeyPair),
}

/// Smallest RSA modulus accepted for signing, in bits (NIST SP 800-57: 2048 until 2030).
const MIN_RSA_BITS: usize = 2048;

/// The JWS header; field order is the serialization order.
#[derive(Serialize)]
struct JwsHeader<'a> {
    alg: &'a str,
    typ: &'a str,
    kid: &'a str,
}

/// A new PKCS#8 document for `alg`, for [`crate::SealedKey`] to seal: EC and Ed25519 keys from
/// ring with its SystemRandom, RSA keys from [`crate::rsa_keygen`] (ring cannot generate them).
/// Whichever made it, ring parses the document into the key pair that signs.
pub(crate) fn generate_pkcs8(alg: Algorithm) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let rng = SystemRandom::new();
    let document = match alg {
        Algorithm::ES256 => EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng),
        Algorithm::EdDSA => Ed25519KeyPair::generate_pkcs8(&rng),
        Algorithm::RS256 => return crate::rsa_keygen::generate_rsa_pkcs8(),
    }
    .map_err(|_| KeyError::Generation)?;
    // ring's document is not zeroized when dropped; the copy handed on is, and the document is
    // dropped at the end of this function.
    Ok(Zeroizing::new(document.as_ref().to_vec()))
}

impl SigningKey {
    /// A new key that is never stored (benchmarks, fuzzing, tests): its private half exists only
    /// inside the returned value. Keys that are stored come from [`crate::SealedKey::generate`].
    pub fn generate(alg: Algorithm) -> Result<SigningKey, KeyError> {
        SigningKey::from_pkcs8(alg, &generate_pkcs8(alg)?)
    }

    /// Parses a PKCS#8 private key for `alg`.
    ///
    /// Ed25519 keys must be PKCS#8 v2, as [`generate_pkcs8`] writes them, because v2 carries the
    /// public key and ring then checks that it matches the private key.
    pub(crate) fn from_pkcs8(alg: Algorithm, pkcs8_der: &[u8]) -> Result<SigningKey, KeyError> {
        let malformed = |_| KeyError::MalformedPrivateKey(alg);
        let (pair, params) = match alg {
            Algorithm::ES256 => {
                let pair = EcdsaKeyPair::from_pkcs8(
                    &ECDSA_P256_SHA256_FIXED_SIGNING,
                    pkcs8_der,
                    &SystemRandom::new(),
                )
                .map_err(malformed)?;
                let params = ec_params(pair.public_key().as_ref())
                    .ok_or(KeyError::MalformedPrivateKey(alg))?;
                (RingKeyPair::Es256(pair), params)
            }
            Algorithm::EdDSA => {
                let pair = Ed25519KeyPair::from_pkcs8(pkcs8_der).map_err(malformed)?;
                // The JWK is built from ring's public key rather than from the encoding key, which
                // would hold the private key.
                let params = AlgorithmParameters::OctetKeyPair(OctetKeyPairParameters {
                    key_type: OctetKeyPairType::OctetKeyPair,
                    curve: EllipticCurve::Ed25519,
                    x: URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()),
                });
                (RingKeyPair::Ed25519(pair), params)
            }
            Algorithm::RS256 => {
                let pair = RsaKeyPair::from_pkcs8(pkcs8_der).map_err(malformed)?;
                if pair.public().modulus_len() * 8 < MIN_RSA_BITS {
                    return Err(KeyError::MalformedPrivateKey(alg));
                }
                let public = RsaPublicKeyComponents::<Vec<u8>>::from(pair.public());
                let params = AlgorithmParameters::RSA(RSAKeyParameters {
                    key_type: RSAKeyType::RSA,
                    n: URL_SAFE_NO_PAD.encode(&public.n),
                    e: URL_SAFE_NO_PAD.encode(&public.e),
                });
                (RingKeyPair::Rs256(pair), params)
            }
        };

        let mut jwk = Jwk {
            common: CommonParameters::default(),
            algorithm: params,
        };
        let kid = thumbprint(&jwk)?;
        jwk.common = CommonParameters {
            public_key_use: Some(PublicKeyUse::Signature),
            key_algorithm: Some(match alg {
                Algorithm::ES256 => KeyAlgorithm::ES256,
                Algorithm::EdDSA => KeyAlgorithm::EdDSA,
                Algorithm::RS256 => KeyAlgorithm::RS256,
            }),
            key_id: Some(kid.clone()),
            ..CommonParameters::default()
        };
        let header = serde_json::to_vec(&JwsHeader {
            alg: alg.as_str(),
            typ: ACCESS_TOKEN_TYPE,
            kid: &kid,
        })?;

        Ok(SigningKey {
            encoded_header: URL_SAFE_NO_PAD.encode(header),
            kid,
            alg,
            jwk,
            pair,
            rng: SystemRandom::new(),
        })
    }

    /// The RFC 7638 JWK thumbprint (SHA-256, base64url without padding) of the public key.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The algorithm this key signs with.
    pub fn alg(&self) -> Algorithm {
        self.alg
    }

    /// The public key as a JWK with `kid`, `alg` and `use: sig`, ready for the JWKS.
    pub fn public_jwk(&self) -> &Jwk {
        &self.jwk
    }

    /// Signs a JWS compact token with header exactly {"alg":..,"typ":"at+jwt","kid":..}.
    pub fn sign_jwt<T: Serialize>(&self, claims: &T) -> Result<String, KeyError> {
        let claims = serde_json::to_vec(claims)?;
        // 86 characters hold a 64-byte EC signature; RSA signatures make the string grow once.
        let mut token = String::with_capacity(
            self.encoded_header.len() + 1 + claims.len().div_ceil(3) * 4 + 1 + 86,
        );
        token.push_str(&self.encoded_header);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&claims, &mut token);
        let ring_signature;
        let mut rsa_signature = Vec::new();
        let signature: &[u8] = match &self.pair {
            RingKeyPair::Es256(pair) => {
                ring_signature = pair
                    .sign(&self.rng, token.as_bytes())
                    .map_err(|_| KeyError::Signing)?;
                ring_signature.as_ref()
            }
            RingKeyPair::Ed25519(pair) => {
                ring_signature = pair.sign(token.as_bytes());
                ring_signature.as_ref()
            }
            RingKeyPair::Rs256(pair) => {
                rsa_signature.resize(pair.public().modulus_len(), 0);
                pair.sign(
                    &RSA_PKCS1_SHA256,
                    &self.rng,
                    token.as_bytes(),
                    &mut rsa_signature,
                )
                .map_err(|_| KeyError::Signing)?;
                &rsa_signature
            }
        };
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(signature, &mut token);
        Ok(token)
    }
}

/// The DER of a PKCS#8 private key PEM (`-----BEGIN PRIVATE KEY-----`), as `openssl genpkey`
/// writes it, for importing keys made elsewhere.
pub(crate) fn pkcs8_from_pem(text: &str) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let parsed = pem::parse(text.trim()).map_err(|_| KeyError::Pem("cannot parse PEM"))?;
    if parsed.tag() != "PRIVATE KEY" {
        return Err(KeyError::Pem(
            "expected -----BEGIN PRIVATE KEY----- (convert with `openssl pkcs8 -topk8 -nocrypt`)",
        ));
    }
    Ok(Zeroizing::new(parsed.into_contents()))
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

/// Splits ring's uncompressed P-256 point (0x04 || x || y) into JWK coordinates.
fn ec_params(point: &[u8]) -> Option<AlgorithmParameters> {
    let (&0x04, coordinates) = point.split_first()? else {
        return None;
    };
    if coordinates.len() != 2 * P256_COORDINATE_LEN {
        return None;
    }
    let (x, y) = coordinates.split_at(P256_COORDINATE_LEN);
    Some(AlgorithmParameters::EllipticCurve(
        EllipticCurveKeyParameters {
            key_type: EllipticCurveKeyType::EC,
            curve: EllipticCurve::P256,
            x: URL_SAFE_NO_PAD.encode(x),
            y: URL_SAFE_NO_PAD.encode(y),
        },
    ))
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{DecodingKey, Validation, decode, decode_header};
    use serde::Deserialize;

    use super::*;
    use crate::install_crypto_provider;

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    struct Claims {
        sub: String,
        exp: u64,
    }

    fn claims() -> Claims {
        Claims {
            sub: "client-1".to_owned(),
            exp: jsonwebtoken::get_current_timestamp() + 300,
        }
    }

    fn validation(alg: Algorithm) -> Validation {
        let mut validation = Validation::new(alg.to_jwt());
        validation.validate_aud = false;
        validation
    }

    const _: () = {
        const fn send_and_sync<T: Send + Sync>() {}
        send_and_sync::<SigningKey>();
    };

    #[test]
    fn signed_tokens_verify_with_the_published_jwk() {
        install_crypto_provider();
        for alg in [Algorithm::ES256, Algorithm::EdDSA] {
            let key = SigningKey::generate(alg).unwrap();
            let token = key.sign_jwt(&claims()).unwrap();

            let decoding_key = DecodingKey::from_jwk(key.public_jwk()).unwrap();
            let data = decode::<Claims>(&token, &decoding_key, &validation(alg)).unwrap();
            assert_eq!(data.claims.sub, "client-1");
            assert_eq!(data.header.typ.as_deref(), Some("at+jwt"));
            assert_eq!(data.header.kid.as_deref(), Some(key.kid()));
            assert_eq!(data.header.alg, alg.to_jwt());
        }
    }

    #[test]
    fn header_is_exactly_alg_typ_kid() {
        for alg in [Algorithm::ES256, Algorithm::EdDSA] {
            let key = SigningKey::generate(alg).unwrap();
            let token = key.sign_jwt(&claims()).unwrap();
            let header = token.split('.').next().unwrap();
            let header = URL_SAFE_NO_PAD.decode(header).unwrap();
            let expected = format!(
                r#"{{"alg":"{}","typ":"at+jwt","kid":"{}"}}"#,
                alg.as_str(),
                key.kid()
            );
            assert_eq!(String::from_utf8(header).unwrap(), expected);
            assert_eq!(
                decode_header(&token).unwrap().kid.as_deref(),
                Some(key.kid())
            );
        }
    }

    #[test]
    fn a_token_signed_by_another_key_is_rejected() {
        install_crypto_provider();
        let signer = SigningKey::generate(Algorithm::ES256).unwrap();
        let other = SigningKey::generate(Algorithm::ES256).unwrap();
        let token = signer.sign_jwt(&claims()).unwrap();
        let decoding_key = DecodingKey::from_jwk(other.public_jwk()).unwrap();
        assert!(decode::<Claims>(&token, &decoding_key, &validation(Algorithm::ES256)).is_err());
    }

    #[test]
    fn public_jwk_has_no_private_member_and_the_expected_shape() {
        let es = SigningKey::generate(Algorithm::ES256).unwrap();
        let json = serde_json::to_value(es.public_jwk()).unwrap();
        assert!(json.get("d").is_none());
        assert_eq!(json["kty"], "EC");
        assert_eq!(json["crv"], "P-256");
        assert_eq!(json["alg"], "ES256");
        assert_eq!(json["use"], "sig");
        assert_eq!(json["kid"], es.kid());
        assert_eq!(json["x"].as_str().map(str::len), Some(43));
        assert_eq!(json["y"].as_str().map(str::len), Some(43));

        let ed = SigningKey::generate(Algorithm::EdDSA).unwrap();
        let json = serde_json::to_value(ed.public_jwk()).unwrap();
        assert!(json.get("d").is_none());
        assert!(json.get("y").is_none());
        assert_eq!(json["kty"], "OKP");
        assert_eq!(json["crv"], "Ed25519");
        assert_eq!(json["alg"], "EdDSA");
        assert_eq!(json["use"], "sig");
        assert_eq!(json["kid"], ed.kid());
        assert_eq!(json["x"].as_str().map(str::len), Some(43));
    }

    #[test]
    fn from_pkcs8_of_the_generated_der_gives_the_same_key() {
        install_crypto_provider();
        for alg in [Algorithm::ES256, Algorithm::EdDSA] {
            let der = generate_pkcs8(alg).unwrap();
            let key = SigningKey::from_pkcs8(alg, &der).unwrap();
            let reparsed = SigningKey::from_pkcs8(alg, &der).unwrap();
            assert_eq!(reparsed.kid(), key.kid());
            assert_eq!(reparsed.alg(), alg);
            assert_eq!(reparsed.public_jwk(), key.public_jwk());
            // A token from the reparsed key verifies with the original key's JWK.
            let token = reparsed.sign_jwt(&claims()).unwrap();
            let decoding_key = DecodingKey::from_jwk(key.public_jwk()).unwrap();
            assert!(decode::<Claims>(&token, &decoding_key, &validation(alg)).is_ok());
        }
    }

    #[test]
    fn malformed_or_mismatched_der_is_an_error_not_a_panic() {
        let es_der = generate_pkcs8(Algorithm::ES256).unwrap();
        let ed_der = generate_pkcs8(Algorithm::EdDSA).unwrap();
        let mut flipped = es_der.to_vec();
        let middle = flipped.len() / 2;
        flipped[middle] ^= 0xff;
        let inputs: [(Algorithm, &[u8]); 6] = [
            (Algorithm::ES256, b""),
            (Algorithm::ES256, b"garbage"),
            (Algorithm::EdDSA, &[0x30, 0x82, 0xff, 0xff]),
            (Algorithm::ES256, &ed_der),
            (Algorithm::EdDSA, &es_der),
            (Algorithm::ES256, &flipped),
        ];
        for (alg, der) in inputs {
            let err = SigningKey::from_pkcs8(alg, der).unwrap_err();
            assert!(
                matches!(err, KeyError::MalformedPrivateKey(a) if a == alg),
                "{err:?}"
            );
        }
        for len in 0..ed_der.len() {
            assert!(SigningKey::from_pkcs8(Algorithm::EdDSA, &ed_der[..len]).is_err());
        }
    }

    #[test]
    fn debug_shows_only_kid_and_alg() {
        for alg in [Algorithm::ES256, Algorithm::EdDSA] {
            let der = generate_pkcs8(alg).unwrap();
            let key = SigningKey::from_pkcs8(alg, &der).unwrap();
            let debug = format!("{key:?}");
            assert!(debug.contains(key.kid()));
            assert!(debug.contains(alg.as_str()));
            assert!(!debug.contains(&URL_SAFE_NO_PAD.encode(&*der)));
            assert!(!debug.contains(&format!("{:?}", &der[der.len() - 8..])));
            assert!(debug.len() < 120, "{debug}");
        }
    }

    const RSA_PEM: &str = include_str!("../../testdata/rsa-2048-test-only.pem");

    #[test]
    fn an_imported_rsa_key_signs_rs256_tokens_that_verify() {
        install_crypto_provider();
        let der = pkcs8_from_pem(RSA_PEM).unwrap();
        let key = SigningKey::from_pkcs8(Algorithm::RS256, &der).unwrap();
        let json = serde_json::to_value(key.public_jwk()).unwrap();
        assert_eq!(json["kty"], "RSA");
        assert_eq!(json["alg"], "RS256");
        assert_eq!(json["e"], "AQAB");
        assert!(json.get("d").is_none() && json.get("p").is_none());
        assert_eq!(
            key.kid(),
            key.public_jwk()
                .thumbprint(jsonwebtoken::jwk::ThumbprintHash::SHA256)
                .unwrap()
        );
        let token = key.sign_jwt(&claims()).unwrap();
        let decoding_key = DecodingKey::from_jwk(key.public_jwk()).unwrap();
        let data = decode::<Claims>(&token, &decoding_key, &validation(Algorithm::RS256)).unwrap();
        assert_eq!(data.header.alg, jsonwebtoken::Algorithm::RS256);
        assert_eq!(data.header.typ.as_deref(), Some("at+jwt"));
    }

    #[test]
    fn a_generated_rsa_key_is_2048_bits_with_exponent_65537_and_signs_rs256_tokens() {
        install_crypto_provider();
        let der = generate_pkcs8(Algorithm::RS256).unwrap();
        // The document is the one an import would carry: ring parses it like the test PEM's.
        let key = SigningKey::from_pkcs8(Algorithm::RS256, &der).unwrap();
        let json = serde_json::to_value(key.public_jwk()).unwrap();
        assert_eq!(json["kty"], "RSA");
        assert_eq!(json["alg"], "RS256");
        assert_eq!(json["use"], "sig");
        assert_eq!(json["e"], "AQAB");
        assert!(json.get("d").is_none() && json.get("p").is_none());
        let n = URL_SAFE_NO_PAD.decode(json["n"].as_str().unwrap()).unwrap();
        assert_eq!(n.len() * 8, crate::rsa_keygen::GENERATED_RSA_BITS);
        assert!(
            n[0] & 0x80 != 0,
            "the top bit is set: a full 2048-bit modulus"
        );
        assert_eq!(
            key.kid(),
            key.public_jwk()
                .thumbprint(jsonwebtoken::jwk::ThumbprintHash::SHA256)
                .unwrap()
        );
        let token = key.sign_jwt(&claims()).unwrap();
        let header = URL_SAFE_NO_PAD
            .decode(token.split('.').next().unwrap())
            .unwrap();
        assert_eq!(
            String::from_utf8(header).unwrap(),
            format!(r#"{{"alg":"RS256","typ":"at+jwt","kid":"{}"}}"#, key.kid())
        );
        let decoding_key = DecodingKey::from_jwk(key.public_jwk()).unwrap();
        let data = decode::<Claims>(&token, &decoding_key, &validation(Algorithm::RS256)).unwrap();
        assert_eq!(data.claims.sub, "client-1");

        // Every generation is a new key, and neither key verifies the other's tokens.
        let other = SigningKey::generate(Algorithm::RS256).unwrap();
        assert_ne!(other.kid(), key.kid());
        let other_key = DecodingKey::from_jwk(other.public_jwk()).unwrap();
        assert!(decode::<Claims>(&token, &other_key, &validation(Algorithm::RS256)).is_err());
        let debug = format!("{key:?}");
        assert!(!debug.contains(&URL_SAFE_NO_PAD.encode(&*der)) && debug.len() < 120);
    }

    #[test]
    fn bad_pem_is_refused() {
        assert!(matches!(pkcs8_from_pem("garbage"), Err(KeyError::Pem(_))));
        let pkcs1 = RSA_PEM.replace("PRIVATE KEY", "RSA PRIVATE KEY");
        assert!(matches!(pkcs8_from_pem(&pkcs1), Err(KeyError::Pem(_))));
        // An EC key is not an RSA key.
        let ec = generate_pkcs8(Algorithm::ES256).unwrap();
        assert!(SigningKey::from_pkcs8(Algorithm::RS256, &ec).is_err());
    }
}
