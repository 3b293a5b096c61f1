//! Section 7 (`--only metrics`): what keeping Prometheus metrics costs a request. Two token
//! services, each on its own SQLite file, and two partner APIs, one of each pair started with its
//! `*_METRICS_BIND` and the other without, are put under the same load in turn, run by run (so
//! the machine's drift falls on both alike), and each one's server CPU per request is given
//! beside its twin's. Nobody scrapes during the runs (Prometheus scrapes every 15 s or so); one
//! scrape at the end checks that the requests were indeed counted.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use crate::servers::{Server, free_addr, http};
use crate::{
    Args, Auth, Report, Summary, api_request, describe, measure, median, start_api,
    start_auth_with, token_request, use_algorithm,
};

/// Connections of the load generator, as in sections 1 and 2.
const CONNECTIONS: usize = 32;

pub async fn run(args: &Args, report: &mut Report, dir: &Path) -> anyhow::Result<()> {
    let dir = dir.join("metrics");
    let (off_dir, on_dir) = (dir.join("off"), dir.join("on"));
    std::fs::create_dir_all(&off_dir)?;
    std::fs::create_dir_all(&on_dir)?;
    let sqlite = |dir: &Path| format!("sqlite://{}", dir.join("auth.db").display());
    let auth_metrics = free_addr()?;
    let auth_off = start_auth_with(&off_dir, &sqlite(&off_dir), &[]).await?;
    let auth_on = start_auth_with(
        &on_dir,
        &sqlite(&on_dir),
        &[("AUTH_METRICS_BIND", auth_metrics.to_string())],
    )
    .await?;
    let outcome = async {
        report.section(&format!(
            "7. Metrics: the same load on twin servers, `*_METRICS_BIND` unset and set \
             (runs interleaved; baseline: the twin without metrics; {CONNECTIONS} conns)"
        ));
        token_overhead(args, report, &auth_off, &auth_on).await?;
        api_overhead(args, report, (&off_dir, &auth_off), (&on_dir, &auth_on)).await?;
        let counted = scrape_value(
            auth_metrics,
            "auth_token_requests_total{service=\"auth\",grant_type=\"client_credentials\",outcome=\"issued\"}",
        )
        .await?;
        report.notes.push(format!(
            "Section 7: the token service with metrics counted {counted:.0} issued tokens by the end."
        ));
        anyhow::Ok(())
    }
    .await;
    auth_off.server.stop();
    auth_on.server.stop();
    outcome.context("7. metrics overhead")
}

async fn token_overhead(
    args: &Args,
    report: &mut Report,
    off: &Auth,
    on: &Auth,
) -> anyhow::Result<()> {
    use_algorithm(off, "ES256").await?;
    use_algorithm(on, "ES256").await?;
    let (off_runs, on_runs) = interleaved(
        args,
        CONNECTIONS,
        (&off.server, token_request(off.server.addr, &off.plain)),
        (&on.server, token_request(on.server.addr, &on.plain)),
    )?;
    rows(
        report,
        "`POST /oauth2/token`, client credentials, ES256, no refresh token",
        &off_runs,
        &on_runs,
    );
    Ok(())
}

async fn api_overhead(
    args: &Args,
    report: &mut Report,
    (off_dir, off_auth): (&Path, &Auth),
    (on_dir, on_auth): (&Path, &Auth),
) -> anyhow::Result<()> {
    let start = |dir: &Path, auth: &Auth, extra: Vec<(&'static str, String)>| {
        let addr = free_addr()?;
        anyhow::Ok((start_api(dir, auth, auth.server.addr, addr, &extra)?, addr))
    };
    let api_metrics = free_addr()?;
    let (mut off, off_addr) = start(off_dir, off_auth, vec![])?;
    let (mut on, on_addr) = start(
        on_dir,
        on_auth,
        vec![("RESOURCE_METRICS_BIND", api_metrics.to_string())],
    )?;
    let outcome = async {
        off.wait_ok("/readyz", Duration::from_secs(60)).await?;
        on.wait_ok("/readyz", Duration::from_secs(60)).await?;
        let off_token = crate::fetch_token(off_auth, &off_auth.plain).await?;
        let on_token = crate::fetch_token(on_auth, &on_auth.plain).await?;
        let (off_runs, on_runs) = interleaved(
            args,
            CONNECTIONS,
            (&off, api_request(off_addr, "/v1/me", Arc::new(vec![off_token]))),
            (&on, api_request(on_addr, "/v1/me", Arc::new(vec![on_token]))),
        )?;
        rows(report, "`GET /v1/me`, ES256, 1 token", &off_runs, &on_runs);
        let counted = scrape_value(
            api_metrics,
            "resource_requests_total{service=\"resource\",route=\"/v1/me\",status=\"200\"}",
        )
        .await?;
        report.notes.push(format!(
            "Section 7: the partner API with metrics counted {counted:.0} `GET /v1/me` 200s by the end."
        ));
        anyhow::Ok(())
    }
    .await;
    off.stop();
    on.stop();
    outcome
}

/// `args.runs` runs of each of the two at `connections`, alternating run by run (so the
/// machine's drift falls on both alike), the first of each pair taken in turn from either side.
pub(crate) fn interleaved(
    args: &Args,
    connections: usize,
    (a, a_request): (&Server, crate::load::MakeRequest),
    (b, b_request): (&Server, crate::load::MakeRequest),
) -> anyhow::Result<(Vec<Summary>, Vec<Summary>)> {
    let once = Args {
        runs: 1,
        ..args.clone()
    };
    let (mut a_runs, mut b_runs) = (Vec::new(), Vec::new());
    for run in 0..args.runs {
        let a_run = || measure(&once, a, connections, a_request.clone());
        let b_run = || measure(&once, b, connections, b_request.clone());
        if run % 2 == 0 {
            a_runs.push(a_run()?);
            b_runs.push(b_run()?);
        } else {
            b_runs.push(b_run()?);
            a_runs.push(a_run()?);
        }
    }
    Ok((a_runs, b_runs))
}

/// The medians of `runs`, as the other sections give them (`describe`).
pub(crate) fn summary_of(runs: &[Summary]) -> Summary {
    let column = |f: fn(&Summary) -> f64| median(runs.iter().map(f).collect());
    let rates: Vec<f64> = runs.iter().map(|s| s.rps).collect();
    Summary {
        rps: column(|s| s.rps),
        rps_range: (
            rates.iter().copied().fold(f64::INFINITY, f64::min),
            rates.iter().copied().fold(0.0, f64::max),
        ),
        p50_ms: column(|s| s.p50_ms),
        p99_ms: column(|s| s.p99_ms),
        server_cpu_us: column(|s| s.server_cpu_us),
        client_cpu_us: column(|s| s.client_cpu_us),
        idle_percent: column(|s| s.idle_percent),
        resumed_percent: None,
        errors: runs.iter().map(|s| s.errors).sum(),
        first_error: runs.iter().find_map(|s| s.first_error.clone()),
    }
}

/// Every run's server CPU per request, e.g. `41.0, 43.2, 40.8 µs`.
pub(crate) fn cpu_per_run(runs: &[Summary]) -> String {
    let values: Vec<String> = runs
        .iter()
        .map(|s| format!("{:.1}", s.server_cpu_us))
        .collect();
    format!("{} µs", values.join(", "))
}

fn rows(report: &mut Report, what: &str, off_runs: &[Summary], on_runs: &[Summary]) {
    let (off, on) = (summary_of(off_runs), summary_of(on_runs));
    report.row(
        format!("{what}: metrics off"),
        format!("{}; CPU per run: {}", describe(&off), cpu_per_run(off_runs)),
        "-".into(),
        "100 %".into(),
    );
    // The difference run by run (each "on" run against the "off" run just before it), so the
    // spread says how much of the gap is noise.
    let gaps: Vec<f64> = off_runs
        .iter()
        .zip(on_runs)
        .map(|(off, on)| on.server_cpu_us - off.server_cpu_us)
        .collect();
    let gap_text: Vec<String> = gaps.iter().map(|g| format!("{g:+.1}")).collect();
    report.row(
        format!("{what}: metrics on"),
        format!(
            "{}; CPU per run: {}; on − off per run: {} µs (median {:+.1})",
            describe(&on),
            cpu_per_run(on_runs),
            gap_text.join(", "),
            median(gaps.clone())
        ),
        format!("off: {:.1} µs/req, {:.0} req/s", off.server_cpu_us, off.rps),
        format!(
            "CPU {}, rate {}",
            crate::percent(on.server_cpu_us, off.server_cpu_us),
            crate::percent(on.rps, off.rps)
        ),
    );
}

/// The value of one series line of the `/metrics` answer at `addr`.
async fn scrape_value(addr: std::net::SocketAddr, series: &str) -> anyhow::Result<f64> {
    let text = http()
        .get(format!("http://{addr}/metrics"))
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    let value = text
        .lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .with_context(|| format!("no {series} in the scrape"))?;
    Ok(value)
}
