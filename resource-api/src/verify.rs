//! Bearer-token verification for the partner API: the strict checks of `keys::verify`, with keys
//! taken only from the cached JWKS of the configured URL, and a bounded cache of tokens already
//! verified, so a partner reusing its token pays for one signature check, not one per request.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

pub use keys::verify::TokenError;
use keys::verify::{Expectations, parse_header, verify_with_key};
use quick_cache::sync::Cache;
use shared_claims::{AccessTokenClaims, MAX_TOKEN_BYTES};

use crate::jwks::JwksCache;

/// RFC 8705 §3: a certificate-bound token (`cnf.x5t#S256`) is accepted only from a client that
/// presented that certificate (`presented`: its `x5t#S256`), compared in constant time. Unbound
/// tokens need no certificate. Checked on every request, after the verified-token cache, so a
/// cache hit never skips it.
pub fn binding_holds(claims: &AccessTokenClaims, presented: Option<&str>) -> bool {
    use subtle::ConstantTimeEq;
    match (&claims.cnf, presented) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(cnf), Some(presented)) => {
            let (bound, presented) = (cnf.x5t_s256.as_bytes(), presented.as_bytes());
            bound.len() == presented.len() && bool::from(bound.ct_eq(presented))
        }
    }
}

/// Default number of verified tokens remembered.
pub const DEFAULT_TOKEN_CACHE_SIZE: usize = 10_000;

/// A token that passed every check, remembered under the SHA-256 of its bytes.
#[derive(Clone)]
struct Verified {
    claims: Arc<AccessTokenClaims>,
    /// The key that signed it: once the JWKS no longer has it (revoked), the entry is void.
    kid: Arc<str>,
    /// `exp` plus the leeway: the first second at which the token is refused.
    refused_from: i64,
}

/// Verifies access tokens for one issuer and audience. Cheap to clone (the state is cloned per
/// request): every clone shares one [`Inner`].
#[derive(Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

struct Inner {
    jwks: JwksCache,
    issuer: String,
    audience: String,
    leeway: i64,
    /// `None` when the cache is turned off (size 0).
    verified: Option<Arc<Cache<[u8; 32], Verified>>>,
    full_checks: AtomicU64,
}

impl Verifier {
    /// `cache_size` bounds the verified-token cache (0 turns it off).
    pub fn new(
        jwks: JwksCache,
        issuer: String,
        audience: String,
        leeway: i64,
        cache_size: usize,
    ) -> Verifier {
        Verifier {
            inner: Arc::new(Inner {
                jwks,
                issuer,
                audience,
                leeway,
                verified: (cache_size > 0).then(|| Arc::new(Cache::new(cache_size))),
                full_checks: AtomicU64::new(0),
            }),
        }
    }

    /// How many tokens were verified in full (signature and claims), cache misses included.
    pub fn full_checks(&self) -> u64 {
        self.inner.full_checks.load(Ordering::Relaxed)
    }

    /// The issuer tokens must come from: the token service's base URL.
    pub fn issuer(&self) -> &str {
        &self.inner.issuer
    }

    pub fn jwks(&self) -> &JwksCache {
        &self.inner.jwks
    }

    /// The token's claims if it is valid now. A token seen before is answered from the cache
    /// while it is unexpired and its key is still published; anything else is verified in full.
    pub async fn verify(&self, token: &str) -> Result<Arc<AccessTokenClaims>, TokenError> {
        self.inner.jwks.refresh_if_stale().await;
        let now = chrono::Utc::now().timestamp();
        let Some(cache) = self
            .inner
            .verified
            .as_ref()
            .filter(|_| token.len() <= MAX_TOKEN_BYTES)
        else {
            return self
                .verify_fully(token, now)
                .await
                .map(|(claims, _)| Arc::new(claims));
        };
        let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
        let key: [u8; 32] = digest.as_ref().try_into().expect("SHA-256 is 32 bytes");
        if let Some(hit) = cache.get(&key) {
            if now < hit.refused_from && self.inner.jwks.contains(&hit.kid) {
                return Ok(hit.claims);
            }
            cache.remove(&key);
        }
        let (claims, kid) = self.verify_fully(token, now).await?;
        let claims = Arc::new(claims);
        cache.insert(
            key,
            Verified {
                claims: claims.clone(),
                kid: kid.into(),
                refused_from: claims.exp.saturating_add(self.inner.leeway),
            },
        );
        Ok(claims)
    }

    /// Every check, then the claims and the `kid` of the key that signed them.
    async fn verify_fully(
        &self,
        token: &str,
        now: i64,
    ) -> Result<(AccessTokenClaims, String), TokenError> {
        self.inner.full_checks.fetch_add(1, Ordering::Relaxed);
        let header = parse_header(token)?;
        let key = self
            .inner
            .jwks
            .get(&header.kid)
            .await
            .ok_or(TokenError::UnknownKey)?;
        let expect = Expectations {
            issuer: &self.inner.issuer,
            audience: Some(&self.inner.audience),
            leeway: self.inner.leeway,
            now,
        };
        let claims = verify_with_key(token, &header, &key, expect)?;
        Ok((claims, header.kid))
    }
}
