//! A TLS listener that asks clients for an optional certificate: the rustls configuration, the
//! client-certificate verifier of the handshake, and the acceptor that hands the presented chain
//! to every request of the connection.
//!
//! The handshake accepts any well-formed certificate and never judges the chain: a self-signed
//! certificate is as welcome as a CA-issued one, and which of them a client may use is the
//! service's decision ([`super::ClientCertificate::issued_by_trusted_ca`], thumbprints). What the
//! handshake does check, with rustls' own functions and the ring provider's algorithms, is the
//! client's CertificateVerify signature over the handshake: the proof that the client holds the
//! certificate's private key. A client that cannot sign fails the handshake.

use std::path::Path;
use std::sync::Arc;
use std::task::{Context, Poll};

use anyhow::Context as _;
use axum::http::Request;
use axum_server::accept::Accept;
use axum_server::tls_rustls::RustlsAcceptor;
use futures::TryFutureExt;
use futures::future::MapOk;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, ServerConfig, SignatureScheme};

use super::{ClientCas, PeerCertificates};

/// The rustls configuration of a listener that asks for a client certificate: the ring provider,
/// its safe default protocol versions, ALPN `h2` and `http/1.1` (as axum-server configures its
/// own), the server's chain and key from PEM files, and [`AnyClientCertificate`].
pub(crate) fn server_config(
    cert: &Path,
    key: &Path,
    cas: Option<&ClientCas>,
) -> anyhow::Result<ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let loading = || {
        format!(
            "cannot load TLS certificate {} and key {}",
            cert.display(),
            key.display()
        )
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .with_context(loading)?;
    if chain.is_empty() {
        anyhow::bail!("{}: no certificate in {}", loading(), cert.display());
    }
    let key = PrivateKeyDer::from_pem_file(key).with_context(loading)?;
    let verifier = AnyClientCertificate {
        hints: cas.map(|cas| cas.hints().to_vec()).unwrap_or_default(),
        algorithms: provider.signature_verification_algorithms,
    };
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("the ring provider supports no safe TLS version")?
        .with_client_cert_verifier(Arc::new(verifier))
        .with_single_cert(chain, key)
        .with_context(loading)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// Asks for a client certificate without requiring one, sends the configured CA roots' subjects
/// as hints, accepts any certificate webpki can parse, and verifies the handshake signatures.
#[derive(Debug)]
struct AnyClientCertificate {
    hints: Vec<DistinguishedName>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for AnyClientCertificate {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
    }

    /// Well-formed is enough here: the chain is judged per request, by the service. Parsing it as
    /// webpki does means the signature checks below can use its public key.
    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        ParsedCertificate::try_from(end_entity)?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Wraps axum-server's TLS acceptor: once the handshake is done, the chain the client presented
/// (if any) goes with every request of the connection as [`PeerCertificates`].
#[derive(Clone)]
pub(crate) struct WithPeerCertificates<A>(pub(crate) A);

type Accepted<A, I, S> = (
    <RustlsAcceptor<A> as Accept<I, S>>::Stream,
    <RustlsAcceptor<A> as Accept<I, S>>::Service,
);

type Attached<A, I, S> = (
    <RustlsAcceptor<A> as Accept<I, S>>::Stream,
    AddPeerCertificates<<RustlsAcceptor<A> as Accept<I, S>>::Service>,
);

impl<A, I, S> Accept<I, S> for WithPeerCertificates<RustlsAcceptor<A>>
where
    A: Accept<I, S>,
    A::Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    type Stream = <RustlsAcceptor<A> as Accept<I, S>>::Stream;
    type Service = AddPeerCertificates<<RustlsAcceptor<A> as Accept<I, S>>::Service>;
    type Future = MapOk<
        <RustlsAcceptor<A> as Accept<I, S>>::Future,
        fn(Accepted<A, I, S>) -> Attached<A, I, S>,
    >;

    fn accept(&self, stream: I, service: S) -> Self::Future {
        self.0
            .accept(stream, service)
            .map_ok(attach::<A, I, S> as fn(_) -> _)
    }
}

fn attach<A, I, S>((stream, service): Accepted<A, I, S>) -> Attached<A, I, S>
where
    A: Accept<I, S>,
    A::Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (_, connection) = stream.get_ref();
    let certificates = connection
        .peer_certificates()
        .filter(|chain| !chain.is_empty())
        .map(|chain| {
            PeerCertificates::new(
                chain
                    .iter()
                    .map(|c| c.clone().into_owned())
                    .collect::<Vec<_>>(),
            )
        });
    (
        stream,
        AddPeerCertificates {
            inner: service,
            certificates,
        },
    )
}

/// The per-connection service: puts the connection's chain into each request.
#[derive(Clone)]
pub(crate) struct AddPeerCertificates<S> {
    inner: S,
    certificates: Option<PeerCertificates>,
}

impl<S, B> tower::Service<Request<B>> for AddPeerCertificates<S>
where
    S: tower::Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        if let Some(certificates) = &self.certificates {
            request.extensions_mut().insert(certificates.clone());
        }
        self.inner.call(request)
    }
}
