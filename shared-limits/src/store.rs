//! The shared store: a Redis (or Valkey) connection, the scripts that decide there, and the
//! fallback policy.
//!
//! Each decision is one script invocation (`EVALSHA`; the script is loaded on first use), bounded
//! by [`RedisSettings::timeout`]. On an error or a timeout the caller decides in process instead,
//! so a partner never waits longer than the timeout for Redis and never gets an error because of
//! it, and nothing becomes unlimited. The degradation is logged once, the recovery once (see
//! `health`). The connection manager of the `redis` crate reconnects by itself.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{FromRedisValue, Script, ScriptInvocation};

use crate::budget::{Rate, Verdict};
use crate::health::Health;

/// Where the shared limits live. Not `Debug`: the URL may carry a password.
#[derive(Clone)]
pub struct RedisSettings {
    /// `redis://[user:password@]host[:port][/db]`, or `rediss://` for TLS.
    pub url: String,
    /// The longest one decision waits for Redis before it is made in process.
    pub timeout: Duration,
    /// Put before every key, so several deployments can share one Redis.
    pub key_prefix: String,
}

impl RedisSettings {
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(50);
    pub const DEFAULT_KEY_PREFIX: &str = "partner-platform:";

    /// From the three settings of a service; `None` (limits in process) when the URL is unset
    /// or empty.
    pub fn from_options(
        url: Option<String>,
        timeout_ms: u64,
        key_prefix: String,
    ) -> Option<RedisSettings> {
        let url = url.filter(|u| !u.trim().is_empty())?;
        Some(RedisSettings {
            url,
            timeout: Duration::from_millis(timeout_ms),
            key_prefix,
        })
    }

    /// The given URL with the defaults, as tests start from.
    pub fn new(url: impl Into<String>) -> RedisSettings {
        RedisSettings {
            url: url.into(),
            timeout: Self::DEFAULT_TIMEOUT,
            key_prefix: Self::DEFAULT_KEY_PREFIX.to_owned(),
        }
    }
}

/// A handle on the shared store; cheap to clone.
#[derive(Clone)]
pub struct SharedStore(Arc<Inner>);

struct Inner {
    connection: ConnectionManager,
    timeout: Duration,
    prefix: String,
    health: Health,
    rate: Script,
    lockout: Script,
    locked: Script,
    /// Names the setting in log lines ("RESOURCE_REDIS_URL"), never its value.
    setting: &'static str,
}

const GCRA: &str = include_str!("gcra.lua");

impl SharedStore {
    /// Prepares the connection without waiting for it: an instance starts even while Redis is
    /// down (it then decides in process until Redis answers). Fails only on a malformed URL.
    /// `setting` is the variable's name, for messages.
    pub fn open(settings: &RedisSettings, setting: &'static str) -> anyhow::Result<SharedStore> {
        // The error of a bad URL may quote it; the URL may hold a password, so it is not passed on.
        let client = redis::Client::open(settings.url.as_str())
            .map_err(|_| anyhow::anyhow!("{setting} is not a valid redis:// or rediss:// URL"))?;
        // Reconnection attempts back off to at most half a second, so a Redis that is back is
        // found soon; after the last attempt fails, the next decision that tries starts anew.
        let config = ConnectionManagerConfig::new()
            .set_number_of_retries(3)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500))
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(None);
        let connection = ConnectionManager::new_lazy_with_config(client, config)
            .with_context(|| format!("{setting}: cannot prepare the Redis connection"))?;
        Ok(SharedStore(Arc::new(Inner {
            connection,
            timeout: settings.timeout,
            prefix: settings.key_prefix.clone(),
            health: Health::new(),
            rate: Script::new(&format!("{GCRA}\n{}", include_str!("rate.lua"))),
            lockout: Script::new(&format!("{GCRA}\n{}", include_str!("lockout.lua"))),
            locked: Script::new(include_str!("locked.lua")),
            setting,
        })))
    }

    /// [`SharedStore::open`], then connects and loads the scripts, so the first requests do not
    /// pay for it. Waits at most two seconds: a Redis that does not answer is logged and the
    /// store starts degraded (in process), to be tried again by the decisions.
    pub async fn connect(
        settings: &RedisSettings,
        setting: &'static str,
    ) -> anyhow::Result<SharedStore> {
        let store = SharedStore::open(settings, setting)?;
        store.warm_up(Duration::from_secs(2)).await;
        Ok(store)
    }

    async fn warm_up(&self, wait: Duration) {
        let mut connection = self.0.connection.clone();
        let scripts = [&self.0.rate, &self.0.lockout, &self.0.locked];
        let load = async {
            for script in scripts {
                script.load_async(&mut connection).await?;
            }
            Ok::<(), redis::RedisError>(())
        };
        match tokio::time::timeout(wait, load).await {
            Ok(Ok(())) => {
                tracing::info!(setting = self.0.setting, "limits are shared through Redis")
            }
            Ok(Err(err)) => self.failed(&err.to_string()),
            Err(_) => self.failed(&format!("no answer within {} ms", wait.as_millis())),
        }
    }

    /// Whether decisions are being made in process because Redis did not answer.
    pub fn is_degraded(&self) -> bool {
        self.0.health.is_degraded()
    }

    /// The full name of a key.
    pub(crate) fn key(&self, name: &str) -> String {
        format!("{}{name}", self.0.prefix)
    }

    /// One rate decision for `key`, or `None` when Redis did not answer (decide in process).
    pub(crate) async fn gcra(&self, key: &str, rate: Rate) -> Option<Verdict> {
        let mut invocation = self.0.rate.key(format!("{}rate:{key}", self.0.prefix));
        invocation.arg(rate.interval_micros()).arg(rate.burst.get());
        let (allowed, n): (i64, i64) = self.run(&invocation).await?;
        Some(if allowed == 1 {
            Verdict::Allowed {
                remaining: u32::try_from(n.max(0)).unwrap_or(u32::MAX),
            }
        } else {
            Verdict::Denied {
                retry_after: Duration::from_micros(n.max(0).unsigned_abs()),
            }
        })
    }

    pub(crate) fn lockout_script(&self) -> &Script {
        &self.0.lockout
    }

    pub(crate) fn locked_script(&self) -> &Script {
        &self.0.locked
    }

    /// Runs one script invocation within the timeout. `None` when the store is degraded and not
    /// due for a retry, or when this attempt failed.
    pub(crate) async fn run<T: FromRedisValue>(
        &self,
        invocation: &ScriptInvocation<'_>,
    ) -> Option<T> {
        if !self.0.health.should_try() {
            return None;
        }
        let mut connection = self.0.connection.clone();
        match tokio::time::timeout(self.0.timeout, invocation.invoke_async(&mut connection)).await {
            Ok(Ok(answer)) => {
                if self.0.health.succeeded() {
                    tracing::info!(
                        setting = self.0.setting,
                        "Redis answers again: limits are shared across instances again"
                    );
                }
                Some(answer)
            }
            Ok(Err(err)) => {
                self.failed(&err.to_string());
                None
            }
            Err(_) => {
                self.failed(&format!(
                    "no answer within {} ms",
                    self.0.timeout.as_millis()
                ));
                None
            }
        }
    }

    fn failed(&self, reason: &str) {
        if self.0.health.failed() {
            tracing::warn!(
                setting = self.0.setting,
                reason,
                "Redis is not answering: limits are enforced per instance until it does"
            );
        }
    }
}
