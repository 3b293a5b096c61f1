//! The network edge both services share: TLS serving (rustls on ring), the refusal to serve
//! plaintext on a non-loopback address unless a TLS-terminating proxy is declared, who the client
//! is as seen through those (and only those) proxies (its address and its certificate, see
//! [`mtls`]), the HTTP [`Envelope`] every request passes through, RFC 9457 [`problem`] answers
//! and the service's own format for the envelope's [`refusal`]s, bounded [`body`] reads,
//! the outgoing [`http_client`], and each service's Prometheus [`metrics`].

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::extract::Request;
use tokio::net::TcpListener;

pub mod body;
mod client;
mod envelope;
mod headers;
mod identity;
pub mod lambda;
mod limits;
pub mod logging;
pub mod metrics;
pub mod mtls;
pub mod problem;
pub mod refusal;

pub use client::http_client;
pub use envelope::Envelope;
pub use headers::{HeaderLimit, HeaderLimitLayer, HeaderLimits};
pub use identity::{ClientIdentity, ClientIdentityLayer, ClientIp, client_ip};
pub use limits::{PeerConnectionLimit, PerClientRequestLimitLayer};
pub use metrics::Metrics;
pub use mtls::{CertError, CertificateInfo, ClientCas, ClientCertificate, certificates_from_pem};
pub use refusal::{Refusal, RefusalFormat, RefusalLayer};

/// How a server meets the network.
#[derive(Debug, Clone, Default)]
pub struct Transport {
    /// PEM certificate chain and private key; TLS is served when set.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Addresses of TLS-terminating proxies whose `X-Forwarded-For` (and RFC 9440 `Client-Cert`)
    /// is believed.
    pub trusted_proxies: Vec<IpAddr>,
    pub limits: PeerLimits,
    /// How large request headers may be (431 beyond).
    pub headers: HeaderLimits,
    /// The roots client certificates are verified against, whichever way they arrive
    /// ([`ClientCertificate::issued_by_trusted_ca`]); with [`Transport::request_client_certs`]
    /// their subjects are also sent to TLS clients as hints. `None`: no certificate is
    /// CA-issued as far as the services are concerned (self-signed ones still work).
    pub client_cas: Option<ClientCas>,
    /// This listener asks TLS clients for an optional certificate (RFC 8705 mutual TLS). Only
    /// meaningful with [`Transport::tls`]: behind a TLS-terminating proxy, certificates come in
    /// its `Client-Cert` field instead.
    pub request_client_certs: bool,
}

/// What one address may take of a server, so a flood from a few addresses leaves room for
/// everyone else.
#[derive(Debug, Clone, Copy)]
pub struct PeerLimits {
    /// TCP connections open at once from one peer address; more are closed on accept. Trusted
    /// proxies are exempt (all their clients share their address).
    pub connections_per_peer: usize,
    /// Requests in flight at once from one client address (as resolved through trusted
    /// proxies); more are answered 503 at once.
    pub requests_per_client: usize,
    /// Time a connection has to deliver a request's headers, so idle or trickling connections
    /// (slowloris) are closed rather than held.
    pub header_timeout: Duration,
}

impl Default for PeerLimits {
    fn default() -> PeerLimits {
        PeerLimits {
            connections_per_peer: 256,
            requests_per_client: 128,
            header_timeout: Duration::from_secs(10),
        }
    }
}

impl Transport {
    /// `prefix` names the settings in messages (`AUTH` or `RESOURCE`).
    pub fn new(
        cert: Option<PathBuf>,
        key: Option<PathBuf>,
        trusted_proxies: Vec<IpAddr>,
        prefix: &str,
    ) -> anyhow::Result<Transport> {
        let tls = match (cert, key) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            _ => anyhow::bail!("{prefix}_TLS_CERT and {prefix}_TLS_KEY must be set together"),
        };
        Ok(Transport {
            tls,
            trusted_proxies,
            limits: PeerLimits::default(),
            headers: HeaderLimits::default(),
            client_cas: None,
            request_client_certs: false,
        })
    }

    /// This transport, asking TLS clients for an optional certificate: for a service's own TLS
    /// listener, or a mutual-TLS listener beside the main one. Refused without this server's own
    /// TLS: only whoever terminates TLS can ask for a certificate (behind a TLS-terminating proxy,
    /// the proxy asks, and forwards what it got in `Client-Cert`).
    pub fn requesting_client_certs(&self, prefix: &str) -> anyhow::Result<Transport> {
        if self.tls.is_none() {
            anyhow::bail!(
                "mutual TLS needs {prefix}_TLS_CERT and {prefix}_TLS_KEY: only a server that \
                 terminates TLS itself can ask clients for certificates (behind a TLS-terminating \
                 proxy, have the proxy ask for them and forward them in the Client-Cert header)"
            );
        }
        Ok(Transport {
            request_client_certs: true,
            ..self.clone()
        })
    }

    /// Plaintext on a non-loopback address would send secrets and tokens in the clear, unless a
    /// proxy in front terminates TLS: refuse to start in that case, saying how to fix it.
    pub fn check_bind(&self, bind: SocketAddr, prefix: &str) -> anyhow::Result<()> {
        if self.tls.is_none() && self.trusted_proxies.is_empty() && !bind.ip().is_loopback() {
            anyhow::bail!(
                "refusing to serve plaintext HTTP on non-loopback address {bind}: set {prefix}_TLS_CERT and {prefix}_TLS_KEY, \
                 or list the TLS-terminating proxy in front of this server in {prefix}_TRUSTED_PROXIES"
            );
        }
        Ok(())
    }
}

/// Completes on Ctrl-C or SIGTERM (what container platforms send), for a graceful shutdown.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

/// Adds security headers to every response: no MIME sniffing, no framing, no referrer, a
/// content-security policy that allows nothing (the services serve JSON, and the one page that
/// needs more, `/docs`, sets its own narrower relaxation), and HSTS when the server itself speaks
/// TLS.
#[derive(Clone, Copy)]
pub struct SecurityHeadersLayer {
    pub hsts: bool,
}

impl<S> tower::Layer<S> for SecurityHeadersLayer {
    type Service = SecurityHeaders<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SecurityHeaders {
            inner,
            hsts: self.hsts,
        }
    }
}

#[derive(Clone)]
pub struct SecurityHeaders<S> {
    inner: S,
    hsts: bool,
}

impl<S> tower::Service<Request> for SecurityHeaders<S>
where
    S: tower::Service<Request, Response = axum::response::Response>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = std::pin::Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        use axum::http::{HeaderValue, header};
        let response = self.inner.call(request);
        let hsts = self.hsts;
        Box::pin(async move {
            let mut response = response.await?;
            let headers = response.headers_mut();
            headers.insert(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            );
            headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
            headers.insert(
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            );
            // A route that serves a page sets its own policy (the services' `/docs`); every
            // other response allows nothing.
            if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
                headers.insert(
                    header::CONTENT_SECURITY_POLICY,
                    HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
                );
            }
            if hsts {
                headers.insert(
                    header::STRICT_TRANSPORT_SECURITY,
                    HeaderValue::from_static("max-age=31536000"),
                );
            }
            Ok(response)
        })
    }
}

/// Serves `router` on `listener`, with TLS when configured, until `shutdown` completes; then
/// lets in-flight requests finish (up to 10 s). Connections are bounded per peer address, a
/// connection that does not deliver request headers within `header_timeout` is closed, and
/// hyper refuses a request head that outgrows [`HeaderLimits::head_buffer_bytes`] with 431.
///
/// With [`Transport::request_client_certs`], TLS clients are asked for an optional certificate
/// (see [`mtls`]); the chain a client presents goes with every request of its connection to the
/// envelope, which turns it into a [`ClientCertificate`].
pub async fn serve(
    listener: TcpListener,
    router: Router,
    transport: &Transport,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let app = router.into_make_service_with_connect_info::<SocketAddr>();
    let limits = transport.limits;
    let handle = axum_server::Handle::new();
    let stopper = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        stopper.graceful_shutdown(Some(Duration::from_secs(10)));
    });
    let per_peer = PeerConnectionLimit::new(
        axum_server::accept::DefaultAcceptor::new(),
        limits.connections_per_peer,
        &transport.trusted_proxies,
    );
    let listener = listener.into_std()?;
    match &transport.tls {
        None => {
            if transport.request_client_certs {
                tracing::warn!(
                    "client certificates are requested on a plaintext listener: they can only \
                     come from a trusted proxy's Client-Cert field"
                );
            }
            server(listener, per_peer, handle, transport)?
                .serve(app)
                .await?;
        }
        Some((cert, key)) => {
            let _ = rustls::crypto::ring::default_provider().install_default();
            let config = if transport.request_client_certs {
                let config =
                    mtls::listener::server_config(cert, key, transport.client_cas.as_ref())?;
                axum_server::tls_rustls::RustlsConfig::from_config(Arc::new(config))
            } else {
                axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key)
                    .await
                    .with_context(|| {
                        format!(
                            "cannot load TLS certificate {} and key {}",
                            cert.display(),
                            key.display()
                        )
                    })?
            };
            let tls = axum_server::tls_rustls::RustlsAcceptor::new(config)
                .handshake_timeout(limits.header_timeout)
                .acceptor(per_peer);
            server(
                listener,
                mtls::listener::WithPeerCertificates(tls),
                handle,
                transport,
            )?
            .serve(app)
            .await?;
        }
    }
    Ok(())
}

/// The server around `acceptor`, the same for plaintext and both TLS modes.
fn server<A>(
    listener: std::net::TcpListener,
    acceptor: A,
    handle: axum_server::Handle<SocketAddr>,
    transport: &Transport,
) -> std::io::Result<axum_server::Server<SocketAddr, A>> {
    let mut server = axum_server::from_tcp(listener)?
        .acceptor(acceptor)
        .first_request_timeout(transport.limits.header_timeout)
        .handle(handle);
    configure_http(&mut server, transport);
    Ok(server)
}

/// The header timeout and the bound on a request head, for HTTP/1.1 and HTTP/2 alike (TLS
/// clients negotiate HTTP/2 by ALPN).
///
/// hyper's HTTP/1.1 read buffer must hold a whole head before it is parsed, so its limit bounds
/// the memory a head takes; a head that outgrows it is answered 431 by hyper itself. HTTP/2's
/// `SETTINGS_MAX_HEADER_LIST_SIZE` is the same bound there: hyper's default of 16 KiB would
/// refuse header lists the configured limit allows, and h2 answers 431 on the stream. Both
/// are set a little above the configured list limit, so that a request just over it reaches
/// [`HeaderLimitLayer`] and gets its problem+json answer.
fn configure_http<Addr: axum_server::Address, Acc>(
    server: &mut axum_server::Server<Addr, Acc>,
    transport: &Transport,
) {
    let head = transport.headers.head_buffer_bytes();
    let builder = server.http_builder();
    builder
        .http1()
        .header_read_timeout(transport.limits.header_timeout)
        .max_buf_size(head);
    builder
        .http2()
        .max_header_list_size(u32::try_from(head).unwrap_or(u32::MAX));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn plaintext_is_refused_off_loopback_without_tls_or_proxy() {
        let plain = Transport::default();
        assert!(
            plain
                .check_bind("127.0.0.1:8080".parse().unwrap(), "AUTH")
                .is_ok()
        );
        assert!(
            plain
                .check_bind("[::1]:8080".parse().unwrap(), "AUTH")
                .is_ok()
        );
        let err = plain
            .check_bind("0.0.0.0:8080".parse().unwrap(), "AUTH")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("AUTH_TLS_CERT") && err.contains("AUTH_TRUSTED_PROXIES"),
            "{err}"
        );
        let proxied = Transport {
            trusted_proxies: vec![ip("10.0.0.1")],
            ..Transport::default()
        };
        assert!(
            proxied
                .check_bind("0.0.0.0:8080".parse().unwrap(), "AUTH")
                .is_ok()
        );
        assert!(Transport::new(Some("c".into()), None, vec![], "AUTH").is_err());
    }

    #[test]
    fn client_certificates_are_requested_only_by_a_server_that_terminates_tls() {
        let err = Transport::default()
            .requesting_client_certs("AUTH")
            .unwrap_err()
            .to_string();
        assert!(err.contains("AUTH_TLS_CERT"), "{err}");
        let tls = Transport::new(Some("c".into()), Some("k".into()), vec![], "AUTH").unwrap();
        let mtls = tls.requesting_client_certs("AUTH").unwrap();
        assert!(mtls.request_client_certs && !tls.request_client_certs);
        assert_eq!(mtls.tls, tls.tls);
    }
}
