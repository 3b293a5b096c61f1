//! End-to-end tests over real HTTP on loopback, in one test binary: both services run in-process
//! on port 0, each test on its own SQLite file or PostgreSQL schema. `common` holds the one set
//! of helpers every module uses (servers, databases, requests, token decoding).
//!
//! Tests that install a global log subscriber (`log_hygiene`, `file_permissions`) are binaries
//! of their own, so the subscriber captures only their own servers.

#[macro_use]
mod common;

mod api_docs;
mod api_keys;
mod brute_force;
mod client_certs;
mod database_faults;
mod demo_launcher;
mod hostile_tokens;
mod jwks_cache;
mod key_lifecycle;
mod metrics;
mod online_check;
mod partner_api;
mod partner_client;
mod private_key_jwt;
mod real_clients;
mod refresh_tokens;
mod request_limits;
mod secrets_at_rest;
mod shared_limits;
mod token_service;
mod transport;
