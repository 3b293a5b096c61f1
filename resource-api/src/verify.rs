//! Bearer-token verification, strict by construction:
//!
//! - the token's size is bounded before anything is decoded;
//! - the header may hold only `alg`, `typ` and `kid` — `jku`, `x5u`, `jwk`, `x5c` and `crit` are
//!   refused outright, so no key can be smuggled in through the token itself;
//! - `typ` must be `at+jwt` (or `application/at+jwt`, RFC 9068 §4);
//! - the key comes only from the configured JWKS, looked up by `kid`, and the algorithm comes from
//!   that key: a header `alg` that differs (`none`, `HS256`, ...) is refused;
//! - signature, then `iss`, `aud`, `exp`, `nbf`, `iat` (with a small leeway) and `sub = client_id`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Validation;
use jsonwebtoken::errors::ErrorKind;
use shared_claims::{AccessTokenClaims, ClaimsError, MAX_TOKEN_BYTES, is_access_token_typ};

use crate::jwks::JwksCache;

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
struct Header {
    alg: String,
    typ: Option<String>,
    kid: Option<String>,
}

/// Verifies access tokens for one issuer and audience.
#[derive(Clone)]
pub struct Verifier {
    jwks: JwksCache,
    issuer: String,
    audience: String,
    leeway: i64,
}

impl Verifier {
    pub fn new(jwks: JwksCache, issuer: String, audience: String, leeway: i64) -> Verifier {
        Verifier {
            jwks,
            issuer,
            audience,
            leeway,
        }
    }

    pub fn jwks(&self) -> &JwksCache {
        &self.jwks
    }

    pub async fn verify(&self, token: &str) -> Result<AccessTokenClaims, TokenError> {
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
        let header: Header = serde_json::from_slice(&header)
            .map_err(|_| TokenError::Header("only alg, typ and kid are accepted, as strings"))?;
        if !header.typ.as_deref().is_some_and(is_access_token_typ) {
            return Err(TokenError::Header("typ must be at+jwt"));
        }
        let kid = header.kid.ok_or(TokenError::Header("kid is required"))?;
        if kid.is_empty() || kid.len() > 128 {
            return Err(TokenError::UnknownKey);
        }
        let key = self.jwks.get(&kid).await.ok_or(TokenError::UnknownKey)?;
        if !alg_name_matches(&header.alg, key.alg) {
            return Err(TokenError::Header("alg does not match the key"));
        }

        let mut validation = Validation::new(key.alg);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.leeway = self.leeway.unsigned_abs();
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "nbf", "iat", "iss", "aud", "sub"]);
        let data = jsonwebtoken::decode::<AccessTokenClaims>(token, &key.key, &validation)
            .map_err(|err| match err.kind() {
                ErrorKind::InvalidSignature
                | ErrorKind::InvalidEcdsaKey
                | ErrorKind::InvalidEddsaKey => TokenError::BadSignature,
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
            })?;
        let claims = data.claims;
        claims
            .validate(
                chrono::Utc::now().timestamp(),
                self.leeway,
                &self.issuer,
                &self.audience,
            )
            .map_err(TokenError::Rejected)?;
        Ok(claims)
    }
}

fn alg_name_matches(header_alg: &str, key_alg: jsonwebtoken::Algorithm) -> bool {
    let expected = match key_alg {
        jsonwebtoken::Algorithm::ES256 => "ES256",
        jsonwebtoken::Algorithm::EdDSA => "EdDSA",
        jsonwebtoken::Algorithm::RS256 => "RS256",
        _ => return false,
    };
    header_alg == expected
}
