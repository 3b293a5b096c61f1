//! Baselines measured in the same run: ring signing and verifying the bytes of a real token on
//! one core, and our full verification path (`keys::verify`) on the same token.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::Context;
use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair};

use crate::Args;

/// Calls `f` in a loop for the measurement time, `runs` times; the median rate per second.
pub fn rate(args: &Args, mut f: impl FnMut()) -> f64 {
    let mut rates = Vec::new();
    for _ in 0..args.runs {
        let limit = Duration::from_secs_f64(args.seconds);
        let began = Instant::now();
        let mut n = 0u64;
        while began.elapsed() < limit {
            for _ in 0..64 {
                f();
            }
            n += 64;
        }
        rates.push(n as f64 / began.elapsed().as_secs_f64());
    }
    crate::median(rates)
}

/// The JWS signing input (`header.payload`) of `token`.
fn signing_input(token: &str) -> anyhow::Result<&str> {
    Ok(token.rsplit_once('.').context("a compact JWS")?.0)
}

/// Signatures per second on one core, with a fresh key of `alg`, over the signing input of
/// `token` (a real token from the server).
pub fn sign_rate(alg: &str, token: &str, args: &Args) -> anyhow::Result<f64> {
    let input = signing_input(token)?.as_bytes().to_vec();
    let rng = SystemRandom::new();
    Ok(match alg {
        "ES256" => {
            let pkcs8 =
                EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                    .map_err(|_| anyhow::anyhow!("key generation"))?;
            let pair = EcdsaKeyPair::from_pkcs8(
                &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                pkcs8.as_ref(),
                &rng,
            )
            .map_err(|_| anyhow::anyhow!("key parsing"))?;
            rate(args, || {
                std::hint::black_box(pair.sign(&rng, &input).expect("signing"));
            })
        }
        "EdDSA" => {
            let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng)
                .map_err(|_| anyhow::anyhow!("key generation"))?;
            let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
                .map_err(|_| anyhow::anyhow!("key parsing"))?;
            rate(args, || {
                std::hint::black_box(pair.sign(&input));
            })
        }
        other => anyhow::bail!("no baseline for {other}"),
    })
}

/// ES256 verifications per second on one core: ring alone, on `token`'s signing input signed
/// by a fresh key.
pub fn verify_rate(token: &str, args: &Args) -> anyhow::Result<f64> {
    let input = signing_input(token)?.as_bytes().to_vec();
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
        .map_err(|_| anyhow::anyhow!("key generation"))?;
    let pair = EcdsaKeyPair::from_pkcs8(
        &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        pkcs8.as_ref(),
        &rng,
    )
    .map_err(|_| anyhow::anyhow!("key parsing"))?;
    let sig = pair
        .sign(&rng, &input)
        .map_err(|_| anyhow::anyhow!("signing"))?;
    let public = signature::UnparsedPublicKey::new(
        &signature::ECDSA_P256_SHA256_FIXED,
        pair.public_key().as_ref().to_vec(),
    );
    Ok(rate(args, || {
        public
            .verify(&input, sig.as_ref())
            .expect("a valid signature");
    }))
}

/// Full verifications per second on one core: `keys::verify` (header parse, key match, ring
/// signature check, claims) of `token` against the token service's published key.
pub async fn full_verify_rate(token: &str, auth: &SocketAddr, args: &Args) -> anyhow::Result<f64> {
    keys::install_crypto_provider();
    let jwks: jsonwebtoken::jwk::JwkSet = crate::http()
        .get(format!("http://{auth}/.well-known/jwks.json"))
        .send()
        .await?
        .json()
        .await?;
    let header = keys::verify::parse_header(token)?;
    let jwk = jwks
        .find(&header.kid)
        .context("the token's key is published")?;
    let key = keys::verify::VerifyingKey::from_jwk(jwk).context("a usable key")?;
    let payload = token.split('.').nth(1).context("a payload")?;
    let claims: serde_json::Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload)?)?;
    let issuer = claims["iss"].as_str().context("iss")?.to_owned();
    let audience = match &claims["aud"] {
        serde_json::Value::String(a) => a.clone(),
        serde_json::Value::Array(a) => a[0].as_str().context("aud")?.to_owned(),
        _ => anyhow::bail!("aud"),
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as i64;
    Ok(rate(args, || {
        let header = keys::verify::parse_header(token).expect("a header");
        let expect = keys::verify::Expectations {
            issuer: &issuer,
            audience: Some(&audience),
            leeway: 30,
            now,
        };
        std::hint::black_box(
            keys::verify::verify_with_key(token, &header, &key, expect).expect("a valid token"),
        );
    }))
}
