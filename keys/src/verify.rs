//! Verification of our access tokens against a trusted public key, strict by construction:
//!
//! - the token's size is bounded before anything is decoded;
//! - the header may hold only `alg`, `typ` and `kid` — `jku`, `x5u`, `jwk`, `x5c` and `crit` are
//!   refused outright, so no key can be smuggled in through the token itself;
//! - `typ` must be `at+jwt` (or `application/at+jwt`, RFC 9068 §4);
//! - the caller finds the key by `kid` in a key set it trusts, and the algorithm comes from that
//!   key: a header `alg` that differs (`none`, `HS256`, ...) is refused;
//! - signature, then `iss`, `aud`, `exp`, `nbf`, `iat` (with a leeway) and `sub = client_id`.
//!
//! Both the partner API (local verification) and the token service (introspection, revocation)
//! use it. Install [`crate::install_crypto_provider`] first.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{DecodingKey, Validation};
use shared_claims::{AccessTokenClaims, ClaimsError, MAX_TOKEN_BYTES, is_access_token_typ};

use crate::Algorithm;

/// A public key trusted for verification, with the one algorithm it may verify.
pub struct VerifyingKey {
    pub kid: String,
    /// Taken from the key type, never from a token header.
    pub alg: Algorithm,
    pub key: DecodingKey,
}

impl VerifyingKey {
    /// A verifying key from a published JWK. The algorithm follows from the key type alone
    /// (P-256 → ES256, Ed25519 → EdDSA, RSA → RS256) and a declared `alg` must agree with it.
    /// Symmetric keys, keys for encryption, keys without a usable `kid` and anything unknown
    /// give `None`.
    pub fn from_jwk(jwk: &Jwk) -> Option<VerifyingKey> {
        let kid = jwk
            .common
            .key_id
            .clone()
            .filter(|k| !k.is_empty() && k.len() <= 128)?;
        if jwk
            .common
            .public_key_use
            .as_ref()
            .is_some_and(|u| *u != PublicKeyUse::Signature)
        {
            return None;
        }
        let declared = jwk.common.key_algorithm;
        let alg = match &jwk.algorithm {
            AlgorithmParameters::EllipticCurve(p)
                if p.curve == EllipticCurve::P256
                    && matches!(declared, None | Some(KeyAlgorithm::ES256)) =>
            {
                Algorithm::ES256
            }
            AlgorithmParameters::OctetKeyPair(p)
                if p.curve == EllipticCurve::Ed25519
                    && matches!(declared, None | Some(KeyAlgorithm::EdDSA)) =>
            {
                Algorithm::EdDSA
            }
            AlgorithmParameters::RSA(_) if matches!(declared, None | Some(KeyAlgorithm::RS256)) => {
                Algorithm::RS256
            }
            _ => return None,
        };
        let key = DecodingKey::from_jwk(jwk).ok()?;
        Some(VerifyingKey { kid, alg, key })
    }
}

/// Why a token was refused. The message goes into `error_description`, so it names the rule that
/// failed and never echoes token content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is not a well-formed JWS: {0}")]
    Malformed(&'static str),
    #[error("the token header is not acceptable: {0}")]
    Header(&'static str),
    #[error("the token was not signed by a trusted key")]
    UnknownKey,
    #[error("the token signature is invalid")]
    BadSignature,
    #[error("the token claims are invalid: {0}")]
    Claims(&'static str),
    #[error("{0}")]
    Rejected(ClaimsError),
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHeader {
    alg: String,
    typ: Option<String>,
    kid: Option<String>,
}

/// The header of a token that passed the structural checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenHeader {
    pub alg: String,
    pub kid: String,
}

/// Structural checks and the header, before any key is looked up.
pub fn parse_header(token: &str) -> Result<TokenHeader, TokenError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(TokenError::Malformed("too long"));
    }
    let mut parts = token.split('.');
    let (Some(header), Some(_payload), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed("expected three dot-separated parts"));
    };
    let header = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| TokenError::Malformed("header is not base64url"))?;
    let header: RawHeader = serde_json::from_slice(&header)
        .map_err(|_| TokenError::Header("only alg, typ and kid are accepted, as strings"))?;
    if !header.typ.as_deref().is_some_and(is_access_token_typ) {
        return Err(TokenError::Header("typ must be at+jwt"));
    }
    let kid = header.kid.ok_or(TokenError::Header("kid is required"))?;
    if kid.is_empty() || kid.len() > 128 {
        return Err(TokenError::UnknownKey);
    }
    Ok(TokenHeader {
        alg: header.alg,
        kid,
    })
}

/// What the claims must satisfy besides the signature.
#[derive(Debug, Clone, Copy)]
pub struct Expectations<'a> {
    pub issuer: &'a str,
    /// The audience the verifier serves; `None` leaves the audience to the caller (introspection
    /// compares it with the asking resource server's audiences).
    pub audience: Option<&'a str>,
    pub leeway: i64,
    pub now: i64,
}

/// Verifies the signature with `key` (whose algorithm the header must name) and then the claims.
pub fn verify_with_key(
    token: &str,
    header: &TokenHeader,
    key: &VerifyingKey,
    expect: Expectations<'_>,
) -> Result<AccessTokenClaims, TokenError> {
    if header.alg != key.alg.as_str() {
        return Err(TokenError::Header("alg does not match the key"));
    }
    let mut validation = Validation::new(key.alg.to_jwt());
    validation.set_issuer(&[expect.issuer]);
    match expect.audience {
        Some(audience) => validation.set_audience(&[audience]),
        None => validation.validate_aud = false,
    }
    validation.leeway = expect.leeway.unsigned_abs();
    validation.validate_nbf = true;
    validation.set_required_spec_claims(&["exp", "nbf", "iat", "iss", "aud", "sub"]);
    let data =
        jsonwebtoken::decode::<AccessTokenClaims>(token, &key.key, &validation).map_err(|err| {
            match err.kind() {
                ErrorKind::InvalidSignature
                | ErrorKind::InvalidEcdsaKey
                | ErrorKind::InvalidEddsaKey
                | ErrorKind::InvalidRsaKey(_) => TokenError::BadSignature,
                ErrorKind::ExpiredSignature => TokenError::Rejected(ClaimsError::Expired),
                ErrorKind::ImmatureSignature => TokenError::Rejected(ClaimsError::NotYetValid),
                ErrorKind::InvalidIssuer => TokenError::Rejected(ClaimsError::WrongIssuer),
                ErrorKind::InvalidAudience => TokenError::Rejected(ClaimsError::WrongAudience),
                ErrorKind::MissingRequiredClaim(_) => {
                    TokenError::Claims("a required claim is missing")
                }
                ErrorKind::Base64(_) => TokenError::Malformed("not base64url"),
                ErrorKind::Json(_) | ErrorKind::Utf8(_) => {
                    TokenError::Claims("claims do not have the expected types")
                }
                _ => TokenError::Malformed("cannot be decoded"),
            }
        })?;
    let claims = data.claims;
    claims
        .validate(expect.now, expect.leeway, expect.issuer, expect.audience)
        .map_err(TokenError::Rejected)?;
    Ok(claims)
}
