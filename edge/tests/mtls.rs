//! Client certificates end to end: real listeners started with `edge::serve` on loopback, a
//! router in the envelope that says what `ClientCertificate` it sees, real TLS clients presenting
//! certificates generated here, and RFC 9440 `Client-Cert` fields from trusted and untrusted
//! peers.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use axum::{Extension, Json, Router};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use edge::{ClientCas, ClientCertificate, Envelope, Transport};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType,
};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::net::TcpListener;

const SUBJECT: &str = "CN=acme-client,O=Acme Corp,C=DE";
const SAN_DNS: &str = "client.acme.example";
const SAN_URI: &str = "spiffe://acme.example/client";

/// A certificate and its key, as PEM, and what it should be recognised by.
struct Client {
    /// The leaf, then any intermediates.
    chain_pem: String,
    key_pem: String,
    leaf_der: Vec<u8>,
}

impl Client {
    fn x5t(&self) -> String {
        URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, &self.leaf_der))
    }

    fn identity(&self) -> reqwest::Identity {
        reqwest::Identity::from_pem(format!("{}{}", self.chain_pem, self.key_pem).as_bytes())
            .unwrap()
    }

    /// The RFC 9440 `Client-Cert` field of the leaf.
    fn field(&self) -> String {
        format!(":{}:", STANDARD.encode(&self.leaf_der))
    }
}

/// The certificates of one test: a client CA and what it issued, an intermediate under it,
/// another CA, a self-signed client, and the server's own certificate.
struct Pki {
    dir: tempfile::TempDir,
    ca_pem: String,
    server_pem: String,
    issued: Client,
    via_intermediate: Client,
    intermediate_der: Vec<u8>,
    expired: Client,
    other_ca: Client,
    self_signed: Client,
}

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

fn client_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CountryName, "DE");
    params
        .distinguished_name
        .push(DnType::OrganizationName, "Acme Corp");
    params
        .distinguished_name
        .push(DnType::CommonName, "acme-client");
    params.subject_alt_names = vec![
        SanType::DnsName(SAN_DNS.try_into().unwrap()),
        SanType::URI(SAN_URI.try_into().unwrap()),
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params
}

fn issue(params: CertificateParams, issuer: &CertifiedIssuer<'_, KeyPair>) -> Client {
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, issuer).unwrap();
    Client {
        chain_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        leaf_der: cert.der().to_vec(),
    }
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let root = ca("Acme Client CA");
        let other = ca("Someone Else's CA");

        let mut intermediate_params = CertificateParams::default();
        intermediate_params.distinguished_name = DistinguishedName::new();
        intermediate_params
            .distinguished_name
            .push(DnType::CommonName, "Acme Issuing CA");
        intermediate_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        intermediate_params.key_usages = vec![KeyUsagePurpose::KeyCertSign];
        let intermediate =
            CertifiedIssuer::signed_by(intermediate_params, KeyPair::generate().unwrap(), &root)
                .unwrap();
        let mut via_intermediate = issue(client_params(), &intermediate);
        via_intermediate.chain_pem.push_str(&intermediate.pem());

        let mut expired = client_params();
        expired.not_before = rcgen::date_time_ymd(2020, 1, 1);
        expired.not_after = rcgen::date_time_ymd(2021, 1, 1);

        let self_signed_key = KeyPair::generate().unwrap();
        let self_signed = client_params().self_signed(&self_signed_key).unwrap();

        let server = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
        std::fs::write(dir.path().join("server.pem"), server.cert.pem()).unwrap();
        std::fs::write(
            dir.path().join("server.key"),
            server.signing_key.serialize_pem(),
        )
        .unwrap();
        std::fs::write(dir.path().join("client-ca.pem"), root.pem()).unwrap();

        Pki {
            ca_pem: root.pem(),
            server_pem: server.cert.pem(),
            issued: issue(client_params(), &root),
            via_intermediate,
            intermediate_der: intermediate.der().to_vec(),
            expired: issue(expired, &root),
            other_ca: issue(client_params(), &other),
            self_signed: Client {
                chain_pem: self_signed.pem(),
                key_pem: self_signed_key.serialize_pem(),
                leaf_der: self_signed.der().to_vec(),
            },
            dir,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn cas(&self) -> ClientCas {
        ClientCas::from_pem_file(self.path("client-ca.pem")).unwrap()
    }

    /// A TLS listener that asks for client certificates and knows the client CA.
    fn mtls(&self) -> Transport {
        let mut transport = self.tls().requesting_client_certs("TEST").unwrap();
        transport.client_cas = Some(self.cas());
        transport
    }

    /// A TLS listener that does not ask.
    fn tls(&self) -> Transport {
        Transport::new(
            Some(self.path("server.pem")),
            Some(self.path("server.key")),
            vec![],
            "TEST",
        )
        .unwrap()
    }

    fn https(&self, identity: Option<&Client>) -> reqwest::Client {
        let root = reqwest::Certificate::from_pem(self.server_pem.as_bytes()).unwrap();
        let mut builder = edge::http_client(Duration::from_secs(5), Duration::from_secs(10))
            .tls_certs_only([root]);
        if let Some(client) = identity {
            builder = builder.identity(client.identity());
        }
        builder.build().unwrap()
    }
}

/// What the handler saw of the request's certificate.
async fn whoami(certificate: Option<Extension<ClientCertificate>>) -> Json<Value> {
    Json(match certificate {
        None => Value::Null,
        Some(Extension(c)) => json!({
            "x5t": c.x5t_s256(),
            "trusted": c.issued_by_trusted_ca(),
            "current": c.is_current(),
            "subject": c.subject(),
            "subject_matches": c.subject_matches(SUBJECT),
            "san_dns": c.has_san(SAN_DNS),
            "san_uri": c.has_san(SAN_URI),
        }),
    })
}

/// A server on a loopback port until the returned sender is dropped.
struct Server {
    addr: SocketAddr,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Server {
    async fn start(transport: Transport) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let envelope = Envelope::new(&transport, Duration::from_secs(10), 64, 64 * 1024);
        let router = envelope.wrap(Router::new().route("/whoami", get(whoami)));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            edge::serve(listener, router, &transport, async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
        Server { addr, _stop: stop }
    }

    fn url(&self, scheme: &str) -> String {
        format!("{scheme}://{}/whoami", self.addr)
    }
}

fn plain_http() -> reqwest::Client {
    edge::http_client(Duration::from_secs(5), Duration::from_secs(10))
        .build()
        .unwrap()
}

async fn seen(request: reqwest::RequestBuilder) -> Value {
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

#[tokio::test]
async fn a_client_without_a_certificate_is_served_and_has_none() {
    let pki = Pki::new();
    let server = Server::start(pki.mtls()).await;
    let seen = seen(pki.https(None).get(server.url("https"))).await;
    assert_eq!(seen, Value::Null);
}

#[tokio::test]
async fn each_certificate_is_seen_and_only_a_current_ca_issued_one_is_trusted() {
    let pki = Pki::new();
    let server = Server::start(pki.mtls()).await;
    // (what, client, trusted, current)
    let cases = [
        ("issued by the CA", &pki.issued, true, true),
        (
            "issued through an intermediate",
            &pki.via_intermediate,
            true,
            true,
        ),
        ("self-signed", &pki.self_signed, false, true),
        ("expired", &pki.expired, false, false),
        ("issued by another CA", &pki.other_ca, false, true),
    ];
    for (what, client, trusted, current) in cases {
        let https = pki.https(Some(client));
        let response = https.get(server.url("https")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{what}");
        // ALPN works as on a listener that does not ask for certificates.
        assert_eq!(response.version(), reqwest::Version::HTTP_2, "{what}");
        let seen: Value = response.json().await.unwrap();
        assert_eq!(seen["x5t"], client.x5t(), "{what}");
        assert_eq!(seen["trusted"], trusted, "{what}");
        assert_eq!(seen["current"], current, "{what}");
        assert_eq!(seen["subject"], SUBJECT, "{what}");
        assert_eq!(seen["subject_matches"], true, "{what}");
        assert_eq!(seen["san_dns"], true, "{what}");
        assert_eq!(seen["san_uri"], true, "{what}");
    }
}

#[tokio::test]
async fn without_configured_roots_no_certificate_is_trusted() {
    let pki = Pki::new();
    let transport = Transport {
        client_cas: None,
        ..pki.mtls()
    };
    let server = Server::start(transport).await;
    let seen = seen(pki.https(Some(&pki.issued)).get(server.url("https"))).await;
    assert_eq!(seen["x5t"], pki.issued.x5t());
    assert_eq!(seen["trusted"], false);
}

#[tokio::test]
async fn a_listener_that_does_not_ask_sees_no_certificate() {
    let pki = Pki::new();
    let transport = Transport {
        client_cas: Some(pki.cas()),
        ..pki.tls()
    };
    let server = Server::start(transport).await;
    let seen = seen(pki.https(Some(&pki.issued)).get(server.url("https"))).await;
    assert_eq!(seen, Value::Null);
}

#[tokio::test]
async fn a_client_that_does_not_hold_the_key_fails_the_handshake() {
    let pki = Pki::new();
    let server = Server::start(pki.mtls()).await;
    let stranger = KeyPair::generate().unwrap().serialize_pem();
    for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
        let own = raw_get(&pki, server.addr, &pki.issued, &pki.issued.key_pem, version).await;
        assert!(
            own.as_ref()
                .is_ok_and(|r| r.starts_with("HTTP/1.1 200") && r.contains(&pki.issued.x5t())),
            "{version:?}: {own:?}"
        );
        let forged = raw_get(&pki, server.addr, &pki.issued, &stranger, version).await;
        assert!(
            !forged.as_ref().is_ok_and(|r| r.contains("200")),
            "{version:?}: {forged:?}"
        );
    }
}

#[tokio::test]
async fn client_cert_from_a_trusted_proxy_is_believed() {
    let pki = Pki::new();
    let transport = Transport {
        trusted_proxies: vec!["127.0.0.1".parse().unwrap()],
        client_cas: Some(pki.cas()),
        ..Transport::default()
    };
    let server = Server::start(transport).await;
    let http = plain_http();

    let seen_issued = seen(
        http.get(server.url("http"))
            .header("client-cert", pki.issued.field()),
    )
    .await;
    assert_eq!(seen_issued["x5t"], pki.issued.x5t());
    assert_eq!(seen_issued["trusted"], true);
    assert_eq!(seen_issued["subject_matches"], true);

    let intermediate = format!(":{}:", STANDARD.encode(&pki.intermediate_der));
    let with_chain = seen(
        http.get(server.url("http"))
            .header("client-cert", pki.via_intermediate.field())
            .header("client-cert-chain", intermediate),
    )
    .await;
    assert_eq!(with_chain["x5t"], pki.via_intermediate.x5t());
    assert_eq!(with_chain["trusted"], true);

    let without_chain = seen(
        http.get(server.url("http"))
            .header("client-cert", pki.via_intermediate.field()),
    )
    .await;
    assert_eq!(without_chain["x5t"], pki.via_intermediate.x5t());
    assert_eq!(without_chain["trusted"], false);
}

#[tokio::test]
async fn client_cert_from_an_untrusted_peer_is_ignored() {
    let pki = Pki::new();
    let transport = Transport {
        trusted_proxies: vec!["10.0.0.1".parse().unwrap()],
        client_cas: Some(pki.cas()),
        ..Transport::default()
    };
    let server = Server::start(transport).await;
    let seen = seen(
        plain_http()
            .get(server.url("http"))
            .header("client-cert", pki.issued.field()),
    )
    .await;
    assert_eq!(seen, Value::Null);
}

#[tokio::test]
async fn malformed_client_cert_fields_give_no_certificate_and_two_are_refused() {
    let pki = Pki::new();
    let transport = Transport {
        trusted_proxies: vec!["127.0.0.1".parse().unwrap()],
        client_cas: Some(pki.cas()),
        ..Transport::default()
    };
    let server = Server::start(transport).await;
    let http = plain_http();
    let field = pki.issued.field();
    let not_a_certificate = format!(":{}:", STANDARD.encode(b"not a certificate"));
    let bare = STANDARD.encode(&pki.issued.leaf_der);
    let chain_of_nine = vec![pki.issued.field(); 8].join(", ");
    let cases: [&[(&str, &str)]; 5] = [
        &[("client-cert", "garbage")],
        &[("client-cert", bare.as_str())],
        &[("client-cert", not_a_certificate.as_str())],
        &[
            ("client-cert", field.as_str()),
            ("client-cert-chain", "::, :AQID:"),
        ],
        &[
            ("client-cert", field.as_str()),
            ("client-cert-chain", chain_of_nine.as_str()),
        ],
    ];
    for fields in cases {
        let mut request = http.get(server.url("http"));
        for (name, value) in fields {
            request = request.header(*name, *value);
        }
        assert_eq!(seen(request).await, Value::Null, "{fields:?}");
    }
    // Two Client-Cert fields are not malformed but ambiguous: the request is refused (400).
    let response = http
        .get(server.url("http"))
        .header("client-cert", field.as_str())
        .header("client-cert", field.as_str())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
}

#[tokio::test]
async fn through_a_trusted_proxy_the_connections_own_certificate_is_not_the_clients() {
    let pki = Pki::new();
    let transport = Transport {
        trusted_proxies: vec!["127.0.0.1".parse().unwrap()],
        ..pki.mtls()
    };
    let server = Server::start(transport).await;
    // The proxy authenticates itself with its own certificate and forwards the client's.
    let proxy = pki.https(Some(&pki.self_signed));
    let forwarded = seen(
        proxy
            .get(server.url("https"))
            .header("client-cert", pki.issued.field()),
    )
    .await;
    assert_eq!(forwarded["x5t"], pki.issued.x5t());
    let nothing_forwarded = seen(proxy.get(server.url("https"))).await;
    assert_eq!(nothing_forwarded, Value::Null);
}

#[test]
fn a_client_ca_file_must_hold_certificates_only() {
    let pki = Pki::new();
    let with_key = pki.path("with-key.pem");
    std::fs::write(&with_key, format!("{}{}", pki.ca_pem, pki.issued.key_pem)).unwrap();
    let err = format!("{:#}", ClientCas::from_pem_file(&with_key).unwrap_err());
    assert!(err.contains("private key"), "{err}");

    let empty = pki.path("empty.pem");
    std::fs::write(&empty, "nothing here\n").unwrap();
    let err = format!("{:#}", ClientCas::from_pem_file(&empty).unwrap_err());
    assert!(err.contains("no certificate"), "{err}");

    let missing = pki.path("missing.pem");
    let err = format!("{:#}", ClientCas::from_pem_file(&missing).unwrap_err());
    assert!(
        err.contains("cannot read") && err.contains("missing.pem"),
        "{err}"
    );

    let garbled = pki.path("garbled.pem");
    std::fs::write(
        &garbled,
        format!(
            "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
            STANDARD.encode(b"not DER")
        ),
    )
    .unwrap();
    let err = format!("{:#}", ClientCas::from_pem_file(&garbled).unwrap_err());
    assert!(err.contains("certificate 1 cannot be parsed"), "{err}");
}

#[test]
fn an_admin_tool_reads_what_a_pem_file_holds() {
    let pki = Pki::new();
    let infos =
        edge::certificates_from_pem(&format!("{}{}", pki.self_signed.chain_pem, pki.ca_pem))
            .unwrap();
    assert_eq!(infos.len(), 2);
    assert_eq!(infos[0].x5t_s256, pki.self_signed.x5t());
    assert_eq!(infos[0].subject, SUBJECT);
    assert!(infos[0].self_signed);
    assert!(infos[0].not_before < infos[0].not_after);
    assert_eq!(infos[0].der, pki.self_signed.leaf_der);
    assert_eq!(infos[1].subject, "CN=Acme Client CA");
    let issued = edge::certificates_from_pem(&pki.issued.chain_pem).unwrap();
    assert!(!issued[0].self_signed);
    assert_eq!(issued[0].issuer, "CN=Acme Client CA");
    assert_eq!(
        edge::certificates_from_pem(&pki.issued.key_pem),
        Err(edge::CertError::PrivateKey)
    );
}

/// The client CA and the issued certificate, checked outside a server.
#[test]
fn a_certificate_read_outside_a_server_says_the_same() {
    let pki = Pki::new();
    let cas = pki.cas();
    let chain = vec![rustls::pki_types::CertificateDer::from(
        pki.issued.leaf_der.clone(),
    )];
    let cert = ClientCertificate::from_chain(chain, Some(&cas)).unwrap();
    assert!(cert.issued_by_trusted_ca());
    assert!(cert.has_san("CLIENT.acme.example"));
    assert!(!cert.has_san("acme.example"));
    assert!(!cert.has_san("spiffe://acme.example/CLIENT"));
    assert_eq!(cert.thumbprint().len(), 32);
    assert_eq!(cert.der(), &pki.issued.leaf_der[..]);
    let debug = format!("{cert:?}");
    assert!(
        debug.contains(&pki.issued.x5t()) && debug.contains(SUBJECT),
        "{debug}"
    );
    let unknown = ClientCertificate::from_chain(
        vec![rustls::pki_types::CertificateDer::from(
            pki.other_ca.leaf_der.clone(),
        )],
        Some(&cas),
    )
    .unwrap();
    assert!(!unknown.issued_by_trusted_ca());
}

/// Presents `client`'s certificate chain, signing the handshake with `key_pem`, and sends one
/// HTTP/1.1 request; the response as text.
async fn raw_get(
    pki: &Pki,
    addr: SocketAddr,
    client: &Client,
    key_pem: &str,
    version: &'static rustls::SupportedProtocolVersion,
) -> std::io::Result<String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap();
    let signing_key = provider.key_provider.load_private_key(key).unwrap();
    let chain = CertificateDer::pem_slice_iter(client.chain_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let presented = Arc::new(rustls::sign::CertifiedKey::new(chain, signing_key));
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(pki.server_pem.as_bytes()).unwrap())
        .unwrap();
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[version])
        .unwrap()
        .with_root_certificates(roots)
        .with_client_cert_resolver(Arc::new(Presents(presented)));
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let mut tls = connector.connect(name, tcp).await?;
    tls.write_all(b"GET /whoami HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n")
        .await?;
    let mut response = Vec::new();
    tls.read_to_end(&mut response).await?;
    Ok(String::from_utf8_lossy(&response).into_owned())
}

/// Always presents the same certificate, whatever key it is paired with.
#[derive(Debug)]
struct Presents(Arc<rustls::sign::CertifiedKey>);

impl rustls::client::ResolvesClientCert for Presents {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}
