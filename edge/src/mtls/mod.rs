//! Client certificates at the edge: RFC 8705 mutual TLS on our own listeners, RFC 9440
//! `Client-Cert` from trusted TLS-terminating proxies, and API Gateway's mutual TLS on Lambda.
//!
//! Every entry point hands what was presented to the envelope as a raw chain; the envelope's
//! [`crate::ClientIdentityLayer`] turns it into one [`ClientCertificate`] request extension, the
//! same way for all of them. Its presence means that the presenter proved possession of the
//! certificate's private key: our TLS handshake checked the CertificateVerify signature, or a
//! trusted proxy or API Gateway did. It says nothing about trust: whether the certificate is
//! good for anything is the service's decision, by [`ClientCertificate::issued_by_trusted_ca`]
//! and the subject or SANs (RFC 8705 `tls_client_auth`), or by its thumbprint
//! (`self_signed_tls_client_auth`, and certificate-bound tokens' `cnf.x5t#S256`).

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::ClientCertVerifier;

mod dn;
pub(crate) mod header;
pub(crate) mod listener;

/// Certificates in one presented chain, leaf included; a longer chain is ignored.
pub const MAX_CHAIN: usize = 8;

/// The chain a client presented (leaf first), as an entry point saw it, before the envelope reads
/// it. Inserted per connection by the TLS listener and per event by [`crate::lambda`]. The
/// envelope reads it once: every request of a kept-alive connection shares the one
/// [`ClientCertificate`] (parsed, hashed and, when asked, verified against the CAs once).
#[derive(Clone)]
pub(crate) struct PeerCertificates {
    pub(crate) chain: Arc<[CertificateDer<'static>]>,
    pub(crate) read: Arc<OnceLock<Option<ClientCertificate>>>,
}

impl PeerCertificates {
    pub(crate) fn new(chain: impl Into<Arc<[CertificateDer<'static>]>>) -> PeerCertificates {
        PeerCertificates {
            chain: chain.into(),
            read: Arc::new(OnceLock::new()),
        }
    }
}

/// The certificate a request came with, whose private key the client has proven it holds (see
/// the module documentation). A request extension: `Option<Extension<ClientCertificate>>`.
#[derive(Clone)]
pub struct ClientCertificate(Arc<Inner>);

struct Inner {
    chain: Arc<[CertificateDer<'static>]>,
    thumbprint: [u8; 32],
    x5t_s256: String,
    read: Read,
    cas: Option<ClientCas>,
    issued_by_trusted_ca: OnceLock<bool>,
}

impl ClientCertificate {
    /// Reads a presented chain, leaf first. The caller vouches that the presenter proved
    /// possession of the leaf's private key: the edge does this for every entry point, and tests
    /// may build one directly. `cas` are the roots [`Self::issued_by_trusted_ca`] verifies
    /// against.
    pub fn from_chain(
        chain: impl Into<Arc<[CertificateDer<'static>]>>,
        cas: Option<&ClientCas>,
    ) -> Result<ClientCertificate, CertError> {
        let chain = chain.into();
        let leaf = chain.first().ok_or(CertError::NoCertificate)?;
        if chain.len() > MAX_CHAIN {
            return Err(CertError::ChainTooLong(chain.len()));
        }
        let read = read(leaf).map_err(|reason| CertError::Unparsable { index: 1, reason })?;
        let thumbprint = thumbprint(leaf);
        Ok(ClientCertificate(Arc::new(Inner {
            x5t_s256: URL_SAFE_NO_PAD.encode(thumbprint),
            thumbprint,
            chain,
            read,
            cas: cas.cloned(),
            issued_by_trusted_ca: OnceLock::new(),
        })))
    }

    /// The leaf certificate, DER.
    pub fn der(&self) -> &[u8] {
        &self.0.chain[0]
    }

    /// SHA-256 of [`Self::der`].
    pub fn thumbprint(&self) -> &[u8; 32] {
        &self.0.thumbprint
    }

    /// The thumbprint as RFC 8705 §3.1's `x5t#S256`: base64url without padding.
    pub fn x5t_s256(&self) -> &str {
        &self.0.x5t_s256
    }

    /// Whether the leaf and the intermediates that came with it verify, with rustls'
    /// `WebPkiClientVerifier`, up to one of the configured client CA roots, now: within every
    /// certificate's validity, signatures, name constraints, and the `clientAuth` extended key
    /// usage where one is given. False without configured roots. Computed at the first call.
    pub fn issued_by_trusted_ca(&self) -> bool {
        *self
            .0
            .issued_by_trusted_ca
            .get_or_init(|| match &self.0.cas {
                Some(cas) => cas.verifies(&self.0.chain),
                None => false,
            })
    }

    /// Whether now is within the leaf's notBefore..=notAfter. For a self-signed certificate,
    /// matched by thumbprint, this is all there is to check of it.
    pub fn is_current(&self) -> bool {
        let now = unix_now();
        self.0.read.not_before <= now && now <= self.0.read.not_after
    }

    /// Whether the subject is the RFC 4514 distinguished name `dn` (such as
    /// `CN=acme-client,O=Acme Corp,C=DE`). Attribute types are compared by OID, values without
    /// regard to case or runs of white space, and the RDNs in RFC 4514 order (most specific first)
    /// or in the certificate's; a string that cannot be parsed matches nothing. The rules in full
    /// are in the `dn` module of this crate.
    pub fn subject_matches(&self, dn: &str) -> bool {
        self.0.read.subject.matches(dn)
    }

    /// Whether `value` is one of the leaf's subject alternative names: a value containing `:` is
    /// compared with the URI names exactly, any other with the DNS names without regard to ASCII
    /// case. Exact in both cases: a wildcard name matches only the same wildcard.
    pub fn has_san(&self, value: &str) -> bool {
        if value.contains(':') {
            self.0.read.uris.iter().any(|uri| uri == value)
        } else {
            self.0
                .read
                .dns_names
                .iter()
                .any(|name| name.eq_ignore_ascii_case(value))
        }
    }

    /// The subject, RFC 4514 (for logs and tools).
    pub fn subject(&self) -> String {
        self.0.read.subject.to_string()
    }

    /// The end of the leaf's validity, in seconds since the Unix epoch.
    pub fn not_after(&self) -> i64 {
        self.0.read.not_after
    }
}

impl std::fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCertificate")
            .field("x5t#S256", &self.0.x5t_s256)
            .field("subject", &self.0.read.subject.to_string())
            .finish()
    }
}

/// The CA roots client certificates are verified against ([`ClientCertificate::issued_by_trusted_ca`]),
/// whose subjects the TLS listener also sends clients as hints. Cheap to clone.
#[derive(Clone)]
pub struct ClientCas(Arc<CasInner>);

struct CasInner {
    verifier: Arc<dyn ClientCertVerifier>,
    subjects: Vec<String>,
}

impl ClientCas {
    /// The roots in a PEM file of CA certificates.
    pub fn from_pem_file(path: impl AsRef<Path>) -> anyhow::Result<ClientCas> {
        let path = path.as_ref();
        let pem = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the client CA file {}", path.display()))?;
        ClientCas::from_pem(&pem)
            .with_context(|| format!("the client CA file {} is not usable", path.display()))
    }

    /// The roots in PEM text of CA certificates.
    pub fn from_pem(pem: &str) -> anyhow::Result<ClientCas> {
        let certificates = certificates_from_pem(pem)?;
        let mut roots = RootCertStore::empty();
        for (i, certificate) in certificates.iter().enumerate() {
            roots
                .add(CertificateDer::from(certificate.der.clone()))
                .with_context(|| {
                    format!(
                        "certificate {} ({}) cannot be a trust anchor",
                        i + 1,
                        certificate.subject
                    )
                })?;
        }
        let verifier = WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::new(rustls::crypto::ring::default_provider()),
        )
        .allow_unauthenticated()
        .build()
        .context("cannot build a client certificate verifier")?;
        Ok(ClientCas(Arc::new(CasInner {
            verifier,
            subjects: certificates.into_iter().map(|c| c.subject).collect(),
        })))
    }

    /// The roots' subjects, RFC 4514 (for logs at start).
    pub fn subjects(&self) -> &[String] {
        &self.0.subjects
    }

    fn verifies(&self, chain: &[CertificateDer<'static>]) -> bool {
        let Some((leaf, intermediates)) = chain.split_first() else {
            return false;
        };
        match self
            .0
            .verifier
            .verify_client_cert(leaf, intermediates, UnixTime::now())
        {
            Ok(_) => true,
            Err(error) => {
                tracing::debug!(%error, "client certificate not issued by a trusted CA");
                false
            }
        }
    }

    /// The roots' subjects, DER, for the TLS CertificateRequest.
    fn hints(&self) -> &[rustls::DistinguishedName] {
        self.0.verifier.root_hint_subjects()
    }
}

impl std::fmt::Debug for ClientCas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCas")
            .field("roots", &self.0.subjects)
            .finish()
    }
}

/// What an admin tool shows of a certificate (and stores of it, for self-signed clients).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateInfo {
    pub der: Vec<u8>,
    /// RFC 8705 §3.1: base64url (no padding) of the SHA-256 of `der`.
    pub x5t_s256: String,
    /// RFC 4514.
    pub subject: String,
    /// RFC 4514.
    pub issuer: String,
    /// Seconds since the Unix epoch.
    pub not_before: i64,
    /// Seconds since the Unix epoch.
    pub not_after: i64,
    /// Issuer and subject are the same name.
    pub self_signed: bool,
}

/// Why certificates could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertError {
    NoCertificate,
    PrivateKey,
    NotACertificate(String),
    Pem(String),
    Unparsable { index: usize, reason: String },
    ChainTooLong(usize),
}

impl std::fmt::Display for CertError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CertError::NoCertificate => {
                f.write_str("no certificate found (expected \"-----BEGIN CERTIFICATE-----\")")
            }
            CertError::PrivateKey => f.write_str(
                "this holds a private key: it must hold certificates only (a private key is never \
                 given to a server; keep it with the client)",
            ),
            CertError::NotACertificate(label) => {
                write!(
                    f,
                    "this holds a \"{label}\" block: it must hold certificates only"
                )
            }
            CertError::Pem(reason) => write!(f, "malformed PEM: {reason}"),
            CertError::Unparsable { index, reason } => {
                write!(f, "certificate {index} cannot be parsed: {reason}")
            }
            CertError::ChainTooLong(len) => write!(
                f,
                "a chain of {len} certificates is longer than the {MAX_CHAIN} accepted"
            ),
        }
    }
}

impl std::error::Error for CertError {}

/// The certificates in PEM text, in order. Refuses text without certificates, with a
/// certificate that cannot be parsed, or with anything but certificates (a private key above
/// all).
pub fn certificates_from_pem(pem: &str) -> Result<Vec<CertificateInfo>, CertError> {
    for line in pem.lines() {
        if let Some(label) = line.trim().strip_prefix("-----BEGIN ") {
            let label = label.trim_end_matches('-').trim();
            if label.contains("PRIVATE KEY") {
                return Err(CertError::PrivateKey);
            }
            if label != "CERTIFICATE" {
                return Err(CertError::NotACertificate(label.to_owned()));
            }
        }
    }
    let ders = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| CertError::Pem(error.to_string()))?;
    if ders.is_empty() {
        return Err(CertError::NoCertificate);
    }
    ders.into_iter()
        .enumerate()
        .map(|(i, der)| {
            let read = read(&der).map_err(|reason| CertError::Unparsable {
                index: i + 1,
                reason,
            })?;
            Ok(CertificateInfo {
                x5t_s256: URL_SAFE_NO_PAD.encode(thumbprint(&der)),
                subject: read.subject.to_string(),
                issuer: read.issuer,
                not_before: read.not_before,
                not_after: read.not_after,
                self_signed: read.self_signed,
                der: der.to_vec(),
            })
        })
        .collect()
}

/// What is read of a certificate, once.
struct Read {
    subject: dn::Name,
    issuer: String,
    self_signed: bool,
    not_before: i64,
    not_after: i64,
    dns_names: Vec<String>,
    uris: Vec<String>,
}

fn read(der: &[u8]) -> Result<Read, String> {
    use x509_parser::extensions::GeneralName;
    let (rest, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| e.to_string())?;
    if !rest.is_empty() {
        return Err("trailing bytes after the certificate".to_owned());
    }
    let (mut dns_names, mut uris) = (Vec::new(), Vec::new());
    if let Some(san) = cert.subject_alternative_name().map_err(|e| e.to_string())? {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(name) => dns_names.push((*name).to_owned()),
                GeneralName::URI(uri) => uris.push((*uri).to_owned()),
                _ => {}
            }
        }
    }
    let validity = cert.validity();
    Ok(Read {
        subject: dn::Name::from_x509(cert.subject()),
        issuer: dn::Name::from_x509(cert.issuer()).to_string(),
        self_signed: cert.subject().as_raw() == cert.issuer().as_raw(),
        not_before: validity.not_before.timestamp(),
        not_after: validity.not_after.timestamp(),
        dns_names,
        uris,
    })
}

fn thumbprint(der: &[u8]) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, der);
    let mut out = [0; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
