//! The benchmark harness: starts the release servers (SQLite and PostgreSQL), drives them over
//! loopback with a closed-loop HTTP load generator and prints one table, each figure beside its
//! baseline from the same run. `cargo run --release -p bench -- --help` lists the options.

mod api_keys;
mod auth_methods;
mod compare;
mod lambda;
mod load;
mod metrics;
mod partner;
mod raw;
mod servers;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use base64::Engine;
use bytes::Bytes;
use clap::Parser;
use http_body_util::Full;
use hyper::Request;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST};

use crate::load::{LoadResult, MakeRequest, Target};
use crate::servers::{Server, free_addr, http};

#[derive(Parser, Clone)]
#[command(about = "Benchmarks the token service and the partner API; prints a Markdown table")]
struct Args {
    /// Seconds each measurement is recorded (after a 1 s warm-up).
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Runs of each measurement; the table gives the median of the runs.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// PostgreSQL server for the PostgreSQL rows (a scratch database is created and dropped).
    #[arg(
        long,
        default_value = "postgres://postgres@127.0.0.1:5432/test",
        env = "BENCH_POSTGRES_URL"
    )]
    postgres_url: String,
    /// Leave PostgreSQL out.
    #[arg(long)]
    no_postgres: bool,
    /// Redis for the shared-limit rows (keys under a prefix of their own, which expire).
    #[arg(
        long,
        default_value = "redis://127.0.0.1:6379",
        env = "BENCH_REDIS_URL"
    )]
    redis_url: String,
    /// Largest client count in the cost-growth rows.
    #[arg(long, default_value_t = 100_000)]
    max_clients: u64,
    /// Run only these sections (comma-separated: token, auth-methods, api, shared, growth,
    /// lambda, metrics, keys, compare); all but compare by default.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// For `--only compare`: the directory of another build's release binaries (say
    /// `../before/target/release`), whose token service is measured run by run beside this one's.
    #[arg(long)]
    compare_with: Option<PathBuf>,
}

impl Args {
    fn wants(&self, section: &str) -> bool {
        // Comparing builds needs another build, so only asking for it runs it.
        (self.only.is_empty() && section != "compare") || self.only.iter().any(|s| s == section)
    }
}

/// One line of the table.
struct Row {
    what: String,
    value: String,
    baseline: String,
    ratio: String,
}

#[derive(Default)]
struct Report {
    sections: Vec<(String, Vec<Row>)>,
    notes: Vec<String>,
}

impl Report {
    fn section(&mut self, title: &str) {
        self.sections.push((title.to_owned(), Vec::new()));
    }

    fn row(&mut self, what: String, value: String, baseline: String, ratio: String) {
        eprintln!("  {what}: {value} | {baseline} | {ratio}");
        self.sections.last_mut().expect("a section").1.push(Row {
            what,
            value,
            baseline,
            ratio,
        });
    }

    fn print(&self, args: &Args) {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "\n## Benchmark: {} run(s) of {} s each (medians), {} cores\n",
            args.runs,
            args.seconds,
            std::thread::available_parallelism().map_or(0, |n| n.get())
        );
        // Sections are measured backend by backend but printed by their number, so the table
        // reads 1, 1, 2, 2b, 3, 4, ... whatever order the measurements ran in (the sort is
        // stable).
        let mut sections: Vec<_> = self.sections.iter().collect();
        sections.sort_by_key(|(title, _)| {
            let label = title.split('.').next().unwrap_or("").trim();
            let digits = label.len() - label.trim_start_matches(|c: char| c.is_ascii_digit()).len();
            (
                label[..digits].parse::<u32>().unwrap_or(u32::MAX),
                label[digits..].to_owned(),
            )
        });
        for (title, rows) in sections {
            let _ = writeln!(out, "### {title}\n");
            let _ = writeln!(out, "| measurement | result | baseline | ratio |");
            let _ = writeln!(out, "| --- | --- | --- | --- |");
            for row in rows {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} |",
                    row.what, row.value, row.baseline, row.ratio
                );
            }
            let _ = writeln!(out);
        }
        for note in &self.notes {
            let _ = writeln!(out, "- {note}");
        }
        println!("{out}");
    }
}

/// Median of several load runs: requests per second, p50 and p99 each taken as its own median.
struct Summary {
    rps: f64,
    /// The slowest and the fastest run's rate.
    rps_range: (f64, f64),
    p50_ms: f64,
    p99_ms: f64,
    /// The server's CPU time (user + system, all its threads) per request answered.
    server_cpu_us: f64,
    /// The load generator's CPU time per request answered.
    client_cpu_us: f64,
    /// Share of the machine's cores left idle during the run.
    idle_percent: f64,
    /// With a connection per request over TLS: the share of handshakes that resumed a session.
    resumed_percent: Option<f64>,
    errors: u64,
    first_error: Option<String>,
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n == 0 {
        return 0.0;
    }
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// CPU used by `server` and idle time of the machine over the recorded part of one run.
struct Usage {
    server_cpu: f64,
    idle: f64,
    seconds: f64,
}

/// Samples `server`'s CPU time and the machine's idle time once the warm-up is over and again
/// when the recorded part ends, on a thread of its own (the load generator has another).
fn sample_usage(
    server: u32,
    warmup: Duration,
    duration: Duration,
) -> std::thread::JoinHandle<anyhow::Result<Usage>> {
    std::thread::spawn(move || {
        std::thread::sleep(warmup);
        let (cpu, idle, began) = (
            servers::cpu_seconds(server)?,
            servers::idle_seconds()?,
            Instant::now(),
        );
        std::thread::sleep(duration);
        Ok(Usage {
            server_cpu: servers::cpu_seconds(server)? - cpu,
            idle: servers::idle_seconds()? - idle,
            seconds: began.elapsed().as_secs_f64(),
        })
    })
}

fn measure(
    args: &Args,
    server: &Server,
    connections: usize,
    make: MakeRequest,
) -> anyhow::Result<Summary> {
    measure_target(args, server, Target::plain(server.addr), connections, make)
}

/// [`measure`] over `target`, which may be another listener of `server` (TLS, mutual TLS) or
/// open a connection per request.
fn measure_target(
    args: &Args,
    server: &Server,
    target: Target,
    connections: usize,
    make: MakeRequest,
) -> anyhow::Result<Summary> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let warmup = Duration::from_secs(1);
    let duration = Duration::from_secs_f64(args.seconds);
    let mut runs: Vec<(LoadResult, Usage)> = Vec::new();
    for _ in 0..args.runs {
        let usage = sample_usage(server.pid(), warmup, duration);
        let load = load::run(target.clone(), connections, warmup, duration, make.clone())?;
        let usage = usage
            .join()
            .map_err(|_| anyhow::anyhow!("usage sampler panicked"))??;
        runs.push((load, usage));
    }
    let rates: Vec<f64> = runs.iter().map(|(l, _)| l.rps()).collect();
    let (resumed, handshakes) = runs.iter().fold((0, 0), |(r, h), (l, _)| {
        (r + l.resumed, h + l.resumed + l.full_handshakes)
    });
    Ok(Summary {
        rps: median(rates.clone()),
        rps_range: (
            rates.iter().copied().fold(f64::INFINITY, f64::min),
            rates.iter().copied().fold(0.0, f64::max),
        ),
        p50_ms: median(runs.iter().map(|(l, _)| l.p50_ms()).collect()),
        p99_ms: median(runs.iter().map(|(l, _)| l.p99_ms()).collect()),
        server_cpu_us: median(
            runs.iter()
                .map(|(l, u)| 1e6 * u.server_cpu / (l.rps() * u.seconds).max(1.0))
                .collect(),
        ),
        client_cpu_us: median(
            runs.iter()
                .map(|(l, _)| 1e6 * l.client_cpu / (l.requests as f64).max(1.0))
                .collect(),
        ),
        idle_percent: median(
            runs.iter()
                .map(|(_, u)| 100.0 * u.idle / (cores * u.seconds))
                .collect(),
        ),
        resumed_percent: (handshakes > 0).then(|| 100.0 * resumed as f64 / handshakes as f64),
        errors: runs.iter().map(|(l, _)| l.errors).sum(),
        first_error: runs.iter().find_map(|(l, _)| l.first_error.clone()),
    })
}

fn describe(summary: &Summary) -> String {
    let mut text = format!(
        "{:.0} req/s, p50 {:.2} ms, p99 {:.2} ms; server CPU {:.1} µs/req, machine idle {:.0} %",
        summary.rps, summary.p50_ms, summary.p99_ms, summary.server_cpu_us, summary.idle_percent
    );
    if summary.errors > 0 {
        let _ = write!(
            text,
            " ({} errors, first: {})",
            summary.errors,
            summary.first_error.as_deref().unwrap_or("?")
        );
    }
    text
}

fn percent(value: f64, baseline: f64) -> String {
    if baseline <= 0.0 {
        return "-".into();
    }
    format!("{:.0} %", 100.0 * value / baseline)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
        }
    }
}

/// A running token service with two bench clients (with and without refresh tokens).
struct Auth {
    server: Server,
    /// The token service binary, which is also the admin CLI.
    program: PathBuf,
    env: HashMap<String, String>,
    db_url: String,
    plain: (String, String),
    with_refresh: (String, String),
}

const JWKS_MAX_AGE_SECS: u64 = 5;

async fn start_auth(dir: &Path, db_url: &str) -> anyhow::Result<Auth> {
    start_auth_with(dir, db_url, &[]).await
}

/// [`start_auth`], with `extra` added to (or overriding) the environment.
async fn start_auth_with(
    dir: &Path,
    db_url: &str,
    extra: &[(&str, String)],
) -> anyhow::Result<Auth> {
    start_auth_of(&servers::binary("auth-server")?, dir, db_url, extra).await
}

/// [`start_auth_with`] of the token service binary at `program`.
async fn start_auth_of(
    program: &Path,
    dir: &Path,
    db_url: &str,
    extra: &[(&str, String)],
) -> anyhow::Result<Auth> {
    let addr = free_addr()?;
    let env: HashMap<String, String> = [
        ("AUTH_DATABASE_URL", db_url.to_owned()),
        (
            "AUTH_MASTER_KEY_FILE",
            dir.join("master.key").display().to_string(),
        ),
        ("AUTH_BIND", addr.to_string()),
        ("AUTH_ISSUER", format!("http://{addr}")),
        ("AUTH_KEY_RELOAD_INTERVAL", "1".into()),
        ("AUTH_JWKS_MAX_AGE", JWKS_MAX_AGE_SECS.to_string()),
    ]
    .into_iter()
    .chain(extra.iter().cloned())
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let mut server = Server::spawn_binary(
        program,
        "auth-server",
        &["serve"],
        &env,
        addr,
        &dir.join("auth-server.log"),
    )?;
    server.wait_ok("/readyz", Duration::from_secs(60)).await?;
    let create = |name: &str, extra: &[&str]| -> anyhow::Result<(String, String)> {
        let mut argv = vec![
            "client",
            "create",
            "--name",
            name,
            "--partner",
            "acme",
            "--scopes",
            "orders:read catalog:read",
        ];
        argv.extend_from_slice(extra);
        let doc = servers::cli_of(program, &env, &argv)?;
        Ok((
            doc["client_id"].as_str().context("client_id")?.to_owned(),
            doc["client_secret"]
                .as_str()
                .context("client_secret")?
                .to_owned(),
        ))
    };
    let plain = create("bench", &["--no-refresh"])?;
    let with_refresh = create("bench-refresh", &[])?;
    Ok(Auth {
        server,
        program: program.to_owned(),
        env,
        db_url: db_url.to_owned(),
        plain,
        with_refresh,
    })
}

fn token_request(addr: SocketAddr, (id, secret): &(String, String)) -> MakeRequest {
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
    );
    let host = addr.to_string();
    Arc::new(move |_, _| {
        Request::post("/oauth2/token")
            .header(HOST, &host)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(AUTHORIZATION, &basic)
            .body(Full::new(Bytes::from_static(
                b"grant_type=client_credentials",
            )))
            .expect("a valid request")
    })
}

async fn fetch_token(auth: &Auth, client: &(String, String)) -> anyhow::Result<String> {
    request_token(
        &http(),
        &format!("http://{}/oauth2/token", auth.server.addr),
        client,
    )
    .await
}

/// One client-credentials grant; the access token.
async fn request_token(
    http: &reqwest::Client,
    url: &str,
    (id, secret): &(String, String),
) -> anyhow::Result<String> {
    let response: serde_json::Value = http
        .post(url)
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(response["access_token"]
        .as_str()
        .context("access_token")?
        .to_owned())
}

fn header_alg(token: &str) -> String {
    let header = token.split('.').next().unwrap_or("");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .unwrap_or_default();
    let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    value["alg"].as_str().unwrap_or("").to_owned()
}

/// Makes `alg` the signing algorithm: forced rotations until the server signs with it.
async fn use_algorithm(auth: &Auth, alg: &str) -> anyhow::Result<String> {
    for _ in 0..3 {
        let token = fetch_token(auth, &auth.plain).await?;
        if header_alg(&token) == alg {
            return Ok(token);
        }
        servers::cli_of(
            &auth.program,
            &auth.env,
            &["keys", "rotate", "--alg", alg, "--force"],
        )?;
        // The server reloads its keys every second.
        let began = Instant::now();
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let token = fetch_token(auth, &auth.plain).await?;
            let now_alg = header_alg(&token);
            if now_alg == alg || began.elapsed() > Duration::from_secs(5) {
                break;
            }
        }
    }
    let token = fetch_token(auth, &auth.plain).await?;
    anyhow::ensure!(header_alg(&token) == alg, "cannot switch signing to {alg}");
    Ok(token)
}

async fn token_endpoint(
    args: &Args,
    report: &mut Report,
    backend: Backend,
    auth: &Auth,
) -> anyhow::Result<()> {
    report.section(&format!(
        "1. Token endpoint, {} (client credentials; baseline: ring signing the same token bytes on one core)",
        backend.name()
    ));
    for alg in ["ES256", "EdDSA"] {
        let token = use_algorithm(auth, alg).await?;
        let raw = raw::sign_rate(alg, &token, args)?;
        for (refresh, client) in [(false, &auth.plain), (true, &auth.with_refresh)] {
            for connections in [1, 32] {
                let summary = measure(
                    args,
                    &auth.server,
                    connections,
                    token_request(auth.server.addr, client),
                )?;
                report.row(
                    format!(
                        "{alg}, {connections} conn{}, {}",
                        if connections == 1 { "" } else { "s" },
                        if refresh {
                            "with refresh token"
                        } else {
                            "no refresh token"
                        }
                    ),
                    describe(&summary),
                    format!("ring {alg} sign: {raw:.0}/s ({:.1} µs)", 1e6 / raw),
                    percent(summary.rps, raw),
                );
            }
        }
    }
    Ok(())
}

/// Counts JWKS fetches on their way from the partner API to the token service.
async fn jwks_proxy(upstream: SocketAddr) -> anyhow::Result<(SocketAddr, Arc<AtomicU64>)> {
    let count = Arc::new(AtomicU64::new(0));
    let counter = count.clone();
    let app = axum::Router::new().route(
        "/.well-known/jwks.json",
        axum::routing::get(move || {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::Relaxed);
                let response = http()
                    .get(format!("http://{upstream}/.well-known/jwks.json"))
                    .send()
                    .await
                    .map_err(|_| axum::http::StatusCode::BAD_GATEWAY)?;
                let cache_control = response
                    .headers()
                    .get("cache-control")
                    .cloned()
                    .unwrap_or(axum::http::HeaderValue::from_static("no-store"));
                let body = response
                    .bytes()
                    .await
                    .map_err(|_| axum::http::StatusCode::BAD_GATEWAY)?;
                Ok::<_, axum::http::StatusCode>((
                    [
                        (axum::http::header::CACHE_CONTROL, cache_control),
                        (
                            axum::http::header::CONTENT_TYPE,
                            axum::http::HeaderValue::from_static("application/json"),
                        ),
                    ],
                    body,
                ))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((addr, count))
}

fn api_request(addr: SocketAddr, path: &'static str, tokens: Arc<Vec<String>>) -> MakeRequest {
    let host = addr.to_string();
    let bearer: Arc<Vec<String>> = Arc::new(tokens.iter().map(|t| format!("Bearer {t}")).collect());
    Arc::new(move |connection, n| {
        let mut request = Request::get(path).header(HOST, &host);
        if !bearer.is_empty() {
            // Spread the connections over the tokens so every token is in use.
            let index = (connection as u64 * 7919 + n) as usize % bearer.len();
            request = request.header(AUTHORIZATION, &bearer[index]);
        }
        request
            .body(Full::new(Bytes::new()))
            .expect("a valid request")
    })
}

/// Starts the partner API on `addr` with its database and log in `dir`; `extra` adds to (or
/// overrides) the environment.
fn start_api(
    dir: &Path,
    auth: &Auth,
    jwks: SocketAddr,
    addr: SocketAddr,
    extra: &[(&str, String)],
) -> anyhow::Result<Server> {
    let env: HashMap<String, String> = [
        ("RESOURCE_BIND", addr.to_string()),
        ("RESOURCE_ISSUER", format!("http://{}", auth.server.addr)),
        (
            "RESOURCE_JWKS_URL",
            format!("http://{jwks}/.well-known/jwks.json"),
        ),
        (
            "RESOURCE_DATABASE_URL",
            format!("sqlite://{}", dir.join("resource.db").display()),
        ),
        // The per-client rate limit would cap the run; the cost measured here is verification.
        ("RESOURCE_RATE_LIMIT_PER_SECOND", "1000000000".into()),
        ("RESOURCE_RATE_LIMIT_BURST", "1000000000".into()),
    ]
    .into_iter()
    .chain(extra.iter().cloned())
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    Server::spawn(
        "resource-api",
        &[],
        &env,
        addr,
        &dir.join("resource-api.log"),
    )
}

async fn partner_api(
    args: &Args,
    report: &mut Report,
    dir: &Path,
    auth: &Auth,
) -> anyhow::Result<()> {
    report.section("2. Partner API (baselines: the same server's unauthenticated route; ring verifying the same token on one core)");
    let token = use_algorithm(auth, "ES256").await?;
    let (jwks, fetches) = jwks_proxy(auth.server.addr).await?;
    let addr = free_addr()?;
    // First start: creates and seeds its database.
    let mut api = start_api(dir, auth, jwks, addr, &[])?;
    api.wait_ok("/readyz", Duration::from_secs(60)).await?;
    api.stop();
    // Second start: time to the first verified request.
    let api = start_api(dir, auth, jwks, addr, &[])?;
    let startup = first_verified(&api, &token).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle_rss = api.rss_mib()?;

    let fetches_before = fetches.load(Ordering::Relaxed);
    let steady_from = Instant::now();
    let open = measure(
        args,
        &api,
        32,
        api_request(addr, "/healthz", Arc::new(Vec::new())),
    )?;
    let one = measure(
        args,
        &api,
        32,
        api_request(addr, "/v1/me", Arc::new(vec![token.clone()])),
    )?;
    let raw_verify = raw::verify_rate(&token, args)?;
    let full_verify = raw::full_verify_rate(&token, &auth.server.addr, args).await?;
    report.row(
        "`GET /healthz` (no token), 32 conns".into(),
        describe(&open),
        "-".into(),
        "100 %".into(),
    );
    report.row(
        "`GET /v1/me`, ES256, 1 token, 32 conns".into(),
        describe(&one),
        format!("`/healthz`: {:.0}/s", open.rps),
        percent(one.rps, open.rps),
    );
    let many_tokens = distinct_tokens(auth, 10_000).await?;
    let many = measure(
        args,
        &api,
        32,
        api_request(addr, "/v1/me", Arc::new(many_tokens)),
    )?;
    report.row(
        "`GET /v1/me`, ES256, 10,000 distinct tokens, 32 conns".into(),
        describe(&many),
        format!("1 token: {:.0}/s", one.rps),
        percent(many.rps, one.rps),
    );
    report.row(
        "verification alone, one core: ring ECDSA P-256 verify".into(),
        format!("{raw_verify:.0}/s"),
        "-".into(),
        "-".into(),
    );
    report.row(
        "verification alone, one core: our full check (`keys::verify`: header, ring, claims)"
            .into(),
        format!("{full_verify:.0}/s"),
        format!("ring: {raw_verify:.0}/s"),
        percent(full_verify, raw_verify),
    );
    let steady = steady_from.elapsed().as_secs_f64();
    let fetched = fetches.load(Ordering::Relaxed) - fetches_before;
    report.section("3. JWKS fetches by the partner API during the steady runs above");
    report.row(
        format!("fetches in {steady:.0} s of load, max-age {JWKS_MAX_AGE_SECS} s"),
        format!("{fetched}"),
        format!(
            "one per max-age: {:.0}",
            (steady / JWKS_MAX_AGE_SECS as f64).ceil()
        ),
        format!(
            "{:.2} per max-age",
            fetched as f64 / (steady / JWKS_MAX_AGE_SECS as f64)
        ),
    );
    report.section("4. Memory and start-up, partner API");
    report.row(
        "partner API resident memory, idle / peak under the load above".into(),
        format!("{idle_rss:.1} MiB / {:.1} MiB", api.peak_rss_mib()?),
        "targets: < 20 / < 60 MiB".into(),
        "-".into(),
    );
    report.row(
        "partner API, process start to first verified request".into(),
        format!("{:.0} ms", startup.as_secs_f64() * 1000.0),
        "-".into(),
        "-".into(),
    );
    api.stop();
    Ok(())
}

/// Section 2b: `GET /v1/me` on two partner APIs side by side, one deciding its per-client limit
/// in process, the other in Redis (one `EVALSHA` per request), measured in turn at 32
/// connections and at one. Redis's own counts (`INFO commandstats`, `INFO cpu`), read around
/// each shared run, give its round trips and its CPU per request.
async fn shared_limit(
    args: &Args,
    report: &mut Report,
    dir: &Path,
    auth: &Auth,
) -> anyhow::Result<()> {
    let mut redis = redis_connect(&args.redis_url).with_context(|| {
        format!(
            "Redis at {} is not answering; the shared-limit rows need it \
             (start redis-server, or pass --redis-url)",
            args.redis_url
        )
    })?;
    report.section(
        "2b. Partner API: per-client limit in process vs shared in Redis \
         (`GET /v1/me`, ES256, 1 token; baseline: the limit in process)",
    );
    let token = Arc::new(vec![use_algorithm(auth, "ES256").await?]);
    // A prefix of this run's own, so no earlier budget (or other user of this Redis) counts.
    let prefix = format!("bench-{}:", uuid::Uuid::new_v4().simple());
    let shared_env = [
        ("RESOURCE_REDIS_URL", args.redis_url.clone()),
        ("RESOURCE_REDIS_KEY_PREFIX", prefix),
    ];
    let mut servers = Vec::new();
    for (name, extra) in [("in-process", &[][..]), ("shared", &shared_env[..])] {
        let dir = dir.join(format!("limit-{name}"));
        std::fs::create_dir_all(&dir)?;
        let mut api = start_api(&dir, auth, auth.server.addr, free_addr()?, extra)?;
        api.wait_ok("/readyz", Duration::from_secs(60)).await?;
        servers.push(api);
    }
    let outcome = [32, 1].into_iter().try_for_each(|connections| {
        let (local, shared) = (&servers[0], &servers[1]);
        compare_limits(args, report, &mut redis, local, shared, &token, connections)
    });
    servers.into_iter().for_each(Server::stop);
    outcome.context("2b. limit in process vs shared in Redis")
}

/// Rows of section 2b for one connection count: each server's load row, the difference, and
/// the Redis round trips per request.
fn compare_limits(
    args: &Args,
    report: &mut Report,
    redis: &mut redis::Connection,
    local: &Server,
    shared: &Server,
    token: &Arc<Vec<String>>,
    connections: usize,
) -> anyhow::Result<()> {
    let conns = format!(
        "{connections} conn{}",
        if connections == 1 { "" } else { "s" }
    );
    let base = measure(
        args,
        local,
        connections,
        api_request(local.addr, "/v1/me", token.clone()),
    )?;
    // Counts the requests built, the warm-up's included: each is sent and answered.
    let sent = Arc::new(AtomicU64::new(0));
    let (make, counter) = (
        api_request(shared.addr, "/v1/me", token.clone()),
        sent.clone(),
    );
    let counting: MakeRequest = Arc::new(move |connection, n| {
        counter.fetch_add(1, Ordering::Relaxed);
        make(connection, n)
    });
    let before = redis_stats(redis)?;
    let summary = measure(args, shared, connections, counting)?;
    let after = redis_stats(redis)?;
    let requests = sent.load(Ordering::Relaxed).max(1) as f64;
    let (trips, by_command) = after.round_trips(&before, requests);
    anyhow::ensure!(
        trips > 0.0,
        "the partner API sent Redis nothing: its limit was not shared ({by_command})"
    );
    let redis_cpu_us = 1e6 * (after.cpu - before.cpu) / requests;
    report.row(
        format!("`GET /v1/me`, limit in process, {conns}"),
        describe(&base),
        "-".into(),
        "100 %".into(),
    );
    report.row(
        format!("`GET /v1/me`, limit shared in Redis, {conns}"),
        format!("{}; Redis CPU {redis_cpu_us:.1} µs/req", describe(&summary)),
        format!("in process: {:.0}/s", base.rps),
        percent(summary.rps, base.rps),
    );
    report.row(
        format!("added by the shared limit, {conns}"),
        format!(
            "p50 {:+.0} µs, p99 {:+.0} µs; server CPU {:+.1} µs/req, plus Redis {redis_cpu_us:.1} µs/req",
            1000.0 * (summary.p50_ms - base.p50_ms),
            1000.0 * (summary.p99_ms - base.p99_ms),
            summary.server_cpu_us - base.server_cpu_us
        ),
        format!(
            "in process: p50 {:.2} ms, p99 {:.2} ms",
            base.p50_ms, base.p99_ms
        ),
        "-".into(),
    );
    report.row(
        format!("Redis round trips per request, {conns}"),
        format!("{trips:.3} ({by_command}; {requests:.0} requests)"),
        "expected: 1".into(),
        "-".into(),
    );
    Ok(())
}

/// A connection to Redis that has answered a `PING`.
fn redis_connect(url: &str) -> redis::RedisResult<redis::Connection> {
    let mut connection =
        redis::Client::open(url)?.get_connection_with_timeout(Duration::from_secs(2))?;
    redis::cmd("PING").query::<String>(&mut connection)?;
    Ok(connection)
}

/// Commands the rate script runs inside Redis: `INFO commandstats` counts them, but they are no
/// round trip of their own.
const SCRIPT_COMMANDS: [&str; 3] = ["time", "get", "set"];

/// What Redis has done since it started: calls by command and its CPU seconds.
struct RedisStats {
    calls: std::collections::BTreeMap<String, u64>,
    cpu: f64,
}

impl RedisStats {
    /// Commands per request since `before` over `requests`: the round trips (every command but
    /// the harness's own `INFO` and those the script runs inside Redis), and each command's
    /// share.
    fn round_trips(&self, before: &RedisStats, requests: f64) -> (f64, String) {
        let (mut trips, mut sent, mut inside) = (0.0, Vec::new(), Vec::new());
        for (name, &calls) in &self.calls {
            let since = calls.saturating_sub(before.calls.get(name).copied().unwrap_or(0));
            if since == 0 || name == "info" {
                continue;
            }
            let per_request = since as f64 / requests;
            if SCRIPT_COMMANDS.contains(&name.as_str()) {
                inside.push(format!("{name} {per_request:.3}"));
            } else {
                trips += per_request;
                sent.push(format!("{name} {per_request:.3}"));
            }
        }
        let text = format!(
            "{}; run inside the script: {}",
            sent.join(", "),
            inside.join(", ")
        );
        (trips, text)
    }
}

fn redis_stats(redis: &mut redis::Connection) -> anyhow::Result<RedisStats> {
    let info: String = redis::cmd("INFO")
        .arg("cpu")
        .arg("commandstats")
        .query(redis)
        .context("Redis INFO cpu commandstats")?;
    let mut stats = RedisStats {
        calls: Default::default(),
        cpu: 0.0,
    };
    for line in info.lines() {
        // cmdstat_evalsha:calls=3705,usec=72656,...
        if let Some((name, rest)) = line
            .strip_prefix("cmdstat_")
            .and_then(|line| line.split_once(":calls="))
        {
            let calls = rest.split(',').next().unwrap_or_default().parse()?;
            stats.calls.insert(name.to_owned(), calls);
        } else if let Some(seconds) = line
            .strip_prefix("used_cpu_sys:")
            .or_else(|| line.strip_prefix("used_cpu_user:"))
        {
            stats.cpu += seconds.trim().parse::<f64>()?;
        }
    }
    Ok(stats)
}

/// Polls `GET /v1/me` from the moment the process was spawned until it answers 200.
async fn first_verified(api: &Server, token: &str) -> anyhow::Result<Duration> {
    let http = http();
    let url = format!("http://{}/v1/me", api.addr);
    loop {
        if let Ok(response) = http.get(&url).bearer_auth(token).send().await
            && response.status().is_success()
        {
            return Ok(api.started.elapsed());
        }
        anyhow::ensure!(
            api.started.elapsed() < Duration::from_secs(60),
            "partner API never answered"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// `count` access tokens from the token service, fetched 32 at a time.
async fn distinct_tokens(auth: &Auth, count: usize) -> anyhow::Result<Vec<String>> {
    let http = http();
    let url = format!("http://{}/oauth2/token", auth.server.addr);
    let mut tokens = Vec::with_capacity(count);
    let mut pending = tokio::task::JoinSet::new();
    for _ in 0..count {
        if pending.len() >= 32 {
            tokens.push(pending.join_next().await.context("a task")???);
        }
        let (http, url, client) = (http.clone(), url.clone(), auth.plain.clone());
        pending.spawn(async move { request_token(&http, &url, &client).await });
    }
    while let Some(token) = pending.join_next().await {
        tokens.push(token??);
    }
    Ok(tokens)
}

/// Adds synthetic clients, each with a secret and a refresh token, until the database holds
/// `total` bench clients; straight SQL, since the admin path would take minutes for 100,000.
async fn grow_clients(db_url: &str, backend: Backend, from: u64, total: u64) -> anyhow::Result<()> {
    if total <= from {
        return Ok(());
    }
    let far = 4_000_000_000i64;
    match backend {
        Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(db_url).await?;
            let mut tx = pool.begin().await?;
            let series =
                "WITH RECURSIVE n(i) AS (SELECT ?1 UNION ALL SELECT i + 1 FROM n WHERE i < ?2)";
            sqlx::query(&*format!("{series} INSERT INTO clients (client_id, name, partner_id, scopes, audiences, access_token_ttl, \
                refresh_enabled, introspect_allowed, disabled_at, created_at, updated_at) \
                SELECT 'bulk-' || i, 'bulk ' || i, 'acme', 'orders:read', '[\"partner-api\"]', NULL, 1, 0, NULL, 0, 0 FROM n").leak())
                .bind(from as i64 + 1).bind(total as i64).execute(&mut *tx).await?;
            sqlx::query(&*format!("{series} INSERT INTO client_secrets (id, client_id, secret_hash, created_at, expires_at) \
                SELECT 'bulk-' || i, 'bulk-' || i, randomblob(32), 0, NULL FROM n").leak())
                .bind(from as i64 + 1).bind(total as i64).execute(&mut *tx).await?;
            sqlx::query(&*format!("{series} INSERT INTO refresh_tokens (id, token_hash, client_id, family_id, scope, audiences, \
                created_at, expires_at, used_at, revoked_at) \
                SELECT 'bulk-' || i, randomblob(32), 'bulk-' || i, 'bulk-' || i, 'orders:read', '[\"partner-api\"]', 0, {far}, NULL, NULL FROM n").leak())
                .bind(from as i64 + 1).bind(total as i64).execute(&mut *tx).await?;
            tx.commit().await?;
            pool.close().await;
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(db_url).await?;
            let mut tx = pool.begin().await?;
            let series = "FROM generate_series($1::bigint, $2::bigint) AS i";
            sqlx::query(&*format!("INSERT INTO clients (client_id, name, partner_id, scopes, audiences, access_token_ttl, \
                refresh_enabled, introspect_allowed, disabled_at, created_at, updated_at) \
                SELECT 'bulk-' || i, 'bulk ' || i, 'acme', 'orders:read', '[\"partner-api\"]', NULL, TRUE, FALSE, NULL, 0, 0 {series}").leak())
                .bind(from as i64 + 1).bind(total as i64).execute(&mut *tx).await?;
            sqlx::query(&*format!("INSERT INTO client_secrets (id, client_id, secret_hash, created_at, expires_at) \
                SELECT 'bulk-' || i, 'bulk-' || i, sha256(('s' || i)::bytea), 0, NULL {series}").leak())
                .bind(from as i64 + 1).bind(total as i64).execute(&mut *tx).await?;
            sqlx::query(&*format!("INSERT INTO refresh_tokens (id, token_hash, client_id, family_id, scope, audiences, \
                created_at, expires_at, used_at, revoked_at) \
                SELECT 'bulk-' || i, sha256(('r' || i)::bytea), 'bulk-' || i, 'bulk-' || i, 'orders:read', '[\"partner-api\"]', 0, {far}, NULL, NULL {series}").leak())
                .bind(from as i64 + 1).bind(total as i64).execute(&mut *tx).await?;
            tx.commit().await?;
            pool.close().await;
        }
    }
    Ok(())
}

async fn cost_growth(
    args: &Args,
    report: &mut Report,
    backend: Backend,
    auth: &Auth,
) -> anyhow::Result<()> {
    report.section(&format!(
        "5. Cost growth, {}: token endpoint, ES256, 32 conns, no refresh token",
        backend.name()
    ));
    use_algorithm(auth, "ES256").await?;
    // The bench's two clients count among the total.
    let mut have = 2;
    let mut first = None;
    for total in [10, 1_000, args.max_clients] {
        grow_clients(&auth.db_url, backend, have, total).await?;
        have = have.max(total);
        let summary = measure(
            args,
            &auth.server,
            32,
            token_request(auth.server.addr, &auth.plain),
        )?;
        let baseline = *first.get_or_insert(summary.rps);
        report.row(
            format!("{total} clients and {total} refresh tokens"),
            describe(&summary),
            format!("10 clients: {baseline:.0}/s"),
            percent(summary.rps, baseline),
        );
    }
    Ok(())
}

fn scratch_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("partner-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    servers::build_servers()?;
    let mut report = Report::default();
    let dir = scratch_dir()?;
    let result = run(&args, &mut report, &dir).await;
    report.print(&args);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn run(args: &Args, report: &mut Report, dir: &Path) -> anyhow::Result<()> {
    // The sections measured per backend; the others start servers of their own.
    let per_backend = ["token", "api", "shared", "growth"]
        .into_iter()
        .any(|section| args.wants(section));
    let mut backends = Vec::new();
    if per_backend {
        backends.push((
            Backend::Sqlite,
            format!("sqlite://{}", dir.join("auth.db").display()),
        ));
    }
    let mut postgres_db = None;
    if per_backend && !args.no_postgres {
        match create_pg_database(&args.postgres_url).await {
            Ok((url, name)) => {
                backends.push((Backend::Postgres, url));
                postgres_db = Some(name);
            }
            Err(err) => report.notes.push(format!("PostgreSQL left out: {err:#}")),
        }
    }
    let mut result = Ok(());
    for (backend, url) in backends {
        let outcome = async {
            let backend_dir = dir.join(backend.name());
            std::fs::create_dir_all(&backend_dir)?;
            let auth = start_auth(&backend_dir, &url).await?;
            tokio::time::sleep(Duration::from_secs(1)).await;
            let idle = auth.server.rss_mib()?;
            if args.wants("token") {
                token_endpoint(args, report, backend, &auth).await?;
                let peak = auth.server.peak_rss_mib()?;
                report.section(&format!("4. Memory, token service on {}", backend.name()));
                report.row(
                    "token service resident memory, idle / peak under the load above".into(),
                    format!("{idle:.1} MiB / {peak:.1} MiB"),
                    "targets: < 20 / < 60 MiB".into(),
                    "-".into(),
                );
            }
            if backend == Backend::Sqlite && args.wants("api") {
                partner_api(args, report, &backend_dir, &auth).await?;
            }
            if backend == Backend::Sqlite && args.wants("shared") {
                shared_limit(args, report, &backend_dir, &auth).await?;
            }
            if args.wants("growth") {
                cost_growth(args, report, backend, &auth).await?;
            }
            auth.server.stop();
            anyhow::Ok(())
        }
        .await;
        if let Err(err) = outcome {
            report
                .notes
                .push(format!("{} run failed: {err:#}", backend.name()));
            result = Err(err);
        }
    }
    if let Some(name) = postgres_db {
        drop_pg_database(&args.postgres_url, &name).await;
    }
    if args.wants("auth-methods") {
        auth_methods::run(args, report, dir).await?;
    }
    if args.wants("lambda") {
        lambda::run(args, report, dir).await?;
    }
    if args.wants("metrics") {
        metrics::run(args, report, dir).await?;
    }
    if args.wants("keys") {
        api_keys::run(args, report, dir).await?;
    }
    if args.wants("compare") {
        compare::run(args, report, dir).await?;
    }
    result
}

async fn create_pg_database(admin_url: &str) -> anyhow::Result<(String, String)> {
    use sqlx::Connection;
    let mut admin = sqlx::PgConnection::connect(admin_url).await?;
    let name = format!("bench_{}", std::process::id());
    sqlx::query(&*format!("CREATE DATABASE {name}").leak())
        .execute(&mut admin)
        .await?;
    let (base, _) = admin_url
        .rsplit_once('/')
        .context("the PostgreSQL URL names a database")?;
    Ok((format!("{base}/{name}"), name))
}

async fn drop_pg_database(admin_url: &str, name: &str) {
    use sqlx::Connection;
    if let Ok(mut admin) = sqlx::PgConnection::connect(admin_url).await {
        let _ = sqlx::query(&*format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").leak())
            .execute(&mut admin)
            .await;
    }
}
