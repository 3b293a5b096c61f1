//! A closed-loop HTTP/1.1 load generator on hyper: `connections` keep-alive connections, each
//! sending its next request as soon as the previous answer is read, for a fixed time after a
//! warm-up. It runs on its own single-threaded runtime (one core), so on a 2-core machine the
//! server under test gets the other.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Builds request number `n` of connection `connection`.
pub type MakeRequest = Arc<dyn Fn(usize, u64) -> Request<Full<Bytes>> + Send + Sync>;

#[derive(Debug, Clone)]
pub struct LoadResult {
    pub requests: u64,
    pub errors: u64,
    /// The status of the first non-2xx answer, if any, for the report.
    pub first_error: Option<String>,
    pub seconds: f64,
    /// Latency histogram in microseconds.
    pub latency: Histogram<u64>,
}

impl LoadResult {
    pub fn rps(&self) -> f64 {
        self.requests as f64 / self.seconds
    }

    pub fn p50_ms(&self) -> f64 {
        self.latency.value_at_quantile(0.50) as f64 / 1000.0
    }

    pub fn p99_ms(&self) -> f64 {
        self.latency.value_at_quantile(0.99) as f64 / 1000.0
    }
}

/// Drives `addr` with `connections` connections for `warmup` (not recorded) plus `duration`.
pub fn run(
    addr: SocketAddr,
    connections: usize,
    warmup: Duration,
    duration: Duration,
    make: MakeRequest,
) -> anyhow::Result<LoadResult> {
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(drive(addr, connections, warmup, duration, make))
    })
    .join()
    .map_err(|_| anyhow::anyhow!("load generator thread panicked"))?
}

struct ConnectionResult {
    requests: u64,
    errors: u64,
    first_error: Option<String>,
    latency: Histogram<u64>,
}

async fn drive(
    addr: SocketAddr,
    connections: usize,
    warmup: Duration,
    duration: Duration,
    make: MakeRequest,
) -> anyhow::Result<LoadResult> {
    let start = Instant::now();
    let record_from = start + warmup;
    let end = record_from + duration;
    let mut tasks = Vec::new();
    for connection in 0..connections {
        let make = make.clone();
        tasks.push(tokio::spawn(async move {
            one_connection(addr, connection, record_from, end, make).await
        }));
    }
    let mut total = LoadResult {
        requests: 0,
        errors: 0,
        first_error: None,
        seconds: duration.as_secs_f64(),
        latency: new_histogram(),
    };
    for task in tasks {
        let result = task.await??;
        total.requests += result.requests;
        total.errors += result.errors;
        if total.first_error.is_none() {
            total.first_error = result.first_error;
        }
        total.latency.add(&result.latency)?;
    }
    Ok(total)
}

fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

async fn connect(
    addr: SocketAddr,
) -> anyhow::Result<hyper::client::conn::http1::SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

async fn one_connection(
    addr: SocketAddr,
    connection: usize,
    record_from: Instant,
    end: Instant,
    make: MakeRequest,
) -> anyhow::Result<ConnectionResult> {
    let mut result = ConnectionResult {
        requests: 0,
        errors: 0,
        first_error: None,
        latency: new_histogram(),
    };
    let mut sender = connect(addr).await?;
    let mut n = 0u64;
    loop {
        let began = Instant::now();
        if began >= end {
            break;
        }
        if sender.ready().await.is_err() {
            // The server closed the connection (after an error answer, say): open another.
            sender = connect(addr).await?;
        }
        let request = make(connection, n);
        n += 1;
        let outcome = match sender.send_request(request).await {
            Ok(response) => {
                let status = response.status();
                let body = response.into_body().collect().await;
                match body {
                    Ok(_) if status.is_success() => Ok(()),
                    Ok(body) => Err(format!(
                        "{status}: {}",
                        String::from_utf8_lossy(&body.to_bytes())
                    )),
                    Err(err) => Err(format!("body: {err}")),
                }
            }
            Err(err) => Err(format!("request: {err}")),
        };
        let finished = Instant::now();
        if began < record_from || finished > end {
            continue;
        }
        result.requests += 1;
        if let Err(err) = outcome {
            result.errors += 1;
            result.first_error.get_or_insert(err);
        }
        let micros = finished.duration_since(began).as_micros().max(1) as u64;
        result.latency.saturating_record(micros);
    }
    Ok(result)
}
