//! A client for the partner API, for partners writing machine clients in Rust: it gets access
//! tokens from the token service, keeps them until shortly before they expire, and calls the
//! partner API with typed requests and typed errors; or it calls the API with an API key.
//!
//! ```no_run
//! # async fn run() -> Result<(), partner_client::Error> {
//! let client = partner_client::Client::new(partner_client::Config::from_env()?)?;
//! let orders = client.orders(&partner_client::PageRequest::first()).await?;
//! for order in &orders.items {
//!     println!("{} {} {}", order.id, order.status, order.total_cents);
//! }
//! # Ok(())
//! # }
//! ```
//!
//! What it does for you:
//!
//! - **Tokens**: the client-credentials grant with HTTP Basic authentication (RFC 6749 §2.3.1,
//!   §4.4). A token is reused until shortly before it expires ([`Config::renew_before`]) and
//!   renewed then, before a request can fail with it. When the token response carries a refresh
//!   token, renewal uses it (§6) and falls back to the client credentials when it is refused.
//! - **One renewal at a time**: however many tasks share a [`Client`] (it is a cheap clone), at
//!   most one token request is in flight; the others wait for its answer.
//! - **One retry**: when the API answers 401 `invalid_token` (the signing key was revoked, say),
//!   the client drops the token, gets a new one and sends the request once more.
//! - **Typed errors** ([`Error`]): the token endpoint's OAuth error, the API's problem with its
//!   `WWW-Authenticate` challenge, rate limiting and unavailability with `Retry-After`, transport
//!   and decoding.
//!
//! A partner created with an API key (`pak_...`) builds its client with [`Client::with_api_key`]
//! from an [`ApiKeyConfig`] instead: every call carries the key in `X-API-Key`, no token is ever
//! requested, and the calls and errors are the same (a wrong key is a 401 `invalid_token`
//! [`Error::Api`], and is not retried):
//!
//! ```no_run
//! # async fn run() -> Result<(), partner_client::Error> {
//! let client = partner_client::Client::with_api_key(partner_client::ApiKeyConfig::from_env()?)?;
//! let orders = client.orders(&partner_client::PageRequest::first()).await?;
//! # Ok(())
//! # }
//! ```
//!
//! The client secret and the API key are held as [`secrecy::SecretString`]s: no `Debug` output or
//! error shows them.

mod api;
mod api_key;
mod client;
mod config;
mod error;
mod tokens;

pub use api::{Invoice, Me, Order, Page, PageRequest, Product, StockLevel};
pub use client::Client;
pub use config::{ApiKeyConfig, Config};
pub use error::{BearerChallenge, Error, Problem};
pub use secrecy::{ExposeSecret, SecretString};
pub use tokens::AccessToken;

pub type Result<T, E = Error> = std::result::Result<T, E>;
