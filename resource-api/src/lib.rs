//! The partner API: verifies bearer tokens locally against the token service's cached JWKS,
//! enforces per-route scopes and per-client rate limits, and serves each partner only its own
//! orders and invoices.

pub mod api_keys;
pub mod app;
pub mod auth;
pub mod authorizer;
pub mod config;
pub mod introspection;
pub mod jwks;
pub mod lambda;
pub mod metrics;
pub mod openapi;
pub mod problem;
pub mod routes;
pub mod state;
pub mod store;
pub mod verify;
pub mod views;

pub use app::{Application, router};
pub use config::Settings;
pub use state::AppState;
