//! Bearer-token verification for the partner API: the strict checks of `keys::verify`, with keys
//! taken only from the cached JWKS of the configured URL.

pub use keys::verify::TokenError;
use keys::verify::{Expectations, parse_header, verify_with_key};
use shared_claims::AccessTokenClaims;

use crate::jwks::JwksCache;

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
        let header = parse_header(token)?;
        let key = self
            .jwks
            .get(&header.kid)
            .await
            .ok_or(TokenError::UnknownKey)?;
        let expect = Expectations {
            issuer: &self.issuer,
            audience: Some(&self.audience),
            leeway: self.leeway,
            now: chrono::Utc::now().timestamp(),
        };
        verify_with_key(token, &header, &key, expect)
    }
}
