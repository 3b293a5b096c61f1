//! Section 10 (`--only compare --compare-with DIR`): the token endpoint of this build beside
//! another build's (DIR holds that build's release `auth-server`, e.g.
//! `../before/target/release`). Each token service runs on its own SQLite file and both are put
//! under the same load in turn, run by run, so the machine's drift falls on both alike; each
//! pair's ratio of server CPU per token is given, and their median. On a machine whose speed
//! drifts by ±15 % from one minute to the next, that ratio is what can be compared, not the
//! figures of runs minutes apart.

use std::path::Path;

use anyhow::Context;

use crate::metrics::{cpu_per_run, interleaved, summary_of};
use crate::{Args, Report, Summary, describe, median, start_auth_of, token_request, use_algorithm};

pub async fn run(args: &Args, report: &mut Report, dir: &Path) -> anyhow::Result<()> {
    let other_dir = args
        .compare_with
        .as_deref()
        .context("--only compare needs --compare-with DIR (another build's target/release)")?;
    let other_program = other_dir.join("auth-server");
    anyhow::ensure!(
        other_program.exists(),
        "{} is missing: build that tree with `cargo build --release -p auth-server`",
        other_program.display()
    );
    let dir = dir.join("compare");
    let (this_dir, other_data) = (dir.join("this"), dir.join("other"));
    std::fs::create_dir_all(&this_dir)?;
    std::fs::create_dir_all(&other_data)?;
    let sqlite = |dir: &Path| format!("sqlite://{}", dir.join("auth.db").display());
    let this = start_auth_of(
        &crate::servers::binary("auth-server")?,
        &this_dir,
        &sqlite(&this_dir),
        &[],
    )
    .await?;
    let other = start_auth_of(&other_program, &other_data, &sqlite(&other_data), &[]).await?;
    let outcome = async {
        use_algorithm(&this, "ES256").await?;
        use_algorithm(&other, "ES256").await?;
        report.section(&format!(
            "10. Token endpoint, SQLite, ES256, no refresh token: this build against {} \
             (runs interleaved; baseline: the other build)",
            other_dir.display()
        ));
        for connections in [32, 1] {
            let (other_runs, this_runs) = interleaved(
                args,
                connections,
                (
                    &other.server,
                    token_request(other.server.addr, &other.plain),
                ),
                (&this.server, token_request(this.server.addr, &this.plain)),
            )?;
            rows(report, connections, &other_runs, &this_runs);
        }
        anyhow::Ok(())
    }
    .await;
    this.server.stop();
    other.server.stop();
    outcome.context("10. builds compared")
}

/// Every run's p99, e.g. `4.1, 3.9 ms`.
fn p99_per_run(runs: &[Summary]) -> String {
    let values: Vec<String> = runs.iter().map(|s| format!("{:.2}", s.p99_ms)).collect();
    format!("{} ms", values.join(", "))
}

fn rows(report: &mut Report, connections: usize, other_runs: &[Summary], this_runs: &[Summary]) {
    let conns = format!(
        "{connections} conn{}",
        if connections == 1 { "" } else { "s" }
    );
    let (other, this) = (summary_of(other_runs), summary_of(this_runs));
    report.row(
        format!("other build, {conns}"),
        format!(
            "{}; CPU per run: {}; p99 per run: {}",
            describe(&other),
            cpu_per_run(other_runs),
            p99_per_run(other_runs)
        ),
        "-".into(),
        "100 %".into(),
    );
    // Each pair's ratio: the spread of the ratios says how much of the gap is noise.
    let ratios: Vec<f64> = other_runs
        .iter()
        .zip(this_runs)
        .map(|(other, this)| 100.0 * this.server_cpu_us / other.server_cpu_us)
        .collect();
    let ratio_text: Vec<String> = ratios.iter().map(|r| format!("{r:.0}")).collect();
    report.row(
        format!("this build, {conns}"),
        format!(
            "{}; CPU per run: {}; p99 per run: {}; CPU this/other per pair: {} % (median {:.0} %)",
            describe(&this),
            cpu_per_run(this_runs),
            p99_per_run(this_runs),
            ratio_text.join(", "),
            median(ratios.clone())
        ),
        format!(
            "other: {:.1} µs/req, p99 {:.2} ms",
            other.server_cpu_us, other.p99_ms
        ),
        format!("CPU {:.0} % (median of pairs)", median(ratios)),
    );
}
