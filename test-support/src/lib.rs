//! Test support shared by the packages' integration tests (a dev-dependency only):
//!
//! - [`db`]: a database of its own per test: a SQLite file in a temporary folder, or a private
//!   schema on the PostgreSQL server (`TEST_POSTGRES_URL`);
//! - [`lambda`]: a fake AWS Lambda Runtime API served in-process, events shaped like AWS's
//!   documented examples, and real function binaries started against it;
//! - [`pki`]: certificates made on the spot: a CA and the client certificates it issues (current,
//!   expired), self-signed client certificates, and server certificates for TLS listeners.

pub mod db;
pub mod lambda;
pub mod pki;
