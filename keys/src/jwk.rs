//! JWK thumbprints (key ids) and JWKS documents.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet};
use ring::digest;

use crate::KeyError;

/// RFC 7638 thumbprint computed with ring SHA-256 (canonical JSON members in lexicographic order:
/// EC {"crv","kty","x","y"}, OKP {"crv","kty","x"}, RSA {"e","kty","n"}). Must equal
/// jsonwebtoken's Jwk::thumbprint(SHA256) when the provider is installed.
///
/// It does not go through jsonwebtoken's provider so that key ids can be computed before, or
/// without, installing one.
pub fn thumbprint(jwk: &Jwk) -> Result<String, KeyError> {
    let mut canonical = String::from("{");
    match &jwk.algorithm {
        AlgorithmParameters::EllipticCurve(params) => {
            let crv = match params.curve {
                EllipticCurve::P256 => "P-256",
                EllipticCurve::P384 => "P-384",
                EllipticCurve::P521 => "P-521",
                _ => return Err(KeyError::UnsupportedJwk("EC key with a non-NIST curve")),
            };
            push_member(&mut canonical, "crv", crv)?;
            push_member(&mut canonical, "kty", "EC")?;
            push_member(&mut canonical, "x", &params.x)?;
            push_member(&mut canonical, "y", &params.y)?;
        }
        AlgorithmParameters::OctetKeyPair(params) => {
            let crv = match params.curve {
                EllipticCurve::Ed25519 => "Ed25519",
                _ => return Err(KeyError::UnsupportedJwk("OKP key with a non-Edwards curve")),
            };
            push_member(&mut canonical, "crv", crv)?;
            push_member(&mut canonical, "kty", "OKP")?;
            push_member(&mut canonical, "x", &params.x)?;
        }
        AlgorithmParameters::RSA(params) => {
            push_member(&mut canonical, "e", &params.e)?;
            push_member(&mut canonical, "kty", "RSA")?;
            push_member(&mut canonical, "n", &params.n)?;
        }
        AlgorithmParameters::OctetKey(params) => {
            push_member(&mut canonical, "k", &params.value)?;
            push_member(&mut canonical, "kty", "oct")?;
        }
        _ => return Err(KeyError::UnsupportedJwk("unknown key type")),
    }
    canonical.push('}');
    Ok(URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, canonical.as_bytes())))
}

/// A JWKS document of public keys.
///
/// Symmetric (`oct`) keys are left out: their `k` member is the secret itself, and a JWKS is
/// public by definition.
pub fn jwk_set<'a>(keys: impl IntoIterator<Item = &'a Jwk>) -> JwkSet {
    JwkSet {
        keys: keys
            .into_iter()
            .filter(|jwk| !matches!(jwk.algorithm, AlgorithmParameters::OctetKey(_)))
            .cloned()
            .collect(),
    }
}

/// Appends one `"name":"value"` member. Values go through serde_json so that the output is valid
/// JSON whatever the input; for well-formed base64url values this is the plain quoted string that
/// RFC 7638 and jsonwebtoken produce.
fn push_member(out: &mut String, name: &str, value: &str) -> Result<(), KeyError> {
    if out.len() > 1 {
        out.push(',');
    }
    out.push('"');
    out.push_str(name);
    out.push_str("\":");
    out.push_str(&serde_json::to_string(value)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::jwk::{
        CommonParameters, OctetKeyParameters, OctetKeyType, RSAKeyParameters, RSAKeyType,
        ThumbprintHash,
    };

    use super::*;
    use crate::{Algorithm, SigningKey, install_crypto_provider};

    const RFC7638_N: &str = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";

    fn rfc7638_example() -> Jwk {
        Jwk {
            common: CommonParameters {
                key_id: Some("2011-04-29".to_owned()),
                ..Default::default()
            },
            algorithm: AlgorithmParameters::RSA(RSAKeyParameters {
                key_type: RSAKeyType::RSA,
                n: RFC7638_N.to_owned(),
                e: "AQAB".to_owned(),
            }),
        }
    }

    #[test]
    fn thumbprint_matches_the_rfc_7638_example() {
        install_crypto_provider();
        let jwk = rfc7638_example();
        let expected = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs";
        assert_eq!(thumbprint(&jwk).unwrap(), expected);
        assert_eq!(jwk.thumbprint(ThumbprintHash::SHA256).unwrap(), expected);
    }

    #[test]
    fn kid_equals_jsonwebtokens_thumbprint_for_generated_keys() {
        install_crypto_provider();
        for alg in [Algorithm::ES256, Algorithm::EdDSA] {
            let key = SigningKey::generate(alg).unwrap();
            let from_jsonwebtoken = key.public_jwk().thumbprint(ThumbprintHash::SHA256).unwrap();
            assert_eq!(key.kid(), from_jsonwebtoken);
            assert_eq!(thumbprint(key.public_jwk()).unwrap(), key.kid());
        }
    }

    #[test]
    fn thumbprint_ignores_non_required_members() {
        let mut jwk = rfc7638_example();
        jwk.common.key_id = Some("something else".to_owned());
        jwk.common.key_algorithm = Some(jsonwebtoken::jwk::KeyAlgorithm::RS256);
        assert_eq!(
            thumbprint(&jwk).unwrap(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn jwk_set_publishes_public_keys_and_drops_symmetric_ones() {
        let es = SigningKey::generate(Algorithm::ES256).unwrap();
        let ed = SigningKey::generate(Algorithm::EdDSA).unwrap();
        let secret = Jwk {
            common: CommonParameters::default(),
            algorithm: AlgorithmParameters::OctetKey(OctetKeyParameters {
                key_type: OctetKeyType::Octet,
                value: "c2VjcmV0".to_owned(),
            }),
        };
        let set = jwk_set([es.public_jwk(), &secret, ed.public_jwk()]);
        assert_eq!(set.keys.len(), 2);
        assert!(set.find(es.kid()).is_some());
        assert!(set.find(ed.kid()).is_some());
        let json = serde_json::to_value(&set).unwrap();
        assert!(!json.to_string().contains("c2VjcmV0"));
        assert_eq!(json["keys"].as_array().map(Vec::len), Some(2));
    }
}
