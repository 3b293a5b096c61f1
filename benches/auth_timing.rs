//! Timing of failed client authentication for a known versus an unknown client id, over real
//! HTTP on loopback (SQLite). Prints medians and percentiles; run with
//! `cargo bench --bench auth_timing` (optionally `-- ROUNDS`). The brute-force limits are lifted
//! for the measurement, which otherwise refuses such a stream of failures after a few attempts.

use std::time::{Duration, Instant};

use auth_server::admin::{self, ClientSpec};
use auth_server::{Application, Settings};
use shared_claims::{PartnerId, ScopeSet};
use shared_limits::LockoutPolicy;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let rounds: usize = std::env::args()
        .filter_map(|a| a.parse().ok())
        .next()
        .unwrap_or(2000);
    let dir = tempfile::tempdir()?;
    let mut settings = Settings::with_defaults(
        format!("sqlite://{}", dir.path().join("auth.db").display()),
        dir.path().join("master.key"),
    );
    settings.bind = "127.0.0.1:0".parse()?;
    settings.lockout = LockoutPolicy {
        per_source_burst: u32::MAX / 2,
        per_source_refill: Duration::from_millis(1),
        per_client_burst: u32::MAX / 2,
        per_client_refill: Duration::from_millis(1),
    };
    let app = Application::build(settings).await?;
    let url = format!("http://{}/oauth2/token", app.local_addr());
    let state = app.state().clone();
    tokio::spawn(app.run_until(std::future::pending()));
    let spec = ClientSpec {
        name: "timing".into(),
        partner_id: PartnerId::parse("acme")?,
        scopes: ScopeSet::parse("orders:read").map_err(|e| anyhow::anyhow!("{e}"))?,
        audiences: vec!["partner-api".into()],
        access_token_ttl: None,
        refresh_enabled: false,
        introspect_allowed: false,
    };
    let (known, _) = admin::create_client(&state.db, spec).await?;
    let unknown = "cl_00000000000000000000";
    let http = edge::http_client(Duration::from_secs(10), Duration::from_secs(30)).build()?;
    let attempt = |id: String| {
        let request = http
            .post(&url)
            .basic_auth(id, Some("pcs_wrong-secret-for-timing"))
            .form(&[("grant_type", "client_credentials")]);
        async move {
            let began = Instant::now();
            let status = request.send().await.expect("request").status();
            assert_eq!(status, 401);
            began.elapsed()
        }
    };
    // Warm up connections, caches and the allocator.
    for _ in 0..200 {
        attempt(known.client_id.to_string()).await;
        attempt(unknown.to_owned()).await;
    }
    let (mut k, mut u) = (Vec::with_capacity(rounds), Vec::with_capacity(rounds));
    // Interleaved, so drift on this shared machine affects both series alike.
    for _ in 0..rounds {
        k.push(attempt(known.client_id.to_string()).await);
        u.push(attempt(unknown.to_owned()).await);
    }
    k.sort();
    u.sort();
    println!("failed client authentication over HTTP, {rounds} rounds each, interleaved (µs)");
    println!(
        "{:<16} {:>8} {:>8} {:>8} {:>8}",
        "client id", "p10", "median", "p90", "p99"
    );
    for (name, series) in [("known", &k), ("unknown", &u)] {
        println!(
            "{:<16} {:>8} {:>8} {:>8} {:>8}",
            name,
            percentile(series, 0.10).as_micros(),
            percentile(series, 0.50).as_micros(),
            percentile(series, 0.90).as_micros(),
            percentile(series, 0.99).as_micros()
        );
    }
    let (mk, mu) = (
        percentile(&k, 0.5).as_secs_f64(),
        percentile(&u, 0.5).as_secs_f64(),
    );
    println!(
        "median difference: {:.1} µs ({:+.1} %)",
        (mu - mk) * 1e6,
        (mu - mk) / mk * 100.0
    );
    Ok(())
}
