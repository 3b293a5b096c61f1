//! Section 9: API keys beside tokens at the partner API, in one run. One token service (SQLite)
//! holds 40 partners, each with an `api_key` client and a secret client, and the partner API's
//! introspection client. Two partner APIs run on the same token service:
//!
//! - keys on (`RESOURCE_API_KEYS=true`, `RESOURCE_API_KEY_CACHE` 30 s) with the verified-token
//!   cache (the default 10,000 entries): `GET /v1/me` with the 40 keys in `X-API-Key` (each
//!   remembered after its first request), and with the 40 partners' tokens (cached
//!   verification);
//! - the verified-token cache off (`RESOURCE_TOKEN_CACHE_SIZE=0`): the same 40 tokens, each
//!   request verified in full (signature and claims).
//!
//! Every introspection call goes through a counting proxy in the bench process. After the load
//! rows, one connection sends the 40 keys round-robin for 61 s at about 40 requests per second:
//! the calls the instance made in that minute are what one warm instance costs the token
//! service per minute with 40 partners (the cache time bounds it at 2 × 40 = 80).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use http_body_util::Full;
use hyper::Request;
use hyper::header::{AUTHORIZATION, HOST};

use crate::load::MakeRequest;
use crate::servers::{cli, free_addr, http};
use crate::{Args, Auth, Report, describe, measure, percent, start_api, start_auth};

/// Partners in the run, each with a key and a secret client.
const PARTNERS: usize = 40;
/// The partner API's `RESOURCE_API_KEY_CACHE` in the run (its default).
const KEY_CACHE_SECS: u64 = 30;

pub async fn run(args: &Args, report: &mut Report, dir: &Path) -> anyhow::Result<()> {
    let dir = dir.join("api-keys");
    std::fs::create_dir_all(&dir)?;
    let auth = start_auth(&dir, &format!("sqlite://{}", dir.join("auth.db").display())).await?;
    let outcome = measure_all(args, report, &dir, &auth).await;
    auth.server.stop();
    outcome
}

async fn measure_all(
    args: &Args,
    report: &mut Report,
    dir: &Path,
    auth: &Auth,
) -> anyhow::Result<()> {
    report.section(&format!(
        "9. API keys and tokens at the partner API (`GET /v1/me`, {PARTNERS} partners, 32 conns; baseline: a remembered key)"
    ));
    let introspector = create(
        &auth.env,
        "partner api",
        "platform",
        "introspect",
        &["--introspect"],
        "client_secret",
    )?;
    let mut keys = Vec::with_capacity(PARTNERS);
    let mut tokens = Vec::with_capacity(PARTNERS);
    for n in 0..PARTNERS {
        let partner = format!("partner-{n:02}");
        let (_, key) = create(
            &auth.env,
            "key",
            &partner,
            "orders:read",
            &["--auth-method", "api_key"],
            "api_key",
        )?;
        keys.push(key);
        let client = create(
            &auth.env,
            "token",
            &partner,
            "orders:read",
            &["--no-refresh"],
            "client_secret",
        )?;
        tokens.push(crate::fetch_token(auth, &client).await?);
    }
    let (proxy, calls) = introspection_proxy(auth.server.addr).await?;
    let (jwks, _) = crate::jwks_proxy(auth.server.addr).await?;
    let with_keys = [
        ("RESOURCE_API_KEYS", "true".to_owned()),
        ("RESOURCE_API_KEY_CACHE", KEY_CACHE_SECS.to_string()),
        (
            "RESOURCE_INTROSPECTION_URL",
            format!("http://{proxy}/oauth2/introspect"),
        ),
        ("RESOURCE_INTROSPECTION_CLIENT_ID", introspector.0.clone()),
        (
            "RESOURCE_INTROSPECTION_CLIENT_SECRET",
            introspector.1.clone(),
        ),
    ];
    let keys_dir = dir.join("keys");
    std::fs::create_dir_all(&keys_dir)?;
    let mut api = start_api(&keys_dir, auth, jwks, free_addr()?, &with_keys)?;
    api.wait_ok("/readyz", Duration::from_secs(60)).await?;
    let keys = Arc::new(keys);
    let tokens = Arc::new(tokens);

    let before = calls.load(Ordering::Relaxed);
    let by_key = measure(args, &api, 32, key_request(api.addr, keys.clone()))?;
    let load_calls = calls.load(Ordering::Relaxed) - before;
    let cached = measure(args, &api, 32, bearer_request(api.addr, tokens.clone()))?;
    report.row(
        "API key (`X-API-Key`), remembered".into(),
        describe(&by_key),
        "-".into(),
        "100 %".into(),
    );
    report.row(
        "token, cached verification (`RESOURCE_TOKEN_CACHE_SIZE` 10,000)".into(),
        describe(&cached),
        format!("key: {:.1} µs/req", by_key.server_cpu_us),
        percent(cached.server_cpu_us, by_key.server_cpu_us) + " CPU",
    );
    let full_dir = dir.join("full");
    std::fs::create_dir_all(&full_dir)?;
    let mut full_api = start_api(
        &full_dir,
        auth,
        jwks,
        free_addr()?,
        &[("RESOURCE_TOKEN_CACHE_SIZE", "0".to_owned())],
    )?;
    full_api.wait_ok("/readyz", Duration::from_secs(60)).await?;
    let full = measure(args, &full_api, 32, bearer_request(full_api.addr, tokens))?;
    full_api.stop();
    report.row(
        "token, full verification every request (`RESOURCE_TOKEN_CACHE_SIZE=0`)".into(),
        describe(&full),
        format!("key: {:.1} µs/req", by_key.server_cpu_us),
        percent(full.server_cpu_us, by_key.server_cpu_us) + " CPU",
    );
    let runs_seconds = args.runs as f64 * (1.0 + args.seconds);
    report.row(
        format!(
            "introspection calls during the key rows ({} runs, {runs_seconds:.0} s, {PARTNERS} keys)",
            args.runs
        ),
        format!("{load_calls}"),
        format!("{PARTNERS} first asks"),
        "-".into(),
    );

    // One warm instance over a minute: the calls it makes for 40 partners' keys.
    let minute = Duration::from_secs(61);
    let before = calls.load(Ordering::Relaxed);
    let sent = trickle(api.addr, &keys, minute).await?;
    let per_minute = (calls.load(Ordering::Relaxed) - before) as f64 * 60.0 / 61.0;
    report.row(
        format!(
            "introspection calls per instance per minute, {PARTNERS} partners, cache {KEY_CACHE_SECS} s ({sent} requests over 61 s)"
        ),
        format!("{per_minute:.0}"),
        format!(
            "bound: {PARTNERS} × 60 / {KEY_CACHE_SECS} = {}",
            PARTNERS as u64 * 60 / KEY_CACHE_SECS
        ),
        "-".into(),
    );
    api.stop();
    Ok(())
}

/// `auth-server client create … --json`: the client id and the credential named `field`.
fn create(
    env: &std::collections::HashMap<String, String>,
    name: &str,
    partner: &str,
    scopes: &str,
    extra: &[&str],
    field: &str,
) -> anyhow::Result<(String, String)> {
    let mut argv = vec![
        "client",
        "create",
        "--name",
        name,
        "--partner",
        partner,
        "--scopes",
        scopes,
    ];
    argv.extend_from_slice(extra);
    let doc = cli(env, &argv)?;
    Ok((
        doc["client_id"].as_str().context("client_id")?.to_owned(),
        doc[field].as_str().context("the credential")?.to_owned(),
    ))
}

/// `GET /v1/me` with one of `keys` in `X-API-Key`, spread over the connections.
fn key_request(addr: SocketAddr, keys: Arc<Vec<String>>) -> MakeRequest {
    let host = addr.to_string();
    Arc::new(move |connection, n| {
        let index = (connection as u64 * 7919 + n) as usize % keys.len();
        Request::get("/v1/me")
            .header(HOST, &host)
            .header("x-api-key", &keys[index])
            .body(Full::new(Bytes::new()))
            .expect("a valid request")
    })
}

/// `GET /v1/me` with one of `tokens` as a bearer token, spread over the connections.
fn bearer_request(addr: SocketAddr, tokens: Arc<Vec<String>>) -> MakeRequest {
    let host = addr.to_string();
    let bearer: Arc<Vec<String>> = Arc::new(tokens.iter().map(|t| format!("Bearer {t}")).collect());
    Arc::new(move |connection, n| {
        let index = (connection as u64 * 7919 + n) as usize % bearer.len();
        Request::get("/v1/me")
            .header(HOST, &host)
            .header(AUTHORIZATION, &bearer[index])
            .body(Full::new(Bytes::new()))
            .expect("a valid request")
    })
}

/// Sends the keys round-robin, one request about every 25 ms, for `how_long`; every answer
/// must be 200. Returns the number of requests.
async fn trickle(addr: SocketAddr, keys: &[String], how_long: Duration) -> anyhow::Result<usize> {
    let began = Instant::now();
    let mut ticker = tokio::time::interval(Duration::from_millis(25));
    let mut sent = 0;
    while began.elapsed() < how_long {
        ticker.tick().await;
        let status = http()
            .get(format!("http://{addr}/v1/me"))
            .header("x-api-key", &keys[sent % keys.len()])
            .send()
            .await?
            .status();
        anyhow::ensure!(status.is_success(), "a remembered key answered {status}");
        sent += 1;
    }
    Ok(sent)
}

/// Counts introspection calls on their way from the partner API to the token service,
/// forwarding each (its `Authorization` and form body) and its answer unchanged.
async fn introspection_proxy(upstream: SocketAddr) -> anyhow::Result<(SocketAddr, Arc<AtomicU64>)> {
    let count = Arc::new(AtomicU64::new(0));
    let counter = count.clone();
    let app = axum::Router::new().route(
        "/oauth2/introspect",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let counter = counter.clone();
                async move {
                    counter.fetch_add(1, Ordering::Relaxed);
                    let mut request = http()
                        .post(format!("http://{upstream}/oauth2/introspect"))
                        .body(body);
                    for name in [
                        axum::http::header::AUTHORIZATION,
                        axum::http::header::CONTENT_TYPE,
                    ] {
                        if let Some(value) = headers.get(&name) {
                            request = request.header(name, value);
                        }
                    }
                    let response = request
                        .send()
                        .await
                        .map_err(|_| axum::http::StatusCode::BAD_GATEWAY)?;
                    let status = response.status();
                    let body = response
                        .bytes()
                        .await
                        .map_err(|_| axum::http::StatusCode::BAD_GATEWAY)?;
                    Ok::<_, axum::http::StatusCode>((
                        status,
                        [(
                            axum::http::header::CONTENT_TYPE,
                            axum::http::HeaderValue::from_static("application/json"),
                        )],
                        body,
                    ))
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((addr, count))
}
