//! Who a request comes from, as far as the network can tell: the client's address
//! ([`ClientIp`]) and the client certificate it proved it holds ([`ClientCertificate`]), each
//! believed from a proxy only when the proxy is a trusted one. Set on every request by
//! [`ClientIdentityLayer`], in the envelope, so every entry point reads them the same way.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::{ConnectInfo, Request};
use axum::http::StatusCode;
use axum::response::Response;
use futures::future::{Either, Ready, ready};
use rustls::pki_types::CertificateDer;

use crate::mtls::{ClientCas, ClientCertificate, PeerCertificates, header};
use crate::refusal::Refusal;

/// The client's address: the peer, or, when the peer is a trusted proxy, the nearest address in
/// `X-Forwarded-For` that is not itself a trusted proxy. Set on every request by
/// [`ClientIdentityLayer`] (on Lambda, from the event).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

/// Walks `X-Forwarded-For` from the right: entries added by our own proxies are skipped, the
/// first other one is the client. Anything unparsable stops the walk (that part was written by
/// whoever the client is, and proves nothing).
pub fn client_ip(peer: IpAddr, forwarded_for: Option<&str>, trusted: &[IpAddr]) -> IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    let Some(header) = forwarded_for else {
        return peer;
    };
    let mut client = peer;
    for entry in header.rsplit(',') {
        match entry.trim().parse::<IpAddr>() {
            Ok(ip) if trusted.contains(&ip) => client = ip,
            Ok(ip) => return ip,
            Err(_) => return client,
        }
    }
    client
}

/// Inserts [`ClientIp`] and, when the client presented one, [`ClientCertificate`] into each
/// request's extensions.
///
/// The certificate comes from exactly one place:
///
/// - when the TCP peer is a trusted proxy, from its RFC 9440 `Client-Cert` and
///   `Client-Cert-Chain` fields (a trusted proxy terminates TLS, so a certificate on the
///   connection itself would be the proxy's own, not the client's); malformed fields give no
///   certificate;
/// - otherwise from the chain the connection's TLS handshake carried, or that the Lambda event
///   reported (a request without a TCP peer); `Client-Cert` fields are then ignored, since anyone
///   can send them.
///
/// A trusted proxy's request with two `Client-Cert` fields is ambiguous (which one did the
/// client prove it holds?), and is refused with 400 rather than read either way.
#[derive(Clone)]
pub struct ClientIdentityLayer {
    trusted: Arc<[IpAddr]>,
    cas: Option<ClientCas>,
}

impl ClientIdentityLayer {
    /// `trusted`: the proxies whose `X-Forwarded-For` and `Client-Cert` are believed; `cas`: the
    /// roots that [`ClientCertificate::issued_by_trusted_ca`] verifies against.
    pub fn new(trusted: &[IpAddr], cas: Option<ClientCas>) -> ClientIdentityLayer {
        ClientIdentityLayer {
            trusted: trusted.into(),
            cas,
        }
    }
}

impl<S> tower::Layer<S> for ClientIdentityLayer {
    type Service = ClientIdentity<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ClientIdentity {
            inner,
            layer: self.clone(),
        }
    }
}

#[derive(Clone)]
pub struct ClientIdentity<S> {
    inner: S,
    layer: ClientIdentityLayer,
}

impl<S: tower::Service<Request, Response = Response>> tower::Service<Request>
    for ClientIdentity<S>
{
    type Response = Response;
    type Error = S::Error;
    type Future = Either<Ready<Result<Response, S::Error>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        let peer = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(peer)| peer.ip());
        if let Some(peer) = peer {
            let forwarded = request
                .headers()
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok());
            let ip = client_ip(peer, forwarded, &self.layer.trusted);
            request.extensions_mut().insert(ClientIp(ip));
        }
        let from_proxy = peer.is_some_and(|peer| self.layer.trusted.contains(&peer));
        if from_proxy && header::repeated_client_cert(request.headers()) {
            let refusal = Refusal::new(
                StatusCode::BAD_REQUEST,
                "more than one Client-Cert field: send the client certificate once",
            );
            return Either::Left(ready(Ok(refusal.into_response())));
        }
        if let Some(certificate) = self.layer.certificate(&request, from_proxy) {
            request.extensions_mut().insert(certificate);
        }
        Either::Right(self.inner.call(request))
    }
}

impl ClientIdentityLayer {
    fn certificate(&self, request: &Request, from_proxy: bool) -> Option<ClientCertificate> {
        let chain: Arc<[CertificateDer<'static>]> = if from_proxy {
            match header::chain_from_headers(request.headers()) {
                Ok(chain) => chain?.into(),
                Err(reason) => {
                    tracing::debug!(reason, "ignoring the Client-Cert fields of a trusted proxy");
                    return None;
                }
            }
        } else {
            // Once per connection: the CAs are the server's, the same for all its requests.
            let peer = request.extensions().get::<PeerCertificates>()?;
            return peer
                .read
                .get_or_init(|| self.read(peer.chain.clone()))
                .clone();
        };
        self.read(chain)
    }

    fn read(&self, chain: Arc<[CertificateDer<'static>]>) -> Option<ClientCertificate> {
        match ClientCertificate::from_chain(chain, self.cas.as_ref()) {
            Ok(certificate) => Some(certificate),
            Err(error) => {
                tracing::debug!(%error, "ignoring a client certificate");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let trusted = [ip("10.0.0.1"), ip("10.0.0.2")];
        assert_eq!(
            client_ip(ip("203.0.113.9"), Some("1.2.3.4"), &trusted),
            ip("203.0.113.9")
        );
        assert_eq!(
            client_ip(ip("10.0.0.1"), Some("1.2.3.4"), &trusted),
            ip("1.2.3.4")
        );
        assert_eq!(
            client_ip(ip("10.0.0.1"), Some("6.6.6.6, 1.2.3.4, 10.0.0.2"), &trusted),
            ip("1.2.3.4")
        );
        assert_eq!(
            client_ip(ip("10.0.0.1"), Some("garbage, 10.0.0.2"), &trusted),
            ip("10.0.0.2")
        );
        assert_eq!(client_ip(ip("10.0.0.1"), None, &trusted), ip("10.0.0.1"));
    }
}
