//! Partner key pairs for tests: real keys, real signatures, through jsonwebtoken and our ring
//! provider, with any header a test needs (including ones a well-behaved library never writes).

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey};
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair,
};
use serde_json::{Value, json};

/// The workspace's throwaway RSA test key (see testdata/README.md): ring cannot generate RSA
/// keys, and generating one per test would be slow.
const RSA_PEM: &str = include_str!("../../../testdata/rsa-2048-test-only.pem");

/// A partner's key pair.
pub(crate) struct PartnerKey {
    encoding: EncodingKey,
    /// The public JWK members (no `kid`, `alg` or `use`).
    public: Value,
}

impl PartnerKey {
    pub(crate) fn es256() -> PartnerKey {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        let point = pair.public_key().as_ref();
        assert_eq!(point[0], 0x04);
        PartnerKey {
            encoding: EncodingKey::from_ec_der(pkcs8.as_ref()),
            public: json!({
                "kty": "EC",
                "crv": "P-256",
                "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
                "y": URL_SAFE_NO_PAD.encode(&point[33..]),
            }),
        }
    }

    pub(crate) fn ed25519() -> PartnerKey {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        PartnerKey {
            encoding: EncodingKey::from_ed_der(pkcs8.as_ref()),
            public: json!({
                "kty": "OKP",
                "crv": "Ed25519",
                "x": URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()),
            }),
        }
    }

    pub(crate) fn rsa() -> PartnerKey {
        let base64: String = RSA_PEM
            .lines()
            .filter(|line| !line.starts_with("-----"))
            .collect();
        let der = STANDARD.decode(base64).unwrap();
        let pair = RsaKeyPair::from_pkcs8(&der).unwrap();
        let public = ring::signature::RsaPublicKeyComponents::<Vec<u8>>::from(pair.public());
        PartnerKey {
            encoding: EncodingKey::from_rsa_der(&der),
            public: json!({
                "kty": "RSA",
                "n": URL_SAFE_NO_PAD.encode(&public.n),
                "e": URL_SAFE_NO_PAD.encode(&public.e),
            }),
        }
    }

    /// The private key, for signing with jsonwebtoken's `encode`.
    pub(crate) fn encoding_key(&self) -> &EncodingKey {
        &self.encoding
    }

    /// The public JWK with `kid` (when given) and any extra members.
    pub(crate) fn jwk(&self, kid: Option<&str>, extra: Value) -> Value {
        let mut jwk = self.public.clone();
        if let Some(kid) = kid {
            jwk["kid"] = kid.into();
        }
        if let Value::Object(extra) = extra {
            for (name, value) in extra {
                jwk[name] = value;
            }
        }
        jwk
    }

    /// A compact JWS of `claims` under exactly `header` (which should name `alg`), signed with
    /// this key by our ring provider.
    pub(crate) fn sign(&self, alg: Algorithm, header: &Value, claims: &Value) -> String {
        let mut message = URL_SAFE_NO_PAD.encode(header.to_string());
        message.push('.');
        message.push_str(&URL_SAFE_NO_PAD.encode(claims.to_string()));
        let signer = (keys::RING_PROVIDER.signer_factory)(&alg, &self.encoding).unwrap();
        let signature =
            jsonwebtoken::signature::Signer::try_sign(&*signer, message.as_bytes()).unwrap();
        format!("{message}.{}", URL_SAFE_NO_PAD.encode(signature))
    }
}

/// A JWKS document of `keys`.
pub(crate) fn jwks(keys: &[Value]) -> String {
    json!({ "keys": keys }).to_string()
}
