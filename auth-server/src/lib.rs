//! The token service: OAuth 2.0 client-credentials issuance of RFC 9068 JWTs, JWKS publication,
//! storage, audit trail and the admin CLI.

pub mod admin;
pub mod api_key;
pub mod app;
pub mod audit;
pub mod cli;
pub mod client_keys;
pub mod clients_as_code;
pub mod config;
pub mod directory;
pub mod housekeeping;
pub mod lambda;
pub mod metrics;
pub mod oauth;
pub mod openapi;
pub mod secret;
pub mod signing;
pub mod state;
pub mod store;
pub mod wellknown;

pub use app::{Application, router};
pub use config::Settings;

/// Current time in whole seconds since the Unix epoch, the unit of every timestamp we store.
pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}
