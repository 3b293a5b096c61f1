//! Signing keys in the token service: every lifecycle step in one place, and the keys a running
//! server holds.
//!
//! - [`lifecycle`]: bootstrap, rotation (routine, forced, scheduled), revocation, purge,
//!   master-key rewrap, import, and the fresh start after a lost master key. Each step is a list
//!   of conditional [`crate::store::KeyChange`]s applied in one transaction. Private keys are
//!   sealed, opened and re-sealed only through [`keys::SealedKey`]; no plaintext key bytes pass
//!   through this crate.
//! - [`policy`]: when a rotation or a purge is safe.
//! - [`ring`]: the active key opened once and the pre-serialized JWKS ([`KeyRing`]), swapped
//!   when the key table changes ([`SharedKeys`]).
//! - [`master`]: the master key, re-read from its file when it stops opening the keys.
//! - [`maintenance`]: the loop that reloads keys, rotates on schedule and purges.

pub mod lifecycle;
pub mod maintenance;
pub mod master;
pub mod policy;
pub mod ring;

pub use lifecycle::{
    Purge, Revocation, Rotation, RotationRefused, bootstrap, import_key, purge_keys,
    recover_lost_master_key, revoke_key, rewrap_keys, rotate_key,
};
pub use master::MasterKeySource;
pub use policy::KeyPolicy;
pub use ring::{KeyRing, SharedKeys};
