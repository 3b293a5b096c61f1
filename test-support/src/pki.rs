//! Certificates made on the spot with rcgen, for the mutual-TLS tests: a [`Ca`] that issues
//! client certificates (current or expired) and server certificates, and [`self_signed`] client
//! certificates. Each [`Leaf`] carries its PEMs, its DER and its RFC 8705 `x5t#S256`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType,
};

/// A certificate and its private key.
pub struct Leaf {
    pub cert_pem: String,
    pub key_pem: String,
    pub der: Vec<u8>,
}

impl Leaf {
    /// The certificate followed by its key, as `reqwest::Identity::from_pem` and `curl --cert`
    /// take them.
    pub fn identity_pem(&self) -> String {
        format!("{}{}", self.cert_pem, self.key_pem)
    }

    /// base64url of the SHA-256 of the DER: what a bound token's `cnf.x5t#S256` holds.
    pub fn x5t_s256(&self) -> String {
        URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, &self.der))
    }
}

/// A certificate authority.
pub struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// What a client certificate says about its holder.
pub struct Subject<'a> {
    pub common_name: &'a str,
    pub organization: Option<&'a str>,
    pub country: Option<&'a str>,
    /// DNS names, or URIs (anything with a `:`).
    pub sans: &'a [&'a str],
}

impl<'a> Subject<'a> {
    pub fn cn(common_name: &'a str) -> Subject<'a> {
        Subject {
            common_name,
            organization: None,
            country: None,
            sans: &[],
        }
    }
}

fn name(subject: &Subject<'_>) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    if let Some(c) = subject.country {
        dn.push(DnType::CountryName, c);
    }
    if let Some(o) = subject.organization {
        dn.push(DnType::OrganizationName, o);
    }
    dn.push(DnType::CommonName, subject.common_name);
    dn
}

fn client_params(subject: &Subject<'_>, days: std::ops::Range<i64>) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = name(subject);
    params.subject_alt_names = subject
        .sans
        .iter()
        .map(|san| {
            if san.contains(':') {
                SanType::URI((*san).try_into().expect("a URI SAN"))
            } else {
                SanType::DnsName((*san).try_into().expect("a DNS SAN"))
            }
        })
        .collect();
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now + time::Duration::days(days.start);
    params.not_after = now + time::Duration::days(days.end);
    params
}

fn leaf(cert: &rcgen::Certificate, key: &KeyPair) -> Leaf {
    Leaf {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        der: cert.der().to_vec(),
    }
}

impl Ca {
    /// A new CA named `CN=<name>`, valid from yesterday for ten years.
    pub fn new(common_name: &str) -> Ca {
        let mut params = CertificateParams::default();
        params.distinguished_name = name(&Subject::cn(common_name));
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::days(1);
        params.not_after = now + time::Duration::days(3650);
        let key = KeyPair::generate().expect("a CA key");
        Ca {
            issuer: CertifiedIssuer::self_signed(params, key).expect("a CA certificate"),
        }
    }

    pub fn cert_pem(&self) -> String {
        self.issuer.pem()
    }

    /// A client certificate valid from yesterday for a year.
    pub fn client(&self, subject: &Subject<'_>) -> Leaf {
        self.client_valid(subject, -1..365)
    }

    /// A client certificate that expired yesterday.
    pub fn expired_client(&self, subject: &Subject<'_>) -> Leaf {
        self.client_valid(subject, -30..-1)
    }

    fn client_valid(&self, subject: &Subject<'_>, days: std::ops::Range<i64>) -> Leaf {
        let key = KeyPair::generate().expect("a client key");
        let cert = client_params(subject, days)
            .signed_by(&key, &self.issuer)
            .expect("a client certificate");
        leaf(&cert, &key)
    }

    /// A server certificate for `localhost` and `127.0.0.1`.
    pub fn server(&self) -> Leaf {
        let key = KeyPair::generate().expect("a server key");
        let mut params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .expect("server names");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("a server certificate");
        leaf(&cert, &key)
    }
}

/// A self-signed client certificate valid from yesterday for a year (`expired`: that ended
/// yesterday).
pub fn self_signed(subject: &Subject<'_>, expired: bool) -> Leaf {
    let key = KeyPair::generate().expect("a client key");
    let days = if expired { -30..-1 } else { -1..365 };
    let cert = client_params(subject, days)
        .self_signed(&key)
        .expect("a self-signed certificate");
    leaf(&cert, &key)
}
