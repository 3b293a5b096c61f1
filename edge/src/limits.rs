//! What one address may take of a server, so that a flood from a few addresses cannot crowd out
//! everyone else: a bound on open TCP connections per peer (at accept, before TLS or HTTP) and a
//! bound on requests in flight per client address (after `X-Forwarded-For` from trusted proxies
//! is resolved, so clients behind the proxy are told apart).

use std::collections::HashMap;
use std::future::{Future, Ready};
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::Response;
use axum_server::accept::Accept;
use futures::future::Either;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

use crate::ClientIp;
use crate::problem::with_retry_after;
use crate::refusal::Refusal;

/// Counts held per address; a [`Slot`] gives its count back when dropped.
#[derive(Clone, Default)]
struct Counts(Arc<Mutex<HashMap<IpAddr, usize>>>);

impl Counts {
    fn acquire(&self, ip: IpAddr, max: usize) -> Option<Slot> {
        let mut counts = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let count = counts.entry(ip).or_insert(0);
        if *count >= max {
            return None;
        }
        *count += 1;
        Some(Slot {
            counts: self.clone(),
            ip,
        })
    }
}

struct Slot {
    counts: Counts,
    ip: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self
            .counts
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(count) = counts.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

/// An axum-server acceptor that refuses a connection when its peer already holds `max` open
/// connections (the connection is closed at once), sets `TCP_NODELAY` on the others, and hands
/// them to `inner` (plain or TLS). Trusted proxies are exempt: every client behind them shares
/// their address, and [`PerClientRequestLimitLayer`] bounds those clients one by one instead.
#[derive(Clone)]
pub struct PeerConnectionLimit<A> {
    inner: A,
    max: usize,
    exempt: Arc<[IpAddr]>,
    counts: Counts,
}

impl<A> PeerConnectionLimit<A> {
    pub fn new(inner: A, max: usize, exempt: &[IpAddr]) -> PeerConnectionLimit<A> {
        PeerConnectionLimit {
            inner,
            max,
            exempt: exempt.into(),
            counts: Counts::default(),
        }
    }
}

impl<A, S> Accept<TcpStream, S> for PeerConnectionLimit<A>
where
    A: Accept<Counted, S>,
    A::Future: Send + 'static,
{
    type Stream = A::Stream;
    type Service = A::Service;
    type Future = Either<Ready<io::Result<(A::Stream, A::Service)>>, A::Future>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        // Small responses must not wait on Nagle's algorithm.
        let _ = stream.set_nodelay(true);
        let slot = match stream.peer_addr() {
            Ok(peer) if self.exempt.contains(&peer.ip()) => None,
            Ok(peer) => match self.counts.acquire(peer.ip(), self.max) {
                Some(slot) => Some(slot),
                None => {
                    tracing::debug!(peer = %peer.ip(), "too many connections from one address; closed");
                    return Either::Left(std::future::ready(Err(io::Error::other(
                        "too many connections from one address",
                    ))));
                }
            },
            Err(error) => return Either::Left(std::future::ready(Err(error))),
        };
        Either::Right(self.inner.accept(
            Counted {
                stream: Some(stream),
                slot,
            },
            service,
        ))
    }
}

/// How long a closed connection may go on draining what its client still sends (see
/// [`Counted`]).
const LINGER: Duration = Duration::from_secs(2);

/// A connection that holds its peer's connection slot until it is dropped.
///
/// When the server closes a connection whose client is still sending (a head over hyper's
/// buffer answered 431, a body over the limit answered 413 without being read), closing the
/// socket outright makes the kernel answer the client's unread or later bytes with a reset,
/// which can reach the client before it has read the answer: it sees "connection reset" or
/// "broken pipe" instead of the 431 or 413. So a connection the server drops lingers, as web
/// servers' "lingering close" does: its sending side is shut (the answer is already written),
/// and what the client goes on sending is read and thrown away until it closes, for at most
/// [`LINGER`]. Whether bytes are still on their way cannot be told from an empty queue, so
/// only a connection the client has closed itself (or one already broken) closes at once. The
/// peer's slot is held meanwhile, so lingering connections count against its bound; a client
/// that closes when it sees the server's end of file (a finished exchange, a timed-out request
/// answered 408) ends the linger at once.
pub struct Counted {
    stream: Option<TcpStream>,
    slot: Option<Slot>,
}

impl Counted {
    fn io(self: Pin<&mut Self>) -> Pin<&mut TcpStream> {
        Pin::new(
            self.get_mut()
                .stream
                .as_mut()
                .expect("the stream is only taken when the connection is dropped"),
        )
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        let Some(stream) = self.stream.take() else {
            return;
        };
        // Ok(0) is the client's own close, and an error a connection already gone: nothing
        // will come. Anything else lingers, an empty queue (WouldBlock) too: hyper may have
        // read every byte that had arrived of a head it refuses, with the client's next bytes
        // still on their way.
        let mut probe = [0u8; 1];
        match stream.try_read(&mut probe) {
            Ok(0) => return,
            Err(error) if error.kind() != io::ErrorKind::WouldBlock => return,
            _ => {}
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(linger(stream, self.slot.take()));
        }
    }
}

/// Shuts the sending side of `stream` and discards what arrives until the client closes or
/// [`LINGER`] has passed; `_slot` is given back at the end.
async fn linger(mut stream: TcpStream, _slot: Option<Slot>) {
    let _ = stream.shutdown().await;
    let drain = async {
        let mut sink = [0u8; 8 * 1024];
        while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
    };
    let _ = tokio::time::timeout(LINGER, drain).await;
}

impl AsyncRead for Counted {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.io().poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.io().poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.io().poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.io().poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.io().poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream
            .as_ref()
            .is_some_and(TcpStream::is_write_vectored)
    }
}

/// Answers 503 with `Retry-After` at once when the request's client address (see
/// [`ClientIp`](crate::ClientIp)) already has `max` requests in flight. Must sit inside
/// [`ClientIdentityLayer`](crate::ClientIdentityLayer); a request without a client address is not limited.
#[derive(Clone)]
pub struct PerClientRequestLimitLayer {
    max: usize,
    counts: Counts,
}

impl PerClientRequestLimitLayer {
    pub fn new(max: usize) -> PerClientRequestLimitLayer {
        PerClientRequestLimitLayer {
            max,
            counts: Counts::default(),
        }
    }
}

impl<S> tower::Layer<S> for PerClientRequestLimitLayer {
    type Service = PerClientRequestLimit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        PerClientRequestLimit {
            inner,
            max: self.max,
            counts: self.counts.clone(),
        }
    }
}

#[derive(Clone)]
pub struct PerClientRequestLimit<S> {
    inner: S,
    max: usize,
    counts: Counts,
}

impl<S> tower::Service<Request> for PerClientRequestLimit<S>
where
    S: tower::Service<Request, Response = Response>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let slot = match request.extensions().get::<ClientIp>() {
            Some(ClientIp(ip)) => match self.counts.acquire(*ip, self.max) {
                Some(slot) => Some(slot),
                None => return Box::pin(std::future::ready(Ok(too_many_in_flight()))),
            },
            None => None,
        };
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await;
            drop(slot);
            response
        })
    }
}

fn too_many_in_flight() -> Response {
    let busy = Refusal::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "too many requests in flight from this address",
    );
    with_retry_after(busy.into_response(), Duration::from_secs(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_counted_per_address_and_given_back_on_drop() {
        let counts = Counts::default();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let first = counts.acquire(a, 2).unwrap();
        let _second = counts.acquire(a, 2).unwrap();
        assert!(
            counts.acquire(a, 2).is_none(),
            "a third slot for one address"
        );
        assert!(
            counts.acquire(b, 2).is_some(),
            "another address is not affected"
        );
        drop(first);
        assert!(
            counts.acquire(a, 2).is_some(),
            "a dropped slot is given back"
        );
        drop(_second);
        assert!(
            counts.0.lock().unwrap().is_empty(),
            "no entry outlives its slots"
        );
    }
}
