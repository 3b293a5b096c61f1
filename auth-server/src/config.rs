//! Configuration: clap arguments that also read the environment (README, "Configuration"),
//! turned into one plain [`Settings`] struct that tests build directly.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

/// Settings shared by `serve` and the admin commands: where the data lives, and the timings that
/// decide when a key rotation or purge is safe (the CLI must see the same values as the servers).
#[derive(clap::Args, Clone)]
pub struct StoreArgs {
    /// Database URL: sqlite://PATH (file created if missing) or postgres://USER@HOST/DB.
    #[arg(
        id = "auth-database-url",
        long = "auth-database-url",
        env = "AUTH_DATABASE_URL",
        default_value = "sqlite://auth.db",
        global = true
    )]
    pub database_url: String,
    /// File holding the master key that encrypts signing keys at rest (created with mode 0600 on
    /// first start if missing).
    #[arg(
        id = "auth-master-key-file",
        long = "auth-master-key-file",
        env = "AUTH_MASTER_KEY_FILE",
        default_value = "auth-master.key",
        global = true
    )]
    pub master_key_file: PathBuf,
    /// The master key itself, as the text of a master key file, instead of the file: for
    /// platforms that keep secrets in encrypted environment variables (AWS Lambda). Prefer the
    /// variable to the flag, which other users of the machine can see.
    #[arg(
        id = "auth-master-key",
        long = "auth-master-key",
        env = "AUTH_MASTER_KEY",
        hide_env_values = true,
        global = true
    )]
    pub master_key: Option<String>,
    /// The `aud` of clients created without --audience.
    #[arg(
        id = "auth-default-audience",
        long = "auth-default-audience",
        env = "AUTH_DEFAULT_AUDIENCE",
        default_value = "partner-api",
        global = true
    )]
    pub default_audience: String,
    /// Default access-token lifetime in seconds (a client may override it).
    #[arg(id = "auth-access-token-ttl", long = "auth-access-token-ttl", env = "AUTH_ACCESS_TOKEN_TTL", default_value_t = 600,
          global = true,
          value_parser = clap::value_parser!(i64).range(1..=86_400))]
    pub access_token_ttl: i64,
    /// max-age, in seconds, of the JWKS `Cache-Control` header.
    #[arg(id = "auth-jwks-max-age", long = "auth-jwks-max-age", env = "AUTH_JWKS_MAX_AGE", default_value_t = 300,
          global = true,
          value_parser = clap::value_parser!(u64).range(0..=86_400))]
    pub jwks_max_age: u64,
    /// The longest, in seconds, any verifier may cache the JWKS whatever its max-age (API
    /// Gateway's JWT authorizer: up to 7200). A pending key starts signing only once it has been
    /// published this long, and a retired key stays published this long after its last token
    /// expires. Default: --auth-jwks-max-age.
    #[arg(id = "auth-jwks-cache-horizon", long = "auth-jwks-cache-horizon", env = "AUTH_JWKS_CACHE_HORIZON",
          global = true,
          value_parser = clap::value_parser!(u64).range(0..=86_400))]
    pub jwks_cache_horizon: Option<u64>,
    /// How often, in seconds, a running server looks for signing-key changes made by the CLI.
    #[arg(id = "auth-key-reload-interval", long = "auth-key-reload-interval", env = "AUTH_KEY_RELOAD_INTERVAL", default_value_t = 5,
          global = true,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub key_reload_interval: u64,
    /// The longest, in seconds, a request (or an admin command) waits for the database: for a
    /// lock, SQLite's busy timeout, or a connection. Then the token endpoint answers 503
    /// `temporarily_unavailable` with Retry-After.
    #[arg(id = "auth-database-wait", long = "auth-database-wait", env = "AUTH_DATABASE_WAIT", default_value_t = 2,
          global = true,
          value_parser = clap::value_parser!(u64).range(1..=MAX_DATABASE_WAIT))]
    pub database_wait: u64,
}

/// The upper bound of `AUTH_DATABASE_WAIT`: below the request timeout (10 s), so a request that
/// waits on the database is answered 503 rather than 408.
const MAX_DATABASE_WAIT: u64 = 9;

/// Settings of the running token service.
#[derive(clap::Args, Clone)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(
        id = "auth-bind",
        long = "auth-bind",
        env = "AUTH_BIND",
        default_value = "127.0.0.1:8080"
    )]
    pub bind: SocketAddr,
    /// The `iss` of every token and the base of the metadata URLs.
    #[arg(
        id = "auth-issuer",
        long = "auth-issuer",
        env = "AUTH_ISSUER",
        default_value = "http://127.0.0.1:8080"
    )]
    pub issuer: String,
    /// Refresh-token lifetime in seconds.
    #[arg(id = "auth-refresh-token-ttl", long = "auth-refresh-token-ttl", env = "AUTH_REFRESH_TOKEN_TTL", default_value_t = 2_592_000,
          value_parser = clap::value_parser!(i64).range(60..=31_536_000))]
    pub refresh_token_ttl: i64,
    /// Rotate the signing key automatically this often, in seconds (off when unset). With several
    /// instances on one database exactly one of them rotates.
    #[arg(id = "auth-key-rotation-interval", long = "auth-key-rotation-interval", env = "AUTH_KEY_ROTATION_INTERVAL",
          value_parser = clap::value_parser!(u64).range(1..=31_536_000))]
    pub key_rotation_interval: Option<u64>,
    /// PEM certificate chain; with --auth-tls-key, the server speaks HTTPS.
    #[arg(id = "auth-tls-cert", long = "auth-tls-cert", env = "AUTH_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of the certificate.
    #[arg(id = "auth-tls-key", long = "auth-tls-key", env = "AUTH_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// Comma-separated addresses of TLS-terminating proxies in front of this server: their
    /// X-Forwarded-For is honoured, and plaintext on a non-loopback bind is then allowed.
    #[arg(
        id = "auth-trusted-proxies",
        long = "auth-trusted-proxies",
        env = "AUTH_TRUSTED_PROXIES",
        value_delimiter = ','
    )]
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Address of the mutual-TLS listener (RFC 8705): the same endpoints, asking TLS clients
    /// for a certificate, for clients that authenticate with one. Needs AUTH_TLS_CERT and
    /// AUTH_TLS_KEY. Unset: no such listener.
    #[arg(id = "auth-mtls-bind", long = "auth-mtls-bind", env = "AUTH_MTLS_BIND")]
    pub mtls_bind: Option<SocketAddr>,
    /// PEM file of the CAs whose client certificates `tls_client_auth` clients may present.
    #[arg(
        id = "auth-mtls-ca-file",
        long = "auth-mtls-ca-file",
        env = "AUTH_MTLS_CA_FILE"
    )]
    pub mtls_ca_file: Option<PathBuf>,
    /// Public base URL of the mutual-TLS listener, as partners reach it (metadata's
    /// `mtls_endpoint_aliases`). Default: https:// with the issuer's host and AUTH_MTLS_BIND's port.
    #[arg(id = "auth-mtls-url", long = "auth-mtls-url", env = "AUTH_MTLS_URL")]
    pub mtls_url: Option<String>,
    /// Largest single request header (name and value) in bytes; a larger one is answered 431.
    #[arg(id = "auth-max-header-bytes", long = "auth-max-header-bytes", env = "AUTH_MAX_HEADER_BYTES",
          default_value_t = 16_384, value_parser = clap::value_parser!(u64).range(1..=MAX_HEADER_SETTING))]
    pub max_header_bytes: u64,
    /// Largest size in bytes of all request headers together; more is answered 431.
    #[arg(id = "auth-max-header-list-bytes", long = "auth-max-header-list-bytes", env = "AUTH_MAX_HEADER_LIST_BYTES",
          default_value_t = 32_768, value_parser = clap::value_parser!(u64).range(1..=MAX_HEADER_SETTING))]
    pub max_header_list_bytes: u64,
    /// Address of the metrics listener: Prometheus text at GET /metrics, for operators, never on
    /// AUTH_BIND or AUTH_MTLS_BIND. Unset: no metrics are kept.
    #[arg(
        id = "auth-metrics-bind",
        long = "auth-metrics-bind",
        env = "AUTH_METRICS_BIND"
    )]
    pub metrics_bind: Option<SocketAddr>,
    /// Redis (or Valkey) URL, redis:// or rediss://: the lockouts then hold across every
    /// instance using it. Unset, each instance counts for itself.
    #[arg(
        id = "auth-redis-url",
        long = "auth-redis-url",
        env = "AUTH_REDIS_URL",
        hide_env_values = true
    )]
    pub redis_url: Option<String>,
    /// Milliseconds one decision waits for Redis before it is made in this process instead.
    #[arg(id = "auth-redis-timeout-ms", long = "auth-redis-timeout-ms", env = "AUTH_REDIS_TIMEOUT_MS",
          default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub redis_timeout_ms: u64,
    /// Put before every Redis key, so several deployments can share one Redis.
    #[arg(
        id = "auth-redis-key-prefix",
        long = "auth-redis-key-prefix",
        env = "AUTH_REDIS_KEY_PREFIX",
        default_value = shared_limits::RedisSettings::DEFAULT_KEY_PREFIX
    )]
    pub redis_key_prefix: String,
}

/// The upper bound of the header size settings (16 MiB): far above any real request, and low
/// enough that a typo cannot lift the bound on a request head's memory altogether.
const MAX_HEADER_SETTING: u64 = 16 * 1024 * 1024;

/// Everything a token service needs to start. Deliberately not `Debug`: the database URL may
/// carry a password.
#[derive(Clone)]
pub struct Settings {
    pub database_url: String,
    /// `AUTH_DATABASE_WAIT`: the longest a request waits for the database.
    pub database_wait: Duration,
    pub master_key_file: PathBuf,
    /// `AUTH_MASTER_KEY`: the key itself, used instead of the file when set.
    pub master_key: Option<zeroize::Zeroizing<String>>,
    pub default_audience: String,
    pub bind: SocketAddr,
    pub issuer: String,
    pub access_token_ttl: i64,
    pub refresh_token_ttl: i64,
    pub jwks_max_age: u64,
    /// `AUTH_JWKS_CACHE_HORIZON`; `None`: the same as `jwks_max_age`.
    pub jwks_cache_horizon: Option<u64>,
    pub key_reload_interval: Duration,
    pub key_rotation_interval: Option<Duration>,
    /// Failed-authentication budgets (not a command-line setting; tests tighten them).
    pub lockout: shared_limits::LockoutPolicy,
    /// Where the lockout counters are shared with other instances (`AUTH_REDIS_URL`); `None`:
    /// in this process.
    pub redis: Option<shared_limits::RedisSettings>,
    /// Longest a request may take before it is answered 408.
    pub request_timeout: Duration,
    /// Requests handled at once; more are shed with 503 rather than queued without bound.
    pub max_concurrent_requests: usize,
    /// TLS, trusted proxies and the limits applied at the network edge.
    pub transport: edge::Transport,
    /// `AUTH_MTLS_BIND`: the mutual-TLS listener, if any.
    pub mtls_bind: Option<SocketAddr>,
    /// The public base URL of the mutual-TLS listener (`AUTH_MTLS_URL`, or derived once it is
    /// bound); `None` without one.
    pub mtls_url: Option<String>,
    /// `AUTH_METRICS_BIND`: the metrics listener; `None`: no metrics.
    pub metrics_bind: Option<SocketAddr>,
}

impl Settings {
    pub fn new(store: StoreArgs, serve: ServeArgs) -> anyhow::Result<Settings> {
        store.check()?;
        let mut transport =
            edge::Transport::new(serve.tls_cert, serve.tls_key, serve.trusted_proxies, "AUTH")?;
        transport.headers = edge::HeaderLimits {
            max_header_bytes: usize::try_from(serve.max_header_bytes)?,
            max_header_list_bytes: usize::try_from(serve.max_header_list_bytes)?,
        };
        if serve.mtls_bind.is_some() && transport.tls.is_none() {
            anyhow::bail!(
                "AUTH_MTLS_BIND needs AUTH_TLS_CERT and AUTH_TLS_KEY: the mutual-TLS listener speaks TLS"
            );
        }
        if let Some(path) = &serve.mtls_ca_file {
            transport.client_cas =
                Some(edge::ClientCas::from_pem_file(path).context("AUTH_MTLS_CA_FILE")?);
        }
        if let Some(url) = &serve.mtls_url {
            let parsed = reqwest::Url::parse(url).context("AUTH_MTLS_URL")?;
            anyhow::ensure!(
                parsed.scheme() == "https",
                "AUTH_MTLS_URL must be an https:// URL"
            );
        }
        Settings {
            database_wait: store.database_wait(),
            database_url: store.database_url,
            master_key_file: store.master_key_file,
            master_key: store
                .master_key
                .filter(|k| !k.trim().is_empty())
                .map(zeroize::Zeroizing::new),
            default_audience: store.default_audience,
            bind: serve.bind,
            issuer: serve.issuer,
            access_token_ttl: store.access_token_ttl,
            refresh_token_ttl: serve.refresh_token_ttl,
            jwks_max_age: store.jwks_max_age,
            jwks_cache_horizon: store.jwks_cache_horizon,
            key_reload_interval: Duration::from_secs(store.key_reload_interval),
            key_rotation_interval: serve.key_rotation_interval.map(Duration::from_secs),
            lockout: Default::default(),
            redis: shared_limits::RedisSettings::from_options(
                serve.redis_url,
                serve.redis_timeout_ms,
                serve.redis_key_prefix,
            ),
            request_timeout: Duration::from_secs(10),
            max_concurrent_requests: 1024,
            transport,
            mtls_bind: serve.mtls_bind,
            mtls_url: serve.mtls_url.map(|u| u.trim_end_matches('/').to_owned()),
            metrics_bind: serve.metrics_bind,
        }
        .checked()
    }

    /// The documented defaults for a given database and master key, as tests and tools start from.
    pub fn with_defaults(
        database_url: impl Into<String>,
        master_key_file: impl Into<PathBuf>,
    ) -> Settings {
        Settings {
            database_url: database_url.into(),
            database_wait: storage::DEFAULT_WAIT,
            master_key_file: master_key_file.into(),
            master_key: None,
            default_audience: "partner-api".into(),
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            issuer: "http://127.0.0.1:8080".into(),
            access_token_ttl: 600,
            refresh_token_ttl: 2_592_000,
            jwks_max_age: 300,
            jwks_cache_horizon: None,
            key_reload_interval: Duration::from_secs(5),
            key_rotation_interval: None,
            lockout: Default::default(),
            redis: None,
            request_timeout: Duration::from_secs(10),
            max_concurrent_requests: 1024,
            transport: edge::Transport::default(),
            mtls_bind: None,
            mtls_url: None,
            metrics_bind: None,
        }
    }

    /// Refuses a metrics listener on one of the service's own addresses.
    pub fn check_metrics_bind(&self) -> anyhow::Result<()> {
        let Some(metrics) = self.metrics_bind else {
            return Ok(());
        };
        let mut taken = vec![(self.bind, "AUTH_BIND")];
        taken.extend(self.mtls_bind.map(|bind| (bind, "AUTH_MTLS_BIND")));
        edge::metrics::check_bind(metrics, "AUTH_METRICS_BIND", &taken)
    }

    fn checked(self) -> anyhow::Result<Settings> {
        self.check_metrics_bind()?;
        Ok(self)
    }
}

impl Settings {
    /// The timings that decide when key rotations and purges are safe.
    pub fn key_policy(&self) -> crate::signing::KeyPolicy {
        crate::signing::KeyPolicy {
            jwks_max_age: self.jwks_max_age,
            jwks_cache_horizon: self.jwks_cache_horizon.unwrap_or(self.jwks_max_age),
            reload_interval: self.key_reload_interval,
            access_token_ttl: self.access_token_ttl,
        }
    }
}

impl StoreArgs {
    /// `AUTH_DATABASE_WAIT`.
    pub fn database_wait(&self) -> Duration {
        Duration::from_secs(self.database_wait)
    }

    /// The same policy as [`Settings::key_policy`], for admin commands.
    pub fn key_policy(&self) -> crate::signing::KeyPolicy {
        crate::signing::KeyPolicy {
            jwks_max_age: self.jwks_max_age,
            jwks_cache_horizon: self.jwks_cache_horizon.unwrap_or(self.jwks_max_age),
            reload_interval: Duration::from_secs(self.key_reload_interval),
            access_token_ttl: self.access_token_ttl,
        }
    }

    /// Refuses settings that contradict each other, before the servers or an admin command use
    /// them: a cache horizon shorter than the max-age every verifier is told it may cache for.
    pub fn check(&self) -> anyhow::Result<()> {
        if let Some(horizon) = self.jwks_cache_horizon
            && horizon < self.jwks_max_age
        {
            anyhow::bail!(
                "AUTH_JWKS_CACHE_HORIZON ({horizon} s) is shorter than AUTH_JWKS_MAX_AGE ({} s), \
                 which every verifier is told it may cache the key set for: set it to at least that, or leave it unset",
                self.jwks_max_age
            );
        }
        Ok(())
    }
}
