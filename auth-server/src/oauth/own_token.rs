//! Verification of the access tokens this service issued, for the endpoints that take one back
//! (revocation, introspection).

use keys::verify::{Expectations, parse_header, verify_with_key};
use shared_claims::AccessTokenClaims;

use crate::state::AppState;

/// Verifies an access token we issued against our published keys (no audience check). No leeway:
/// the clock that judges `exp` here is the one that set it. A revoked key is no longer
/// published, so its tokens fail here at once.
pub fn verify(state: &AppState, token: &str) -> Option<AccessTokenClaims> {
    let header = parse_header(token).ok()?;
    let ring = state.keys.get();
    let key = ring.verifying_key(&header.kid)?;
    let expect = Expectations {
        issuer: &state.config.issuer,
        audience: None,
        leeway: 0,
        now: crate::now(),
    };
    verify_with_key(token, &header, key, expect).ok()
}
