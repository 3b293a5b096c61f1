//! Limits that hold across instances.
//!
//! Two kinds of limit are built here, each as a GCRA (generic cell rate algorithm) budget:
//! [`RateLimiter`], a per-key request rate (the partner API limits each client with it), and
//! [`Lockouts`], budgets of failed authentications per address and per (client, address) that
//! lock a key out once spent (the token service guards client secrets with it).
//!
//! Without a [`SharedStore`] every decision is made in this process's memory, as on a single
//! server. With one (a Redis or Valkey URL), every decision is one Lua script run atomically
//! inside Redis, on Redis's clock, so the budgets hold in aggregate across every instance that
//! uses the same Redis and key prefix. If Redis is slow or down, a decision falls back to the
//! in-process limiter after a short timeout: never unlimited, never an error for the caller; see
//! [`SharedStore`] for how the store degrades and recovers.

mod budget;
mod health;
mod local;
mod lockout;
mod rate;
mod store;

pub use budget::{Rate, Verdict};
pub use lockout::{LockKey, LockoutPolicy, Lockouts};
pub use rate::RateLimiter;
pub use store::{RedisSettings, SharedStore};
