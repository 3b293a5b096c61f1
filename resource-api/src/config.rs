//! Configuration of the partner API: clap arguments that also read the environment, turned into a
//! plain [`Settings`] that tests build directly.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::time::Duration;

#[derive(clap::Args, Clone)]
pub struct ResourceArgs {
    /// Address to listen on.
    #[arg(
        id = "resource-bind",
        long = "resource-bind",
        env = "RESOURCE_BIND",
        default_value = "127.0.0.1:8081"
    )]
    pub bind: SocketAddr,
    /// The token service whose tokens are accepted (`iss`).
    #[arg(
        id = "resource-issuer",
        long = "resource-issuer",
        env = "RESOURCE_ISSUER",
        default_value = "http://127.0.0.1:8080"
    )]
    pub issuer: String,
    /// Where the token service publishes its keys [default: ${RESOURCE_ISSUER}/.well-known/jwks.json].
    #[arg(
        id = "resource-jwks-url",
        long = "resource-jwks-url",
        env = "RESOURCE_JWKS_URL"
    )]
    pub jwks_url: Option<String>,
    /// The `aud` this API requires.
    #[arg(
        id = "resource-audience",
        long = "resource-audience",
        env = "RESOURCE_AUDIENCE",
        default_value = "partner-api"
    )]
    pub audience: String,
    /// Database URL: sqlite://PATH (created and seeded with demo data if missing) or postgres://...
    #[arg(
        id = "resource-database-url",
        long = "resource-database-url",
        env = "RESOURCE_DATABASE_URL",
        default_value = "sqlite://resource.db"
    )]
    pub database_url: String,
    /// The longest, in seconds, a request waits for the database (a lock, SQLite's busy
    /// timeout, a connection); then it is answered 503 problem+json with Retry-After.
    #[arg(id = "resource-database-wait", long = "resource-database-wait", env = "RESOURCE_DATABASE_WAIT",
          default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=9))]
    pub database_wait: u64,
    /// Sustained requests per second allowed per client id.
    #[arg(
        id = "resource-rate-limit-per-second",
        long = "resource-rate-limit-per-second",
        env = "RESOURCE_RATE_LIMIT_PER_SECOND",
        default_value = "50"
    )]
    pub rate_limit_per_second: NonZeroU32,
    /// Requests a client may make in a burst above the sustained rate.
    #[arg(
        id = "resource-rate-limit-burst",
        long = "resource-rate-limit-burst",
        env = "RESOURCE_RATE_LIMIT_BURST",
        default_value = "100"
    )]
    pub rate_limit_burst: NonZeroU32,
    /// Least seconds between two JWKS refetches caused by tokens with unknown key ids.
    #[arg(id = "resource-jwks-cooldown", long = "resource-jwks-cooldown", env = "RESOURCE_JWKS_COOLDOWN", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub jwks_cooldown: u64,
    /// Routes (as declared, comma-separated, e.g. "/v1/invoices,/v1/invoices/{id}") that also
    /// check each token online with the token service's introspection endpoint. Off when empty.
    #[arg(
        id = "resource-introspect-routes",
        long = "resource-introspect-routes",
        env = "RESOURCE_INTROSPECT_ROUTES",
        value_delimiter = ','
    )]
    pub introspect_routes: Vec<String>,
    /// The introspection endpoint [default: ${RESOURCE_ISSUER}/oauth2/introspect].
    #[arg(
        id = "resource-introspection-url",
        long = "resource-introspection-url",
        env = "RESOURCE_INTROSPECTION_URL"
    )]
    pub introspection_url: Option<String>,
    /// This API's own client (created with `auth-server client create --introspect`).
    #[arg(
        id = "resource-introspection-client-id",
        long = "resource-introspection-client-id",
        env = "RESOURCE_INTROSPECTION_CLIENT_ID"
    )]
    pub introspection_client_id: Option<String>,
    /// That client's secret.
    #[arg(
        id = "resource-introspection-client-secret",
        long = "resource-introspection-client-secret",
        env = "RESOURCE_INTROSPECTION_CLIENT_SECRET",
        hide_env_values = true
    )]
    pub introspection_client_secret: Option<String>,
    /// Seconds an introspection answer is reused for the same token.
    #[arg(id = "resource-introspection-cache", long = "resource-introspection-cache", env = "RESOURCE_INTROSPECTION_CACHE",
          default_value_t = 10, value_parser = clap::value_parser!(u64).range(0..=300))]
    pub introspection_cache: u64,
    /// Accept API keys (`pak_…`, as `Authorization: Bearer` or `X-API-Key`) on every /v1 route,
    /// resolved through the introspection endpoint with the introspection client: true or false.
    #[arg(id = "resource-api-keys", long = "resource-api-keys", env = "RESOURCE_API_KEYS",
          default_value_t = false, num_args = 0..=1, default_missing_value = "true",
          action = clap::ArgAction::Set, value_parser = clap::value_parser!(bool))]
    pub api_keys: bool,
    /// Seconds a resolved API key is reused before the token service is asked again (1 to 3600):
    /// also how long a disabled key may keep working here.
    #[arg(id = "resource-api-key-cache", long = "resource-api-key-cache", env = "RESOURCE_API_KEY_CACHE",
          default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub api_key_cache: u64,
    /// Verified tokens remembered (by SHA-256), so a reused token costs one signature check;
    /// 0 verifies every request in full.
    #[arg(id = "resource-token-cache-size", long = "resource-token-cache-size", env = "RESOURCE_TOKEN_CACHE_SIZE",
          default_value_t = crate::verify::DEFAULT_TOKEN_CACHE_SIZE)]
    pub token_cache_size: usize,
    /// PEM certificate chain; with --resource-tls-key, the server speaks HTTPS.
    #[arg(
        id = "resource-tls-cert",
        long = "resource-tls-cert",
        env = "RESOURCE_TLS_CERT"
    )]
    pub tls_cert: Option<std::path::PathBuf>,
    /// PEM private key of the certificate.
    #[arg(
        id = "resource-tls-key",
        long = "resource-tls-key",
        env = "RESOURCE_TLS_KEY"
    )]
    pub tls_key: Option<std::path::PathBuf>,
    /// PEM file of CAs whose client certificates the TLS listener names as acceptable. Client
    /// certificates are asked for (optionally) whenever the API speaks TLS; a certificate-bound
    /// token is accepted only with its certificate, self-signed or CA-issued.
    #[arg(
        id = "resource-mtls-ca-file",
        long = "resource-mtls-ca-file",
        env = "RESOURCE_MTLS_CA_FILE"
    )]
    pub mtls_ca_file: Option<std::path::PathBuf>,
    /// Comma-separated addresses of TLS-terminating proxies in front of this server.
    #[arg(
        id = "resource-trusted-proxies",
        long = "resource-trusted-proxies",
        env = "RESOURCE_TRUSTED_PROXIES",
        value_delimiter = ','
    )]
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Largest single request header (name and value) in bytes; a larger one is answered 431.
    #[arg(id = "resource-max-header-bytes", long = "resource-max-header-bytes", env = "RESOURCE_MAX_HEADER_BYTES",
          default_value_t = 16_384, value_parser = clap::value_parser!(u64).range(1..=MAX_HEADER_SETTING))]
    pub max_header_bytes: u64,
    /// Largest size in bytes of all request headers together; more is answered 431.
    #[arg(id = "resource-max-header-list-bytes", long = "resource-max-header-list-bytes", env = "RESOURCE_MAX_HEADER_LIST_BYTES",
          default_value_t = 32_768, value_parser = clap::value_parser!(u64).range(1..=MAX_HEADER_SETTING))]
    pub max_header_list_bytes: u64,
    /// Address of the metrics listener: Prometheus text at GET /metrics, for operators, never on
    /// RESOURCE_BIND. Unset: no metrics are kept.
    #[arg(
        id = "resource-metrics-bind",
        long = "resource-metrics-bind",
        env = "RESOURCE_METRICS_BIND"
    )]
    pub metrics_bind: Option<SocketAddr>,
    /// Redis (or Valkey) URL, redis:// or rediss://: the per-client rate limit then holds across
    /// every instance using it. Unset, each instance counts for itself.
    #[arg(
        id = "resource-redis-url",
        long = "resource-redis-url",
        env = "RESOURCE_REDIS_URL",
        hide_env_values = true
    )]
    pub redis_url: Option<String>,
    /// Milliseconds one decision waits for Redis before it is made in this process instead.
    #[arg(id = "resource-redis-timeout-ms", long = "resource-redis-timeout-ms", env = "RESOURCE_REDIS_TIMEOUT_MS",
          default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub redis_timeout_ms: u64,
    /// Put before every Redis key, so several deployments can share one Redis.
    #[arg(
        id = "resource-redis-key-prefix",
        long = "resource-redis-key-prefix",
        env = "RESOURCE_REDIS_KEY_PREFIX",
        default_value = shared_limits::RedisSettings::DEFAULT_KEY_PREFIX
    )]
    pub redis_key_prefix: String,
}

/// The upper bound of the header size settings (16 MiB): far above any real request, and low
/// enough that a typo cannot lift the bound on a request head's memory altogether.
const MAX_HEADER_SETTING: u64 = 16 * 1024 * 1024;

/// Where and as whom the partner API asks the token service about tokens.
#[derive(Clone)]
pub struct IntrospectionSettings {
    pub url: String,
    pub client_id: String,
    pub client_secret: zeroize::Zeroizing<String>,
    pub cache: Duration,
    /// The routes that check online.
    pub routes: Vec<String>,
}

/// How API keys are resolved (`RESOURCE_API_KEYS=true`): at the introspection endpoint, as the
/// introspection client, each answer reused for `cache`.
#[derive(Clone)]
pub struct ApiKeySettings {
    pub url: String,
    pub client_id: String,
    pub client_secret: zeroize::Zeroizing<String>,
    pub cache: Duration,
}

/// Everything the partner API needs to start. Not `Debug`: the database URL may hold a password.
#[derive(Clone)]
pub struct Settings {
    pub bind: SocketAddr,
    pub issuer: String,
    pub jwks_url: String,
    pub audience: String,
    pub database_url: String,
    /// `RESOURCE_DATABASE_WAIT`: the longest a request waits for the database (below the
    /// request timeout, so such a request is answered 503 rather than 408).
    pub database_wait: Duration,
    pub rate_limit_per_second: NonZeroU32,
    pub rate_limit_burst: NonZeroU32,
    pub jwks_cooldown: Duration,
    /// Clock skew tolerated on `exp`/`nbf`/`iat`.
    pub leeway_secs: i64,
    /// Verified tokens remembered (0: verify every request in full).
    pub token_cache_size: usize,
    /// Online checks for some routes; `None` (the default) keeps every route purely local.
    pub introspection: Option<IntrospectionSettings>,
    /// API keys beside tokens; `None` (the default): tokens only.
    pub api_keys: Option<ApiKeySettings>,
    /// Where the rate limit is shared with other instances (`RESOURCE_REDIS_URL`); `None`: in
    /// this process.
    pub redis: Option<shared_limits::RedisSettings>,
    /// Longest a request may take before it is answered 408.
    pub request_timeout: Duration,
    /// Requests handled at once; more are shed with 503 rather than queued without bound.
    pub max_concurrent_requests: usize,
    /// TLS, trusted proxies and the limits applied at the network edge.
    pub transport: edge::Transport,
    /// `RESOURCE_METRICS_BIND`: the metrics listener; `None`: no metrics.
    pub metrics_bind: Option<SocketAddr>,
}

impl Settings {
    pub fn new(args: ResourceArgs) -> anyhow::Result<Settings> {
        let mut transport = edge::Transport::new(
            args.tls_cert,
            args.tls_key,
            args.trusted_proxies,
            "RESOURCE",
        )?;
        transport.headers = edge::HeaderLimits {
            max_header_bytes: usize::try_from(args.max_header_bytes)?,
            max_header_list_bytes: usize::try_from(args.max_header_list_bytes)?,
        };
        // Over its own TLS the API asks every client for an optional certificate, so that
        // certificate-bound tokens (RFC 8705 §3) work without a separate port.
        if let Some(path) = &args.mtls_ca_file {
            transport.client_cas = Some(
                edge::ClientCas::from_pem_file(path)
                    .map_err(|e| anyhow::anyhow!("RESOURCE_MTLS_CA_FILE: {e:#}"))?,
            );
        }
        if transport.tls.is_some() {
            transport = transport.requesting_client_certs("RESOURCE")?;
        }
        let introspection_url = args
            .introspection_url
            .clone()
            .unwrap_or_else(|| format!("{}/oauth2/introspect", args.issuer.trim_end_matches('/')));
        let api_keys = if args.api_keys {
            let missing: Vec<&str> = [
                (
                    args.introspection_client_id.is_none(),
                    "RESOURCE_INTROSPECTION_CLIENT_ID",
                ),
                (
                    args.introspection_client_secret.is_none(),
                    "RESOURCE_INTROSPECTION_CLIENT_SECRET",
                ),
            ]
            .into_iter()
            .filter_map(|(missing, name)| missing.then_some(name))
            .collect();
            let (Some(client_id), Some(secret)) = (
                args.introspection_client_id.clone(),
                args.introspection_client_secret.clone(),
            ) else {
                anyhow::bail!(
                    "RESOURCE_API_KEYS=true needs {} (the partner API's own client at the token service, allowed to introspect)",
                    missing.join(" and ")
                );
            };
            Some(ApiKeySettings {
                url: introspection_url.clone(),
                client_id,
                client_secret: zeroize::Zeroizing::new(secret),
                cache: Duration::from_secs(args.api_key_cache),
            })
        } else {
            None
        };
        let introspection = if args.introspect_routes.iter().all(|r| r.trim().is_empty()) {
            None
        } else {
            let (Some(client_id), Some(secret)) = (
                args.introspection_client_id,
                args.introspection_client_secret,
            ) else {
                anyhow::bail!(
                    "RESOURCE_INTROSPECT_ROUTES needs RESOURCE_INTROSPECTION_CLIENT_ID and RESOURCE_INTROSPECTION_CLIENT_SECRET"
                );
            };
            Some(IntrospectionSettings {
                url: introspection_url,
                client_id,
                client_secret: zeroize::Zeroizing::new(secret),
                cache: Duration::from_secs(args.introspection_cache),
                routes: args
                    .introspect_routes
                    .iter()
                    .map(|r| r.trim().to_owned())
                    .filter(|r| !r.is_empty())
                    .collect(),
            })
        };
        let jwks_url = args.jwks_url.unwrap_or_else(|| {
            format!(
                "{}/.well-known/jwks.json",
                args.issuer.trim_end_matches('/')
            )
        });
        let settings = Settings {
            bind: args.bind,
            issuer: args.issuer,
            jwks_url,
            audience: args.audience,
            database_url: args.database_url,
            database_wait: Duration::from_secs(args.database_wait),
            rate_limit_per_second: args.rate_limit_per_second,
            rate_limit_burst: args.rate_limit_burst,
            jwks_cooldown: Duration::from_secs(args.jwks_cooldown),
            leeway_secs: shared_claims::DEFAULT_LEEWAY_SECS,
            token_cache_size: args.token_cache_size,
            introspection,
            api_keys,
            redis: shared_limits::RedisSettings::from_options(
                args.redis_url,
                args.redis_timeout_ms,
                args.redis_key_prefix,
            ),
            request_timeout: Duration::from_secs(10),
            max_concurrent_requests: 1024,
            transport,
            metrics_bind: args.metrics_bind,
        };
        settings.check_metrics_bind()?;
        Ok(settings)
    }

    /// Refuses a metrics listener on the partner-facing address.
    pub fn check_metrics_bind(&self) -> anyhow::Result<()> {
        match self.metrics_bind {
            Some(metrics) => edge::metrics::check_bind(
                metrics,
                "RESOURCE_METRICS_BIND",
                &[(self.bind, "RESOURCE_BIND")],
            ),
            None => Ok(()),
        }
    }

    /// The defaults of [`ResourceArgs`] for a given issuer, JWKS URL and database, as tests start
    /// from.
    pub fn with_defaults(issuer: &str, jwks_url: &str, database_url: &str) -> Settings {
        Settings {
            bind: SocketAddr::from(([127, 0, 0, 1], 8081)),
            issuer: issuer.to_owned(),
            jwks_url: jwks_url.to_owned(),
            audience: "partner-api".into(),
            database_url: database_url.to_owned(),
            database_wait: storage::DEFAULT_WAIT,
            rate_limit_per_second: NonZeroU32::new(50).unwrap_or(NonZeroU32::MIN),
            rate_limit_burst: NonZeroU32::new(100).unwrap_or(NonZeroU32::MIN),
            jwks_cooldown: Duration::from_secs(10),
            leeway_secs: shared_claims::DEFAULT_LEEWAY_SECS,
            token_cache_size: crate::verify::DEFAULT_TOKEN_CACHE_SIZE,
            introspection: None,
            api_keys: None,
            redis: None,
            request_timeout: Duration::from_secs(10),
            max_concurrent_requests: 1024,
            transport: edge::Transport::default(),
            metrics_bind: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::*;

    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: ResourceArgs,
    }

    #[test]
    fn the_jwks_url_defaults_to_the_issuers_well_known_path() {
        Wrapper::command().debug_assert();
        let w =
            Wrapper::try_parse_from(["x", "--resource-issuer", "https://auth.example/"]).unwrap();
        assert_eq!(
            Settings::new(w.args).unwrap().jwks_url,
            "https://auth.example/.well-known/jwks.json"
        );
        let w = Wrapper::try_parse_from(["x", "--resource-jwks-url", "https://keys.example/k"])
            .unwrap();
        assert_eq!(
            Settings::new(w.args).unwrap().jwks_url,
            "https://keys.example/k"
        );
        assert!(Wrapper::try_parse_from(["x", "--resource-rate-limit-burst", "0"]).is_err());
    }

    #[test]
    fn limits_are_shared_only_when_a_redis_url_is_set() {
        let w = Wrapper::try_parse_from(["x"]).unwrap();
        assert!(Settings::new(w.args).unwrap().redis.is_none());
        let w = Wrapper::try_parse_from(["x", "--resource-redis-url", ""]).unwrap();
        assert!(Settings::new(w.args).unwrap().redis.is_none());
        let w =
            Wrapper::try_parse_from(["x", "--resource-redis-url", "redis://cache:6379"]).unwrap();
        let redis = Settings::new(w.args).unwrap().redis.unwrap();
        assert_eq!(redis.url, "redis://cache:6379");
        assert_eq!(redis.timeout, Duration::from_millis(50));
        assert_eq!(redis.key_prefix, "partner-platform:");
        let w = Wrapper::try_parse_from([
            "x",
            "--resource-redis-url",
            "rediss://cache:6380",
            "--resource-redis-timeout-ms",
            "20",
            "--resource-redis-key-prefix",
            "staging:",
        ])
        .unwrap();
        let redis = Settings::new(w.args).unwrap().redis.unwrap();
        assert_eq!(redis.timeout, Duration::from_millis(20));
        assert_eq!(redis.key_prefix, "staging:");
        assert!(Wrapper::try_parse_from(["x", "--resource-redis-timeout-ms", "0"]).is_err());
    }

    #[test]
    fn metrics_are_off_unless_a_bind_is_set_and_never_on_the_api_address() {
        let w = Wrapper::try_parse_from(["x"]).unwrap();
        assert_eq!(Settings::new(w.args).unwrap().metrics_bind, None);
        let w =
            Wrapper::try_parse_from(["x", "--resource-metrics-bind", "127.0.0.1:9101"]).unwrap();
        assert_eq!(
            Settings::new(w.args).unwrap().metrics_bind,
            Some("127.0.0.1:9101".parse().unwrap())
        );
        assert!(Wrapper::try_parse_from(["x", "--resource-metrics-bind", "nonsense"]).is_err());
        for same in ["127.0.0.1:8081", "0.0.0.0:8081"] {
            let w = Wrapper::try_parse_from(["x", "--resource-metrics-bind", same]).unwrap();
            let err = Settings::new(w.args).err().expect(same).to_string();
            assert!(
                err.contains("RESOURCE_METRICS_BIND") && err.contains("RESOURCE_BIND"),
                "{err}"
            );
        }
    }

    #[test]
    fn header_limits_default_to_16_and_32_kib_and_can_be_set() {
        let w = Wrapper::try_parse_from(["x"]).unwrap();
        assert_eq!(
            Settings::new(w.args).unwrap().transport.headers,
            edge::HeaderLimits::default()
        );
        let w = Wrapper::try_parse_from([
            "x",
            "--resource-max-header-bytes",
            "4096",
            "--resource-max-header-list-bytes",
            "8192",
        ])
        .unwrap();
        assert_eq!(
            Settings::new(w.args).unwrap().transport.headers,
            edge::HeaderLimits {
                max_header_bytes: 4096,
                max_header_list_bytes: 8192,
            }
        );
        assert!(Wrapper::try_parse_from(["x", "--resource-max-header-bytes", "0"]).is_err());
    }

    #[test]
    fn api_keys_are_off_by_default_and_need_the_introspection_client() {
        let w = Wrapper::try_parse_from(["x"]).unwrap();
        assert!(Settings::new(w.args).unwrap().api_keys.is_none());
        let w = Wrapper::try_parse_from(["x", "--resource-api-keys", "false"]).unwrap();
        assert!(Settings::new(w.args).unwrap().api_keys.is_none());
        let w = Wrapper::try_parse_from([
            "x",
            "--resource-issuer",
            "https://auth.example/",
            "--resource-api-keys",
            "true",
            "--resource-introspection-client-id",
            "cl_api",
            "--resource-introspection-client-secret",
            "pcs_secret",
        ])
        .unwrap();
        let keys = Settings::new(w.args).unwrap().api_keys.expect("on");
        assert_eq!(keys.url, "https://auth.example/oauth2/introspect");
        assert_eq!(keys.client_id, "cl_api");
        assert_eq!(keys.cache, Duration::from_secs(30));
        // As a bare flag too, with its own cache time.
        let w = Wrapper::try_parse_from([
            "x",
            "--resource-api-key-cache",
            "3600",
            "--resource-introspection-url",
            "https://auth.example/i",
            "--resource-introspection-client-id",
            "cl_api",
            "--resource-introspection-client-secret",
            "pcs_secret",
            "--resource-api-keys",
        ])
        .unwrap();
        let keys = Settings::new(w.args).unwrap().api_keys.expect("on");
        assert_eq!(keys.url, "https://auth.example/i");
        assert_eq!(keys.cache, Duration::from_secs(3600));
    }

    #[test]
    fn api_keys_without_the_introspection_client_refuse_to_start_naming_what_is_missing() {
        for (given, missing) in [
            (
                vec![],
                "RESOURCE_INTROSPECTION_CLIENT_ID and RESOURCE_INTROSPECTION_CLIENT_SECRET",
            ),
            (
                vec!["--resource-introspection-client-id", "cl_api"],
                "needs RESOURCE_INTROSPECTION_CLIENT_SECRET (",
            ),
            (
                vec!["--resource-introspection-client-secret", "pcs_secret"],
                "needs RESOURCE_INTROSPECTION_CLIENT_ID (",
            ),
        ] {
            let mut argv = vec!["x", "--resource-api-keys", "true"];
            argv.extend(given);
            let w = Wrapper::try_parse_from(argv).unwrap();
            let err = Settings::new(w.args).err().expect("refused").to_string();
            assert!(err.contains("RESOURCE_API_KEYS=true"), "{err}");
            assert!(err.contains(missing), "{err}");
            assert_eq!(err.lines().count(), 1, "{err}");
            assert!(!err.contains("pcs_secret"), "{err}");
        }
    }

    #[test]
    fn bad_api_key_settings_are_refused_with_the_setting_named() {
        for (flag, value) in [
            ("--resource-api-key-cache", "0"),
            ("--resource-api-key-cache", "3601"),
            ("--resource-api-key-cache", "-1"),
            ("--resource-api-key-cache", "soon"),
            ("--resource-api-keys", "yes"),
            ("--resource-api-keys", "1"),
        ] {
            let err = Wrapper::try_parse_from(["x".to_owned(), format!("{flag}={value}")])
                .err()
                .unwrap_or_else(|| panic!("{flag} {value} accepted"))
                .to_string();
            assert!(err.contains(flag) && err.contains(value), "{err}");
        }
        let err = Wrapper::try_parse_from(["x", "--resource-api-key-cache", "0"])
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("1..=3600"), "{err}");
    }
}
