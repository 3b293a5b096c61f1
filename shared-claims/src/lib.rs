//! The access-token contract both services agree on: RFC 9068 claims, scopes, partner and client ids,
//! and the pure validation rules a verifier applies. No I/O lives here.

mod claims;
mod ids;
mod scope;

pub use claims::{
    ACCESS_TOKEN_TYP, AccessTokenClaims, Audience, ClaimsError, Confirmation, DEFAULT_LEEWAY_SECS,
    MAX_TOKEN_BYTES, is_access_token_typ,
};
pub use ids::{ClientId, IdError, PartnerId};
pub use scope::{Scope, ScopeError, ScopeSet};
