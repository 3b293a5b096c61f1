//! A closed-loop HTTP/1.1 load generator on hyper: `connections` keep-alive connections, each
//! sending its next request as soon as the previous answer is read, for a fixed time after a
//! warm-up. It runs on its own single-threaded runtime (one core), so on a 2-core machine the
//! server under test gets the other. A [`Target`] may also ask for TLS (rustls on ring, with a
//! client certificate if its configuration has one) and for a new connection per request.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{CONNECTION, HeaderValue};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// Builds request number `n` of connection `connection`.
pub type MakeRequest = Arc<dyn Fn(usize, u64) -> Request<Full<Bytes>> + Send + Sync>;

/// Where and how the load generator connects.
#[derive(Clone)]
pub struct Target {
    pub addr: SocketAddr,
    /// TLS with this client configuration (its client certificate, if it has one, included);
    /// plain TCP when `None`. The server's name is its IP address.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// A new connection for every request (TCP, and with TLS a handshake), asked to close after
    /// the answer (`Connection: close`); the handshake counts in the request's latency. Otherwise
    /// keep-alive.
    pub connection_per_request: bool,
}

impl Target {
    /// Plain HTTP, keep-alive.
    pub fn plain(addr: SocketAddr) -> Target {
        Target {
            addr,
            tls: None,
            connection_per_request: false,
        }
    }
}

#[derive(Debug, Clone)]
pub struct LoadResult {
    pub requests: u64,
    pub errors: u64,
    /// The status of the first non-2xx answer, if any, for the report.
    pub first_error: Option<String>,
    pub seconds: f64,
    /// Latency histogram in microseconds.
    pub latency: Histogram<u64>,
    /// CPU time (user + system) of the load generator's thread over the recorded part, in
    /// seconds: what the client side spent, the kernel's share of loopback included.
    pub client_cpu: f64,
    /// TLS handshakes of recorded requests that resumed a session (with a connection per
    /// request), and those that did not.
    pub resumed: u64,
    pub full_handshakes: u64,
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

/// Drives `target` with `connections` connections for `warmup` (not recorded) plus `duration`.
pub fn run(
    target: Target,
    connections: usize,
    warmup: Duration,
    duration: Duration,
    make: MakeRequest,
) -> anyhow::Result<LoadResult> {
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(drive(target, connections, warmup, duration, make))
    })
    .join()
    .map_err(|_| anyhow::anyhow!("load generator thread panicked"))?
}

struct ConnectionResult {
    requests: u64,
    errors: u64,
    first_error: Option<String>,
    latency: Histogram<u64>,
    resumed: u64,
    full_handshakes: u64,
}

async fn drive(
    target: Target,
    connections: usize,
    warmup: Duration,
    duration: Duration,
    make: MakeRequest,
) -> anyhow::Result<LoadResult> {
    let start = Instant::now();
    let record_from = start + warmup;
    let end = record_from + duration;
    // The runtime has one thread, so a task reading its CPU time reads the load generator's.
    let client_cpu = tokio::spawn(async move {
        tokio::time::sleep_until(record_from.into()).await;
        let began = crate::servers::thread_cpu_seconds()?;
        tokio::time::sleep_until(end.into()).await;
        anyhow::Ok(crate::servers::thread_cpu_seconds()? - began)
    });
    let mut tasks = Vec::new();
    for connection in 0..connections {
        let (make, target) = (make.clone(), target.clone());
        tasks.push(tokio::spawn(async move {
            one_connection(&target, connection, record_from, end, make).await
        }));
    }
    let mut total = LoadResult {
        requests: 0,
        errors: 0,
        first_error: None,
        seconds: duration.as_secs_f64(),
        latency: new_histogram(),
        client_cpu: 0.0,
        resumed: 0,
        full_handshakes: 0,
    };
    for task in tasks {
        let result = task.await??;
        total.requests += result.requests;
        total.errors += result.errors;
        if total.first_error.is_none() {
            total.first_error = result.first_error;
        }
        total.latency.add(&result.latency)?;
        total.resumed += result.resumed;
        total.full_handshakes += result.full_handshakes;
    }
    total.client_cpu = client_cpu.await??;
    Ok(total)
}

fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

/// A connection to `target`, and whether its TLS handshake resumed a session (`None` without
/// TLS).
async fn connect(target: &Target) -> anyhow::Result<(SendRequest<Full<Bytes>>, Option<bool>)> {
    let stream = TcpStream::connect(target.addr).await?;
    stream.set_nodelay(true)?;
    let Some(config) = &target.tls else {
        return Ok((http1(stream).await?, None));
    };
    let name = ServerName::IpAddress(target.addr.ip().into());
    let stream = TlsConnector::from(config.clone())
        .connect(name, stream)
        .await
        .context("TLS handshake")?;
    let resumed = stream.get_ref().1.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
    Ok((http1(stream).await?, Some(resumed)))
}

async fn http1<T>(io: T) -> anyhow::Result<SendRequest<Full<Bytes>>>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

/// One request on a connection of its own (a probe before a measurement): the status and body.
pub async fn once(
    target: &Target,
    request: Request<Full<Bytes>>,
) -> anyhow::Result<(StatusCode, Bytes)> {
    let (mut sender, _) = connect(target).await?;
    let response = sender.send_request(request).await?;
    let status = response.status();
    Ok((status, response.into_body().collect().await?.to_bytes()))
}

/// What the TLS handshake with `target` negotiated (for the report): version, cipher suite, key
/// exchange group.
pub async fn negotiated(target: &Target) -> anyhow::Result<String> {
    let config = target.tls.clone().context("a TLS target")?;
    let stream = TcpStream::connect(target.addr).await?;
    let name = ServerName::IpAddress(target.addr.ip().into());
    let stream = TlsConnector::from(config).connect(name, stream).await?;
    let connection = stream.get_ref().1;
    Ok(format!(
        "{:?}, {:?}, {:?}",
        connection.protocol_version().context("a version")?,
        connection
            .negotiated_cipher_suite()
            .context("a suite")?
            .suite(),
        connection
            .negotiated_key_exchange_group()
            .context("a group")?
            .name()
    ))
}

async fn one_connection(
    target: &Target,
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
        resumed: 0,
        full_handshakes: 0,
    };
    let mut sender: Option<SendRequest<Full<Bytes>>> = None;
    let mut n = 0u64;
    loop {
        let began = Instant::now();
        if began >= end {
            break;
        }
        let mut resumed = None;
        let live = match sender.as_mut() {
            Some(sender) if !target.connection_per_request => sender.ready().await.is_ok(),
            _ => false,
        };
        if !live {
            // The first request, a connection per request, or the server closed the connection
            // (after an error answer, say): open another.
            let (fresh, kind) = connect(target).await?;
            sender = Some(fresh);
            resumed = kind;
        }
        let open = sender.as_mut().expect("a connection");
        let mut request = make(connection, n);
        if target.connection_per_request {
            request
                .headers_mut()
                .insert(CONNECTION, HeaderValue::from_static("close"));
        }
        n += 1;
        let outcome = match open.send_request(request).await {
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
        match resumed {
            Some(true) => result.resumed += 1,
            Some(false) if target.connection_per_request => result.full_handshakes += 1,
            _ => {}
        }
        if let Err(err) = outcome {
            result.errors += 1;
            result.first_error.get_or_insert(err);
        }
        let micros = finished.duration_since(began).as_micros().max(1) as u64;
        result.latency.saturating_record(micros);
    }
    Ok(result)
}
