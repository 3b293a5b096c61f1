//! The public keys clients authenticate with (`private_key_jwt`): a registered JWKS document,
//! parsed strictly ([`parse_jwks`]).

mod jwks;
#[cfg(test)]
pub(crate) mod test_keys;

pub use jwks::{
    ClientKey, JwksError, KeyKind, KeyProblem, MAX_JWKS_BYTES, MAX_KEYS, MIN_RSA_BITS, parse_jwks,
};
