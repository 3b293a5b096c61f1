//! A partner's side of `private_key_jwt`: key pairs made with ring, their public JWKS, and client
//! assertions signed with them (RFC 7523 §2.2), as a partner's client library would make them.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair};
use serde_json::{Value, json};

use super::{ISSUER, TestAuth, http, unix_time};

pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A partner's signing key and its public JWK.
pub struct PartnerKey {
    pub kid: String,
    pub alg: Algorithm,
    encoding: EncodingKey,
    pub jwk: Value,
}

impl PartnerKey {
    pub fn es256(kid: &str) -> PartnerKey {
        keys::install_crypto_provider();
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        let point = pair.public_key().as_ref();
        PartnerKey {
            kid: kid.into(),
            alg: Algorithm::ES256,
            encoding: EncodingKey::from_ec_der(pkcs8.as_ref()),
            jwk: json!({
                "kty": "EC", "crv": "P-256", "kid": kid, "use": "sig", "alg": "ES256",
                "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
                "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
            }),
        }
    }

    pub fn ed25519(kid: &str) -> PartnerKey {
        keys::install_crypto_provider();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        PartnerKey {
            kid: kid.into(),
            alg: Algorithm::EdDSA,
            encoding: EncodingKey::from_ed_der(pkcs8.as_ref()),
            jwk: json!({
                "kty": "OKP", "crv": "Ed25519", "kid": kid,
                "x": URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()),
            }),
        }
    }

    /// `claims` signed with this key, the header naming its `kid`.
    pub fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        header.typ = Some("JWT".into());
        jsonwebtoken::encode(&header, claims, &self.encoding).unwrap()
    }

    /// A well-formed assertion for `client_id`, addressed to `aud`, valid for a minute, with a
    /// fresh `jti`.
    pub fn assertion_to(&self, client_id: &str, aud: Value) -> String {
        self.sign(&claims(client_id, aud))
    }

    /// A well-formed assertion for `client_id`, addressed to the issuer.
    pub fn assertion(&self, client_id: &str) -> String {
        self.assertion_to(client_id, json!(ISSUER))
    }
}

/// The claims of a well-formed assertion, for tests to alter.
pub fn claims(client_id: &str, aud: Value) -> Value {
    let now = unix_time() as i64;
    json!({
        "iss": client_id, "sub": client_id, "aud": aud,
        "iat": now, "exp": now + 60, "jti": uuid::Uuid::new_v4().to_string(),
    })
}

/// The public key set of `keys`, as a partner publishes it.
pub fn jwks(keys: &[&PartnerKey]) -> String {
    json!({ "keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>() }).to_string()
}

/// The token endpoint's answer to a client-credentials request authenticated by `assertion`.
pub async fn assertion_token(
    auth: &TestAuth,
    client_id: Option<&str>,
    assertion: &str,
) -> reqwest::Response {
    let mut form = vec![
        ("grant_type", "client_credentials"),
        ("client_assertion_type", JWT_BEARER),
        ("client_assertion", assertion),
    ];
    if let Some(id) = client_id {
        form.push(("client_id", id));
    }
    http()
        .post(auth.url("/oauth2/token"))
        .form(&form)
        .send()
        .await
        .expect("token request")
}
