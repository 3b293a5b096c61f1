//! A partner's side of the client-authentication rows: its ES256 key and the client assertions it
//! signs for `private_key_jwt`, and its TLS client configurations (rustls on the ring provider,
//! trusting only the bench's server CA, with or without a client certificate).

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use rustls::client::Resumption;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};
use serde_json::json;
use test_support::pki::Leaf;

/// `client_assertion_type` of a JWT client assertion (RFC 7523 §2.2), form-encoded.
pub const JWT_BEARER_FORM: &str =
    "urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer";

/// A partner's ES256 signing key, parsed once, as a client library would keep it.
pub struct PartnerKey {
    pair: EcdsaKeyPair,
    rng: SystemRandom,
    kid: String,
    /// The JOSE header, base64url: the same for every assertion.
    header: String,
}

impl PartnerKey {
    pub fn generate(kid: &str) -> anyhow::Result<PartnerKey> {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| anyhow::anyhow!("P-256 key generation"))?;
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .map_err(|_| anyhow::anyhow!("P-256 key parsing"))?;
        let header = json!({ "alg": "ES256", "typ": "JWT", "kid": kid });
        Ok(PartnerKey {
            pair,
            rng,
            kid: kid.to_owned(),
            header: URL_SAFE_NO_PAD.encode(header.to_string()),
        })
    }

    /// The public key set the partner registers (`client create --jwks-file`).
    pub fn jwks(&self) -> String {
        // An uncompressed point: 0x04, then x and y of 32 bytes each.
        let point = self.pair.public_key().as_ref();
        json!({ "keys": [{
            "kty": "EC", "crv": "P-256", "kid": self.kid, "use": "sig", "alg": "ES256",
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
        }]})
        .to_string()
    }

    /// A new assertion for `client_id` addressed to `audience` (the token service's issuer
    /// identifier): issued now, valid for a minute, with a `jti` of its own, since the token
    /// service accepts each `jti` once.
    pub fn assertion(&self, client_id: &str, audience: &str) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let claims = json!({
            "iss": client_id, "sub": client_id, "aud": audience,
            "iat": now, "exp": now + 60, "jti": uuid::Uuid::new_v4().to_string(),
        });
        let input = format!(
            "{}.{}",
            self.header,
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = self
            .pair
            .sign(&self.rng, input.as_bytes())
            .expect("ring signs with a valid key");
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()))
    }
}

/// A TLS client configuration: the ring provider and its safe default versions, only
/// `server_ca` trusted, HTTP/1.1 by ALPN, `identity` presented when the server asks for a
/// certificate. With `resume` false, session resumption is off, so every new connection is a full
/// handshake.
pub fn tls_client(
    server_ca: &str,
    identity: Option<&Leaf>,
    resume: bool,
) -> anyhow::Result<Arc<ClientConfig>> {
    let mut roots = RootCertStore::empty();
    roots.add(CertificateDer::from_pem_slice(server_ca.as_bytes()).context("the server CA")?)?;
    let builder =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots);
    let mut config = match identity {
        Some(leaf) => builder.with_client_auth_cert(
            vec![CertificateDer::from(leaf.der.clone())],
            PrivateKeyDer::from_pem_slice(leaf.key_pem.as_bytes()).context("the client key")?,
        )?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    if !resume {
        config.resumption = Resumption::disabled();
    }
    Ok(Arc::new(config))
}
