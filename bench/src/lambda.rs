//! Section 6: the AWS Lambda entry points. The release `resource-api` is started as a function,
//! as the partner API and as the API Gateway authorizer (`_HANDLER=authorize`), against the fake
//! Runtime API of `test-support` served in this process, with real ES256 tokens and the JWKS
//! from the release token service (`auth-server serve`, SQLite: it is not under Lambda here).
//!
//! - Cold start: from spawning the process to the first invocation's response being posted,
//!   with the invocation queued right after the spawn, over [`COLD_STARTS`] fresh processes;
//!   split at the function's first poll of `/runtime/invocation/next` (the end of its
//!   initialization). One unmeasured start of each kind comes first: it creates and seeds the
//!   partner API's SQLite file, so the measured starts open an existing database, and it leaves
//!   the binary in the page cache, as on a warm Lambda host.
//! - Warm: [`WARM_INVOCATIONS`] sequential invocations to one started function; the function's
//!   CPU time (user + system, all threads) before and after, and the wall time of each
//!   invocation as the fake runtime sees it (queued until the response is posted).
//! - Peak RSS (VmHWM) after the warm invocations: the floor for the Lambda memory size.
//! - The cost per million partner requests of the three ways to authorize, from those figures
//!   and AWS's list prices ([`PRICES`]).
//!
//! The functions log at `RUST_LOG=info` (what a deployment gets without the variable) to
//! `lambda/*.log` in the scratch folder; `BENCH_LAMBDA_LOG` overrides the filter.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::Value;
use test_support::lambda::events::{self, HttpRequest};
use test_support::lambda::{FakeRuntime, Outcome};

use crate::servers::{self, binary};
use crate::{Args, Auth, Report, median, start_auth, use_algorithm};

/// Fresh processes per kind of function for the cold-start figures.
const COLD_STARTS: usize = 20;
/// Sequential invocations per warm measurement (CPU time is read in 10 ms ticks, so enough
/// that a tick is about 1 % of the total).
const WARM_INVOCATIONS: usize = 10_000;
/// Unmeasured invocations before the warm measurements.
const WARM_UP: usize = 500;
/// The cold-start target and the point beyond which it is a defect.
const TARGET_MS: f64 = 50.0;
const DEFECT_MS: f64 = 150.0;
/// The smallest memory size Lambda offers.
const LAMBDA_MIN_MB: f64 = 128.0;

/// AWS list prices, us-east-1, in US dollars, as looked up on `date`. API Gateway: the price table
/// of AWS's whitepaper "Best Practices for Designing Amazon API Gateway Private APIs and Private
/// Integration" (cost optimization); HTTP API $1.00 per million for the first 300 million a month,
/// REST API $3.50 for the first 333 million. Lambda: aws.amazon.com/lambda/pricing renders its
/// rates client-side, so the figures here are the well-known list prices as transcribed by third
/// parties (the same in each), not read from AWS's page. Free tiers are left out.
pub struct Prices {
    pub date: &'static str,
    pub http_api_per_million: f64,
    pub rest_api_per_million: f64,
    pub lambda_request_per_million: f64,
    pub gb_second_x86: f64,
    pub gb_second_arm64: f64,
}

pub const PRICES: Prices = Prices {
    date: "2026-12-02",
    http_api_per_million: 1.00,
    rest_api_per_million: 3.50,
    lambda_request_per_million: 0.20,
    gb_second_x86: 0.000_016_666_7,
    gb_second_arm64: 0.000_013_333_4,
};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    PartnerApi,
    Authorizer,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::PartnerApi => "partner API",
            Kind::Authorizer => "authorizer",
        }
    }
}

/// A release `resource-api` started as Lambda starts a function (the variables of
/// `test_support::lambda::LambdaProcess`), its logs in a file; killed when dropped.
struct Function {
    child: Child,
}

impl Function {
    fn start(env: &[(String, String)], runtime_api: &str, log: &Path) -> anyhow::Result<Function> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)?;
        let child = Command::new(binary("resource-api")?)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AWS_LAMBDA_RUNTIME_API", runtime_api)
            .env("AWS_LAMBDA_FUNCTION_NAME", "bench")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/bench")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
            .env("AWS_REGION", "us-east-1")
            .env(
                "RUST_LOG",
                std::env::var("BENCH_LAMBDA_LOG").unwrap_or_else(|_| "info".into()),
            )
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("cannot start resource-api")?;
        Ok(Function { child })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn peak_rss_mib(&self) -> anyhow::Result<f64> {
        proc_status_kib(self.pid(), "VmHWM:").map(|kib| kib as f64 / 1024.0)
    }

    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn proc_status_kib(pid: u32, field: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .with_context(|| format!("{field} not in /proc/{pid}/status"))?;
    Ok(line
        .split_whitespace()
        .nth(1)
        .context("a number")?
        .parse()?)
}

/// CPU time of the live threads of `pid` in seconds, to the nanosecond: the sum of the first
/// field of `/proc/<pid>/task/*/schedstat`. Used for the cold start, where the 10 ms ticks of
/// `/proc/<pid>/stat` are too coarse; a young process has lost no thread yet.
fn threads_cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let mut ns = 0u64;
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let path = task?.path().join("schedstat");
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue; // the thread ended meanwhile
        };
        ns += text
            .split_whitespace()
            .next()
            .context("a schedstat field")?
            .parse::<u64>()?;
    }
    Ok(ns as f64 / 1e9)
}

/// The event of one measured call, and how to tell its answer is the expected one.
struct Call {
    what: &'static str,
    event: Value,
    check: fn(&Value) -> bool,
}

fn http_ok(response: &Value) -> bool {
    response["statusCode"] == 200
}

fn policy_allows(response: &Value) -> bool {
    response["policyDocument"]["Statement"]
        .as_array()
        .is_some_and(|s| s.iter().any(|s| s["Effect"] == "Allow"))
}

fn simple_allows(response: &Value) -> bool {
    response["isAuthorized"] == true
}

async fn invoke(
    runtime: &FakeRuntime,
    function: &mut Function,
    call: &Call,
    limit: Duration,
) -> anyhow::Result<()> {
    let outcome = match tokio::time::timeout(limit, runtime.invoke(call.event.clone())).await {
        Ok(outcome) => outcome,
        Err(_) => anyhow::bail!(
            "{}: no answer within {limit:?} (process {}; init errors: {:?})",
            call.what,
            match function.exited() {
                Some(status) => format!("exited with {status}"),
                None => "running".into(),
            },
            runtime.init_errors()
        ),
    };
    match outcome {
        Outcome::Response(response) if (call.check)(&response) => Ok(()),
        other => anyhow::bail!("{}: unexpected answer {other:?}", call.what),
    }
}

/// One cold start.
struct Cold {
    /// Spawn to the first response.
    total: Duration,
    /// Spawn to the first poll for an invocation (Lambda's "Init Duration").
    init: Duration,
    /// CPU time of the process when the first response arrived.
    cpu: f64,
    /// VmHWM at the first response.
    peak_mib: f64,
}

async fn cold_start(env: &[(String, String)], call: &Call, log: &Path) -> anyhow::Result<Cold> {
    let runtime = FakeRuntime::start().await;
    let spawned = Instant::now();
    let mut function = Function::start(env, &runtime.runtime_api(), log)?;
    invoke(&runtime, &mut function, call, Duration::from_secs(10)).await?;
    let total = spawned.elapsed();
    let first_poll = runtime
        .first_poll()
        .context("the function answered without polling")?;
    Ok(Cold {
        total,
        init: first_poll.duration_since(spawned),
        cpu: threads_cpu_seconds(function.pid())?,
        peak_mib: function.peak_rss_mib()?,
    })
}

/// `p` (0–1) of `values` by nearest rank.
fn percentile(mut values: Vec<f64>, p: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    if values.is_empty() {
        return 0.0;
    }
    let rank = (p * values.len() as f64).ceil() as usize;
    values[rank.clamp(1, values.len()) - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Cold starts of one kind, summarised.
struct ColdSummary {
    median_ms: f64,
    p90_ms: f64,
    max_ms: f64,
    init_ms: f64,
    first_ms: f64,
    cpu_ms: f64,
    peak_mib: f64,
}

async fn cold_starts(
    kind: Kind,
    env: &[(String, String)],
    call: &Call,
    log: &Path,
) -> anyhow::Result<ColdSummary> {
    // Unmeasured: seeds the database (partner API) and warms the page cache.
    cold_start(env, call, log).await?;
    let mut starts = Vec::with_capacity(COLD_STARTS);
    for n in 0..COLD_STARTS {
        let cold = cold_start(env, call, log).await?;
        eprintln!(
            "  {} cold start {}: {:.1} ms (init {:.1} ms), CPU {:.1} ms",
            kind.name(),
            n + 1,
            ms(cold.total),
            ms(cold.init),
            cold.cpu * 1000.0
        );
        starts.push(cold);
        // Let the killed process go and the machine settle between starts.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let totals: Vec<f64> = starts.iter().map(|c| ms(c.total)).collect();
    Ok(ColdSummary {
        median_ms: median(totals.clone()),
        p90_ms: percentile(totals.clone(), 0.9),
        max_ms: percentile(totals, 1.0),
        init_ms: median(starts.iter().map(|c| ms(c.init)).collect()),
        first_ms: median(starts.iter().map(|c| ms(c.total - c.init)).collect()),
        cpu_ms: median(starts.iter().map(|c| c.cpu * 1000.0).collect()),
        peak_mib: percentile(starts.iter().map(|c| c.peak_mib).collect(), 1.0),
    })
}

/// Warm invocations of one call, over several runs.
struct Warm {
    /// Median over the runs of the function's CPU time per invocation, and the runs' range.
    cpu_us: f64,
    cpu_range_us: (f64, f64),
    /// Wall time per invocation as the fake runtime sees it, over all runs.
    p50_us: f64,
    p99_us: f64,
    mean_us: f64,
    /// What Lambda would bill per invocation at this wall time: each invocation rounded up to
    /// the next whole millisecond, averaged.
    billed_ms: f64,
}

#[derive(Default)]
struct WarmRuns {
    cpu_us: Vec<f64>,
    walls_us: Vec<f64>,
}

impl WarmRuns {
    async fn run(
        &mut self,
        runtime: &FakeRuntime,
        function: &mut Function,
        call: &Call,
    ) -> anyhow::Result<()> {
        let pid = function.pid();
        let cpu = servers::cpu_seconds(pid)?;
        for _ in 0..WARM_INVOCATIONS {
            let began = Instant::now();
            invoke(runtime, function, call, Duration::from_secs(10)).await?;
            self.walls_us.push(began.elapsed().as_secs_f64() * 1e6);
        }
        let cpu = servers::cpu_seconds(pid)? - cpu;
        self.cpu_us.push(cpu * 1e6 / WARM_INVOCATIONS as f64);
        Ok(())
    }

    fn summary(self) -> Warm {
        let n = self.walls_us.len().max(1) as f64;
        Warm {
            cpu_range_us: (
                percentile(self.cpu_us.clone(), 0.0),
                percentile(self.cpu_us.clone(), 1.0),
            ),
            cpu_us: median(self.cpu_us),
            p50_us: percentile(self.walls_us.clone(), 0.5),
            p99_us: percentile(self.walls_us.clone(), 0.99),
            mean_us: self.walls_us.iter().sum::<f64>() / n,
            billed_ms: self
                .walls_us
                .iter()
                .map(|us| (us / 1000.0).ceil().max(1.0))
                .sum::<f64>()
                / n,
        }
    }
}

/// Starts one function, warms it up, and measures `calls` in turn, `args.runs` times; returns
/// the summaries in the order of `calls` and the function's peak RSS at the end.
async fn warm_invocations(
    args: &Args,
    env: &[(String, String)],
    calls: &[Call],
    log: &Path,
) -> anyhow::Result<(Vec<Warm>, f64)> {
    let runtime = FakeRuntime::start().await;
    let mut function = Function::start(env, &runtime.runtime_api(), log)?;
    for call in calls {
        for _ in 0..WARM_UP {
            invoke(&runtime, &mut function, call, Duration::from_secs(10)).await?;
        }
    }
    let mut runs: Vec<WarmRuns> = calls.iter().map(|_| WarmRuns::default()).collect();
    for _ in 0..args.runs.max(1) {
        for (call, runs) in calls.iter().zip(runs.iter_mut()) {
            runs.run(&runtime, &mut function, call).await?;
        }
    }
    let peak = function.peak_rss_mib()?;
    Ok((runs.into_iter().map(WarmRuns::summary).collect(), peak))
}

fn describe_cold(c: &ColdSummary) -> String {
    format!(
        "median {:.1} ms, p90 {:.1} ms, max {:.1} ms (init to first poll {:.1} ms + first invocation {:.1} ms, medians); CPU {:.1} ms; peak RSS {:.1} MiB",
        c.median_ms, c.p90_ms, c.max_ms, c.init_ms, c.first_ms, c.cpu_ms, c.peak_mib
    )
}

fn describe_warm(w: &Warm) -> String {
    format!(
        "CPU {:.0} µs/invocation (runs {:.0}–{:.0}); wall p50 {:.0} µs, p99 {:.0} µs, mean {:.0} µs; billed {:.3} ms",
        w.cpu_us, w.cpu_range_us.0, w.cpu_range_us.1, w.p50_us, w.p99_us, w.mean_us, w.billed_ms
    )
}

/// The memory size to configure: twice the peak RSS, rounded up to 64 MB, and at least
/// Lambda's minimum of 128 MB.
fn recommended_mb(peak_mib: f64) -> f64 {
    ((2.0 * peak_mib / 64.0).ceil() * 64.0).max(LAMBDA_MIN_MB)
}

/// Dollars per million partner requests for one way to authorize.
struct Cost {
    invocations: f64,
    billed_ms: f64,
    total: f64,
    /// What authorization adds over the same requests unauthorized (API Gateway plus the
    /// backend's invocation).
    added: f64,
}

fn cost(
    memory_mb: f64,
    backend_ms: f64,
    auth_invocations: f64,
    auth_ms_each: f64,
    in_process_extra_ms: f64,
) -> Cost {
    let p = &PRICES;
    let gb = memory_mb / 1024.0;
    let per_ms = gb * p.gb_second_x86 / 1000.0 * 1e6; // dollars per million invocation-ms
    let lambda = |invocations: f64, ms: f64| {
        invocations * p.lambda_request_per_million + invocations * ms * per_ms
    };
    let unauthorized = p.http_api_per_million + lambda(1.0, backend_ms);
    let backend_ms = backend_ms + in_process_extra_ms;
    let total =
        p.http_api_per_million + lambda(1.0, backend_ms) + lambda(auth_invocations, auth_ms_each);
    Cost {
        invocations: 1.0 + auth_invocations,
        billed_ms: backend_ms + auth_invocations * auth_ms_each,
        total,
        added: total - unauthorized,
    }
}

fn env_for(auth: &Auth, dir: &Path, kind: Kind) -> Vec<(String, String)> {
    let issuer = format!("http://{}", auth.server.addr);
    let mut env = vec![
        ("RESOURCE_ISSUER", issuer.clone()),
        (
            "RESOURCE_JWKS_URL",
            format!("{issuer}/.well-known/jwks.json"),
        ),
        (
            "RESOURCE_DATABASE_URL",
            format!("sqlite://{}", dir.join("lambda-resource.db").display()),
        ),
        // The per-client limit (50/s) would otherwise answer most warm invocations with 429.
        ("RESOURCE_RATE_LIMIT_PER_SECOND", "1000000000".into()),
        ("RESOURCE_RATE_LIMIT_BURST", "1000000000".into()),
    ];
    if kind == Kind::Authorizer {
        env.push(("_HANDLER", "authorize".into()));
        env.push(("RESOURCE_AUTHORIZER_ROUTES", "GET /v1/me=".into()));
    }
    env.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

/// Section 6, with a token service of its own.
pub async fn run(args: &Args, report: &mut Report, dir: &Path) -> anyhow::Result<()> {
    let outcome = measure(args, report, dir).await;
    if let Err(err) = &outcome {
        report.notes.push(format!("Lambda section failed: {err:#}"));
    }
    outcome
}

async fn measure(args: &Args, report: &mut Report, dir: &Path) -> anyhow::Result<()> {
    let dir = dir.join("lambda");
    std::fs::create_dir_all(&dir)?;
    let auth = start_auth(&dir, &format!("sqlite://{}", dir.join("auth.db").display())).await?;
    let token = use_algorithm(&auth, "ES256").await?;
    let api_env = env_for(&auth, &dir, Kind::PartnerApi);
    let authorizer_env = env_for(&auth, &dir, Kind::Authorizer);
    let me = || Call {
        what: "GET /v1/me (HTTP API event)",
        event: HttpRequest::get("/v1/me").bearer(&token).http_api(),
        check: http_ok,
    };
    let healthz = Call {
        what: "GET /healthz (HTTP API event)",
        event: HttpRequest::get("/healthz").http_api(),
        check: http_ok,
    };
    let token_event = || Call {
        what: "REST TOKEN authorizer event",
        event: events::token_authorizer(
            &format!("Bearer {token}"),
            &events::method_arn("prod", "GET", "/v1/me"),
        ),
        check: policy_allows,
    };
    let http_api_event = Call {
        what: "HTTP API REQUEST authorizer event (payload 2.0)",
        event: events::http_api_authorizer(&HttpRequest::get("/v1/me").bearer(&token)),
        check: simple_allows,
    };
    let api_log = dir.join("resource-api-lambda.log");
    let authorizer_log = dir.join("resource-api-authorizer.log");

    let load_before = loadavg();
    let api_cold = cold_starts(Kind::PartnerApi, &api_env, &me(), &api_log).await?;
    let authorizer_cold = cold_starts(
        Kind::Authorizer,
        &authorizer_env,
        &token_event(),
        &authorizer_log,
    )
    .await?;
    report.section(&format!(
        "6. AWS Lambda: cold start, release `resource-api` as a function (spawn to the first response posted, {COLD_STARTS} starts after one unmeasured start; JWKS from the release token service)"
    ));
    for (what, cold) in [
        (
            "partner API function, `GET /v1/me` (HTTP API event, ES256 token)",
            &api_cold,
        ),
        (
            "authorizer (`_HANDLER=authorize`), REST `TOKEN` event",
            &authorizer_cold,
        ),
    ] {
        report.row(
            what.into(),
            describe_cold(cold),
            format!("target ≤ {TARGET_MS:.0} ms, defect > {DEFECT_MS:.0} ms"),
            format!(
                "{:.0} % of target{}",
                100.0 * cold.median_ms / TARGET_MS,
                if cold.median_ms > DEFECT_MS {
                    " (defect)"
                } else {
                    ""
                }
            ),
        );
    }

    let (api_warm, api_peak) = warm_invocations(args, &api_env, &[healthz, me()], &api_log).await?;
    let (authorizer_warm, authorizer_peak) = warm_invocations(
        args,
        &authorizer_env,
        &[token_event(), http_api_event],
        &authorizer_log,
    )
    .await?;
    let load_after = loadavg();
    auth.server.stop();

    let (healthz, me) = (&api_warm[0], &api_warm[1]);
    let (token_auth, http_auth) = (&authorizer_warm[0], &authorizer_warm[1]);
    report.section(&format!(
        "6. AWS Lambda: warm invocations, one instance, {WARM_INVOCATIONS} sequential invocations × {} runs (CPU: median of the runs; wall: the fake runtime's view, queued to response posted)",
        args.runs.max(1)
    ));
    report.row(
        "partner API, `GET /healthz` (no token; the backend stand-in)".into(),
        describe_warm(healthz),
        "-".into(),
        "100 %".into(),
    );
    report.row(
        "partner API, `GET /v1/me`, cached token".into(),
        describe_warm(me),
        format!("`/healthz`: {:.1} µs", healthz.cpu_us),
        crate::percent(me.cpu_us, healthz.cpu_us),
    );
    report.row(
        "authorizer, REST `TOKEN` event, same token".into(),
        describe_warm(token_auth),
        format!("`/healthz`: {:.1} µs", healthz.cpu_us),
        crate::percent(token_auth.cpu_us, healthz.cpu_us),
    );
    report.row(
        "authorizer, HTTP API `REQUEST` event (payload 2.0), same token".into(),
        describe_warm(http_auth),
        format!("`/healthz`: {:.1} µs", healthz.cpu_us),
        crate::percent(http_auth.cpu_us, healthz.cpu_us),
    );
    let memory = recommended_mb(api_peak.max(authorizer_peak));
    for (what, peak) in [
        ("partner API function", api_peak),
        ("authorizer function", authorizer_peak),
    ] {
        report.row(
            format!(
                "{what}, peak RSS (VmHWM) after the warm-up and {} invocations",
                WARM_INVOCATIONS * 2 * args.runs.max(1)
            ),
            format!("{peak:.1} MiB"),
            format!("Lambda minimum {LAMBDA_MIN_MB:.0} MB; recommended {memory:.0} MB"),
            format!("{:.0} % of {memory:.0} MB", 100.0 * peak / memory),
        );
    }

    let p = &PRICES;
    report.section(&format!(
        "6. AWS Lambda: cost per million partner requests at {memory:.0} MB, x86 (list prices as of {}: HTTP API ${:.2}/M, Lambda ${:.2}/M requests + ${}/GB-s; backend = the `/healthz` invocation)",
        p.date, p.http_api_per_million, p.lambda_request_per_million, p.gb_second_x86
    ));
    let backend_ms = healthz.billed_ms;
    let unauthorized = cost(memory, backend_ms, 0.0, 0.0, 0.0);
    let ways = [
        (
            "(a) in the partner API function".to_owned(),
            // Within the noise the two may come out in either order; a negative addition
            // would be noise, not a saving.
            cost(
                memory,
                backend_ms,
                0.0,
                0.0,
                (me.billed_ms - backend_ms).max(0.0),
            ),
        ),
        (
            "(b) Lambda authorizer + backend, no authorizer cache (TTL 0)".to_owned(),
            cost(memory, backend_ms, 1.0, http_auth.billed_ms, 0.0),
        ),
        (
            "(b) Lambda authorizer + backend, 90 % authorizer-cache hits".to_owned(),
            cost(memory, backend_ms, 0.1, http_auth.billed_ms, 0.0),
        ),
        (
            "(c) API Gateway JWT authorizer + backend".to_owned(),
            cost(memory, backend_ms, 0.0, 0.0, 0.0),
        ),
    ];
    for (what, c) in ways {
        report.row(
            what,
            format!(
                "{:.2} invocations, {:.3} ms billed per request: ${:.4}",
                c.invocations, c.billed_ms, c.total
            ),
            format!("unauthorized: ${:.4}", unauthorized.total),
            format!(
                "authorization adds ${:.4} ({:.1} % of the total)",
                c.added,
                100.0 * c.added / c.total
            ),
        );
    }
    let gb_ms = memory / 1024.0 / 1000.0 * 1e6;
    report.notes.push(format!(
        "Lambda section: one billed millisecond at {memory:.0} MB costs ${:.5} per million invocations on x86, ${:.5} on arm64 (${}/GB-s); a REST API costs ${:.2} per million requests instead of ${:.2} and has no JWT authorizer.",
        gb_ms * p.gb_second_x86,
        gb_ms * p.gb_second_arm64,
        p.gb_second_arm64,
        p.rest_api_per_million,
        p.http_api_per_million
    ));
    report.notes.push(format!(
        "Lambda section: load average {load_before} before, {load_after} after (1, 5, 15 min)."
    ));
    Ok(())
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|| "?".into())
}
