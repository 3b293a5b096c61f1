//! The OAuth 2.0 endpoints and their error model.

pub mod client_auth;
pub mod error;
pub mod form;
pub mod introspect;
pub mod lockout;
pub mod revoke;
pub mod token;
