//! Distinguished names: a certificate's subject read once, printed as RFC 4514, and compared with
//! the RFC 4514 string a client registered (RFC 8705 `tls_client_auth_subject_dn`).
//!
//! The comparison, so that the same name written differently still matches and nothing else does:
//!
//! - Attribute types are compared by OID. Names are case-insensitive (`CN`, `cn`, `commonName`),
//!   and a dotted OID (`2.5.4.3`, also written `OID.2.5.4.3`) is the same type as its name. A name
//!   not in [`ATTRIBUTES`] makes the string unparsable.
//! - Values: RFC 4514 escapes are undone (`\,`, `\+`, `\\`, `\"`, `\2C`, UTF-8 as `\C3\A9`), then
//!   leading and trailing white space is dropped, runs of white space count as one space, and
//!   case is ignored (X.520's caseIgnoreMatch, which the usual subject attributes use). No other
//!   Unicode normalisation is done. A `#hex` value is the BER of the value: when it is a string it
//!   compares as that string, otherwise byte for byte.
//! - White space around `,`, `+` and `=` is ignored.
//! - A multi-valued RDN (`CN=a+UID=b`) is a set: its parts may come in any order.
//! - RDNs are a sequence, in one of two orders: RFC 4514's (most specific first, `CN=…,O=…,C=…`)
//!   or the certificate's own (`C=…,O=…,CN=…`, as OpenSSL prints it). Both must have the same RDNs,
//!   no more and no fewer: a shorter string is not a prefix match.
//! - A string that cannot be parsed, and the empty DN, match nothing.

use std::fmt::Write as _;

use x509_parser::asn1_rs::{Any, Class, FromDer, Tag, ToDer};
use x509_parser::x509::X509Name;

/// Attribute types by OID: the name printed first, then the other names accepted.
const ATTRIBUTES: &[(&str, &[&str])] = &[
    ("2.5.4.3", &["CN", "commonName"]),
    ("2.5.4.4", &["SN", "surname"]),
    ("2.5.4.5", &["serialNumber"]),
    ("2.5.4.6", &["C", "countryName"]),
    ("2.5.4.7", &["L", "localityName"]),
    ("2.5.4.8", &["ST", "S", "stateOrProvinceName"]),
    ("2.5.4.9", &["STREET", "streetAddress"]),
    ("2.5.4.10", &["O", "organizationName"]),
    ("2.5.4.11", &["OU", "organizationalUnitName"]),
    ("2.5.4.12", &["title", "T"]),
    ("2.5.4.15", &["businessCategory"]),
    ("2.5.4.17", &["postalCode"]),
    ("2.5.4.42", &["GN", "givenName"]),
    ("2.5.4.43", &["initials"]),
    ("2.5.4.44", &["generationQualifier"]),
    ("2.5.4.46", &["dnQualifier"]),
    ("2.5.4.65", &["pseudonym"]),
    ("2.5.4.97", &["organizationIdentifier"]),
    ("0.9.2342.19200300.100.1.1", &["UID", "userId"]),
    ("0.9.2342.19200300.100.1.25", &["DC", "domainComponent"]),
    ("1.2.840.113549.1.9.1", &["emailAddress", "E", "email"]),
];

/// A distinguished name as a certificate holds it: RDNs in certificate (DER) order.
#[derive(Debug, Clone)]
pub(crate) struct Name {
    rdns: Vec<Rdn>,
    display: String,
}

/// The attributes of one RDN, sorted, so that two RDNs compare as sets.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rdn(Vec<Attribute>);

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Attribute {
    oid: String,
    value: Value,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Value {
    /// A string value, normalised for comparison.
    Text(String),
    /// Any other value: its DER encoding.
    Der(Vec<u8>),
}

impl Name {
    pub(crate) fn from_x509(name: &X509Name<'_>) -> Name {
        let mut rdns = Vec::new();
        let mut shown = Vec::new();
        for rdn in name.iter_rdn() {
            let mut attributes = Vec::new();
            let mut parts = Vec::new();
            for attribute in rdn.iter() {
                let oid = attribute.attr_type().to_id_string();
                let raw = raw_value(attribute.attr_value());
                parts.push(format!("{}={}", type_name(&oid), escape(&raw)));
                attributes.push(Attribute {
                    oid,
                    value: raw.normalised(),
                });
            }
            attributes.sort();
            rdns.push(Rdn(attributes));
            shown.push(parts.join("+"));
        }
        shown.reverse();
        Name {
            rdns,
            display: shown.join(","),
        }
    }

    /// Whether `registered` (an RFC 4514 string) names this name; see the module documentation.
    pub(crate) fn matches(&self, registered: &str) -> bool {
        let Some(parsed) = parse(registered) else {
            return false;
        };
        if parsed.is_empty() || parsed.len() != self.rdns.len() {
            return false;
        }
        parsed.iter().rev().eq(self.rdns.iter()) || parsed.iter().eq(self.rdns.iter())
    }
}

impl std::fmt::Display for Name {
    /// RFC 4514: most specific RDN first, special characters escaped, types by name where
    /// [`ATTRIBUTES`] has one and by dotted OID otherwise, non-string values as `#hex`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.display)
    }
}

/// A value as found, before normalisation.
enum RawValue {
    Text(String),
    Der(Vec<u8>),
}

impl RawValue {
    fn normalised(&self) -> Value {
        match self {
            RawValue::Text(text) => Value::Text(
                text.split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
                    .to_lowercase(),
            ),
            RawValue::Der(der) => Value::Der(der.clone()),
        }
    }
}

/// The text of a string-typed value; the DER of anything else.
fn raw_value(any: &Any<'_>) -> RawValue {
    let header = &any.header;
    let text = if header.class() != Class::Universal || header.is_constructed() {
        None
    } else {
        match header.tag() {
            Tag::Utf8String
            | Tag::PrintableString
            | Tag::Ia5String
            | Tag::NumericString
            | Tag::VisibleString => std::str::from_utf8(any.data).ok().map(str::to_owned),
            // T.61 is not ASCII in general; its ASCII subset is common and unambiguous.
            Tag::TeletexString if any.data.is_ascii() => {
                std::str::from_utf8(any.data).ok().map(str::to_owned)
            }
            Tag::BmpString if any.data.len().is_multiple_of(2) => {
                let units = any
                    .data
                    .chunks_exact(2)
                    .map(|pair| u16::from_be_bytes([pair[0], pair[1]]));
                char::decode_utf16(units)
                    .collect::<Result<String, _>>()
                    .ok()
            }
            Tag::UniversalString if any.data.len().is_multiple_of(4) => any
                .data
                .chunks_exact(4)
                .map(|quad| {
                    char::from_u32(u32::from_be_bytes([quad[0], quad[1], quad[2], quad[3]]))
                })
                .collect::<Option<String>>(),
            _ => None,
        }
    };
    match text {
        Some(text) => RawValue::Text(text),
        None => RawValue::Der(any.to_der_vec().unwrap_or_else(|_| any.data.to_vec())),
    }
}

fn type_name(oid: &str) -> &str {
    ATTRIBUTES
        .iter()
        .find(|(known, _)| *known == oid)
        .map_or(oid, |(_, names)| names[0])
}

fn oid_of(attribute_type: &str) -> Option<String> {
    let dotted = attribute_type
        .get(..4)
        .filter(|prefix| prefix.eq_ignore_ascii_case("oid."))
        .map_or(attribute_type, |_| &attribute_type[4..]);
    if is_numeric_oid(dotted) {
        return Some(dotted.to_owned());
    }
    ATTRIBUTES
        .iter()
        .find(|(_, names)| names.iter().any(|n| n.eq_ignore_ascii_case(attribute_type)))
        .map(|(oid, _)| (*oid).to_owned())
}

fn is_numeric_oid(s: &str) -> bool {
    let mut arcs = 0;
    for arc in s.split('.') {
        let well_formed = !arc.is_empty()
            && arc.bytes().all(|b| b.is_ascii_digit())
            && (arc == "0" || !arc.starts_with('0'));
        if !well_formed {
            return false;
        }
        arcs += 1;
    }
    arcs >= 2
}

/// RFC 4514 §2.4: escapes what must be escaped, and nothing else.
fn escape(value: &RawValue) -> String {
    let text = match value {
        RawValue::Text(text) => text,
        RawValue::Der(der) => {
            let mut out = String::with_capacity(1 + der.len() * 2);
            out.push('#');
            for byte in der {
                let _ = write!(out, "{byte:02x}");
            }
            return out;
        }
    };
    let last = text.chars().count().saturating_sub(1);
    let mut out = String::with_capacity(text.len());
    for (i, c) in text.chars().enumerate() {
        match c {
            '"' | '+' | ',' | ';' | '<' | '>' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ' ' if i == 0 || i == last => out.push_str("\\ "),
            '#' if i == 0 => out.push_str("\\#"),
            '\0' => out.push_str("\\00"),
            _ => out.push(c),
        }
    }
    out
}

/// Parses an RFC 4514 string into RDNs in the string's order; `None` when it is not one.
fn parse(dn: &str) -> Option<Vec<Rdn>> {
    let mut parser = Parser {
        input: dn.as_bytes(),
        at: 0,
    };
    parser.skip_spaces();
    if parser.at_end() {
        return Some(Vec::new());
    }
    let mut rdns = Vec::new();
    let mut attributes = Vec::new();
    loop {
        attributes.push(parser.attribute()?);
        parser.skip_spaces();
        match parser.next() {
            None => break,
            Some(b'+') => {}
            Some(b',') => {
                attributes.sort();
                rdns.push(Rdn(std::mem::take(&mut attributes)));
            }
            Some(_) => return None,
        }
    }
    attributes.sort();
    rdns.push(Rdn(attributes));
    Some(rdns)
}

struct Parser<'a> {
    input: &'a [u8],
    at: usize,
}

impl Parser<'_> {
    fn at_end(&self) -> bool {
        self.at >= self.input.len()
    }

    fn peek(&self) -> Option<u8> {
        self.input.get(self.at).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let byte = self.peek()?;
        self.at += 1;
        Some(byte)
    }

    fn skip_spaces(&mut self) {
        while self.peek() == Some(b' ') {
            self.at += 1;
        }
    }

    /// `type = value`, with spaces around either.
    fn attribute(&mut self) -> Option<Attribute> {
        self.skip_spaces();
        let start = self.at;
        while matches!(self.peek(), Some(b) if b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        {
            self.at += 1;
        }
        let attribute_type = std::str::from_utf8(&self.input[start..self.at]).ok()?;
        let oid = oid_of(attribute_type)?;
        self.skip_spaces();
        if self.next()? != b'=' {
            return None;
        }
        self.skip_spaces();
        let value = if self.peek() == Some(b'#') {
            self.at += 1;
            self.hex_value()?
        } else {
            self.string_value()?
        };
        Some(Attribute { oid, value })
    }

    /// `#` followed by the hex of a BER-encoded value.
    fn hex_value(&mut self) -> Option<Value> {
        let start = self.at;
        while matches!(self.peek(), Some(b) if b.is_ascii_hexdigit()) {
            self.at += 1;
        }
        let hex = &self.input[start..self.at];
        if hex.is_empty() || !hex.len().is_multiple_of(2) {
            return None;
        }
        let der = hex
            .chunks_exact(2)
            .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok())
            .collect::<Option<Vec<u8>>>()?;
        let (rest, any) = Any::from_der(&der).ok()?;
        if !rest.is_empty() {
            return None;
        }
        Some(raw_value(&any).normalised())
    }

    /// An RFC 4514 string, up to an unescaped `,` or `+`; unescaped trailing spaces are not
    /// part of it.
    fn string_value(&mut self) -> Option<Value> {
        let mut bytes = Vec::new();
        // The length without unescaped trailing spaces.
        let mut significant = 0;
        while let Some(byte) = self.peek() {
            match byte {
                b',' | b'+' => break,
                b'"' | b';' | b'<' | b'>' | 0 => return None,
                b'\\' => {
                    self.at += 1;
                    let escaped = self.next()?;
                    if escaped.is_ascii_hexdigit() {
                        let low = self.next()?;
                        let pair = [escaped, low];
                        let hex = std::str::from_utf8(&pair).ok()?;
                        bytes.push(u8::from_str_radix(hex, 16).ok()?);
                    } else if b"\"+,;<>\\ #=".contains(&escaped) {
                        bytes.push(escaped);
                    } else {
                        return None;
                    }
                    significant = bytes.len();
                }
                _ => {
                    self.at += 1;
                    bytes.push(byte);
                    if byte != b' ' {
                        significant = bytes.len();
                    }
                }
            }
        }
        bytes.truncate(significant);
        let text = String::from_utf8(bytes).ok()?;
        Some(RawValue::Text(text).normalised())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A certificate subject with RDNs in DER order (country first), as CAs issue them.
    fn subject(rdns: &[&[(&str, &str)]]) -> Name {
        let mut params = rcgen::CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        for rdn in rdns {
            assert_eq!(rdn.len(), 1, "rcgen writes one attribute per RDN");
            let (oid, value) = rdn[0];
            let arcs: Vec<u64> = oid.split('.').map(|a| a.parse().unwrap()).collect();
            params.distinguished_name.push(
                rcgen::DnType::CustomDnType(arcs),
                rcgen::DnValue::Utf8String(value.to_owned()),
            );
        }
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let (_, parsed) = x509_parser::parse_x509_certificate(cert.der()).unwrap();
        Name::from_x509(parsed.subject())
    }

    fn acme() -> Name {
        subject(&[
            &[("2.5.4.6", "DE")],
            &[("2.5.4.10", "Acme Corp")],
            &[("2.5.4.3", "acme-client")],
        ])
    }

    #[test]
    fn the_subject_is_printed_most_specific_first() {
        assert_eq!(acme().to_string(), "CN=acme-client,O=Acme Corp,C=DE");
    }

    #[test]
    fn the_printed_subject_matches_itself() {
        let name = subject(&[
            &[("2.5.4.6", "DE")],
            &[("2.5.4.10", "Acme, Inc. + \"Partners\"")],
            &[("2.5.4.7", "#hash")],
            &[("2.5.4.3", " #lead and trail ")],
            &[("1.2.3.4", "custom")],
        ]);
        let shown = name.to_string();
        assert_eq!(
            shown,
            r#"1.2.3.4=custom,CN=\ #lead and trail\ ,L=\#hash,O=Acme\, Inc. \+ \"Partners\",C=DE"#
        );
        assert!(name.matches(&shown), "{shown}");
    }

    #[test]
    fn the_same_name_written_differently_matches() {
        let name = acme();
        for dn in [
            "CN=acme-client,O=Acme Corp,C=DE",
            "cn=acme-client, o=Acme Corp, c=DE",
            "  CN = acme-client ,O= Acme Corp , C =DE  ",
            "commonName=acme-client,organizationName=Acme Corp,countryName=DE",
            "2.5.4.3=acme-client,2.5.4.10=Acme Corp,OID.2.5.4.6=DE",
            "CN=ACME-CLIENT,O=acme   corp,C=de",
            r"CN=acme\2Dclient,O=Acme\20Corp,C=DE",
            // The certificate's own order, as OpenSSL prints it.
            "C=DE,O=Acme Corp,CN=acme-client",
            // The value as BER: a PrintableString "DE".
            "CN=acme-client,O=Acme Corp,C=#13024445",
        ] {
            assert!(name.matches(dn), "{dn}");
        }
    }

    #[test]
    fn other_names_do_not_match() {
        let name = acme();
        for dn in [
            "CN=acme-client,O=Acme Corp",
            "CN=acme-client",
            "CN=acme-client,O=Acme Corp,C=DE,DC=example",
            "CN=acme-client,O=Acme Corp,C=FR",
            "CN=acme-client2,O=Acme Corp,C=DE",
            "O=Acme Corp,CN=acme-client,C=DE",
            "CN=acme-client+O=Acme Corp,C=DE",
            "OU=acme-client,O=Acme Corp,C=DE",
            "CN=acme-client,O=Acme Corp,C=#0c024445ff",
        ] {
            assert!(!name.matches(dn), "{dn}");
        }
    }

    #[test]
    fn a_string_that_cannot_be_parsed_matches_nothing() {
        let name = acme();
        for dn in [
            "",
            "   ",
            "CN=acme-client,O=Acme Corp,C=DE,",
            "CN=acme-client;O=Acme Corp;C=DE",
            "NOSUCHTYPE=x,O=Acme Corp,C=DE",
            "CN acme-client,O=Acme Corp,C=DE",
            r"CN=acme\client,O=Acme Corp,C=DE",
            r"CN=acme-client\,O=Acme Corp,C=DE\",
            "CN=acme-client,O=Acme Corp,C=#zz",
            "CN=\"acme-client\",O=Acme Corp,C=DE",
            "01.2=x",
        ] {
            assert!(!name.matches(dn), "{dn:?}");
        }
    }

    #[test]
    fn multi_valued_rdns_compare_as_sets() {
        // rcgen writes one attribute per RDN, so build the name from an RFC 4514 string.
        let cert = parse("CN=a+UID=b,O=Acme").unwrap();
        let name = Name {
            rdns: cert.into_iter().rev().collect(),
            display: String::new(),
        };
        assert!(name.matches("UID=b+CN=a,O=Acme"));
        assert!(name.matches("CN=a + UID=b , O=Acme"));
        assert!(!name.matches("CN=a,UID=b,O=Acme"));
    }

    #[test]
    fn escaped_utf8_and_escaped_spaces_are_values() {
        let name = subject(&[&[("2.5.4.3", "José ")]]);
        assert!(name.matches(r"CN=Jos\C3\A9"));
        assert!(name.matches("CN=JOSÉ"));
        assert!(!name.matches(r"CN=Jos\C3"));
    }
}
