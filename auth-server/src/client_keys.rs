//! The public keys clients authenticate with (`private_key_jwt`): a registered JWKS document or
//! a `jwks_uri`, parsed strictly ([`parse_jwks`]) and cached ([`ClientKeys`]).
//!
//! Verifying an assertion with the key found here is `oauth::assertion`'s part; refusing a
//! replayed one is the store's.

mod fetch;
mod jwks;
mod policy;
mod registry;
#[cfg(test)]
pub(crate) mod test_keys;
#[cfg(test)]
mod tests;

pub use fetch::{FetchError, JwksUriError, check_jwks_uri};
pub use jwks::{
    ClientKey, JwksError, KeyKind, KeyProblem, MAX_JWKS_BYTES, MAX_KEYS, MAX_KID_CHARS,
    MIN_RSA_BITS, parse_jwks,
};
pub use registry::{ClientKeys, KeyFetchPolicy, KeyLookupError, KeySource};
