//! Configuration: clap arguments that also read the environment (PRODUCT.md "Configuration"),
//! turned into one plain [`Settings`] struct that tests build directly.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Where the data lives; shared by `serve` and every admin command.
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
    /// The `aud` of clients created without --audience.
    #[arg(
        id = "auth-default-audience",
        long = "auth-default-audience",
        env = "AUTH_DEFAULT_AUDIENCE",
        default_value = "partner-api",
        global = true
    )]
    pub default_audience: String,
}

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
    /// Default access-token lifetime in seconds (a client may override it).
    #[arg(id = "auth-access-token-ttl", long = "auth-access-token-ttl", env = "AUTH_ACCESS_TOKEN_TTL", default_value_t = 600,
          value_parser = clap::value_parser!(i64).range(1..=86_400))]
    pub access_token_ttl: i64,
    /// Refresh-token lifetime in seconds.
    #[arg(id = "auth-refresh-token-ttl", long = "auth-refresh-token-ttl", env = "AUTH_REFRESH_TOKEN_TTL", default_value_t = 2_592_000,
          value_parser = clap::value_parser!(i64).range(60..=31_536_000))]
    pub refresh_token_ttl: i64,
    /// max-age, in seconds, of the JWKS `Cache-Control` header.
    #[arg(id = "auth-jwks-max-age", long = "auth-jwks-max-age", env = "AUTH_JWKS_MAX_AGE", default_value_t = 300,
          value_parser = clap::value_parser!(u64).range(0..=86_400))]
    pub jwks_max_age: u64,
    /// How often, in seconds, the server looks for signing-key changes made by the CLI.
    #[arg(id = "auth-key-reload-interval", long = "auth-key-reload-interval", env = "AUTH_KEY_RELOAD_INTERVAL", default_value_t = 5,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub key_reload_interval: u64,
}

/// Everything a token service needs to start. Deliberately not `Debug`: the database URL may
/// carry a password.
#[derive(Clone)]
pub struct Settings {
    pub database_url: String,
    pub master_key_file: PathBuf,
    pub default_audience: String,
    pub bind: SocketAddr,
    pub issuer: String,
    pub access_token_ttl: i64,
    pub refresh_token_ttl: i64,
    pub jwks_max_age: u64,
    pub key_reload_interval: Duration,
}

impl Settings {
    pub fn new(store: StoreArgs, serve: ServeArgs) -> Settings {
        Settings {
            database_url: store.database_url,
            master_key_file: store.master_key_file,
            default_audience: store.default_audience,
            bind: serve.bind,
            issuer: serve.issuer,
            access_token_ttl: serve.access_token_ttl,
            refresh_token_ttl: serve.refresh_token_ttl,
            jwks_max_age: serve.jwks_max_age,
            key_reload_interval: Duration::from_secs(serve.key_reload_interval),
        }
    }

    /// Defaults of PRODUCT.md for a given database and master key, as tests and tools start from.
    pub fn with_defaults(
        database_url: impl Into<String>,
        master_key_file: impl Into<PathBuf>,
    ) -> Settings {
        Settings {
            database_url: database_url.into(),
            master_key_file: master_key_file.into(),
            default_audience: "partner-api".into(),
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            issuer: "http://127.0.0.1:8080".into(),
            access_token_ttl: 600,
            refresh_token_ttl: 2_592_000,
            jwks_max_age: 300,
            key_reload_interval: Duration::from_secs(5),
        }
    }
}
