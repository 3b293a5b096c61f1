//! RFC 9440: the client certificate a TLS-terminating proxy forwards, in `Client-Cert` (one
//! Structured Field Byte Sequence, `:base64 of the DER:`) and, optionally, the rest of the chain
//! in `Client-Cert-Chain` (a List of Byte Sequences, possibly over several field lines).
//!
//! The parse is strict: anything but that syntax (two `Client-Cert` lines, characters outside
//! the base64 alphabet, an empty list member, parameters, which RFC 9440 does not define) is
//! malformed, and a malformed field yields no certificate. Base64 padding may be left out and
//! stray bits in the last character are tolerated, as RFC 8941 §4.2.7 asks of parsers.

use axum::http::HeaderMap;
use base64::Engine;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use rustls::pki_types::CertificateDer;

use super::MAX_CHAIN;

pub(crate) const CLIENT_CERT: &str = "client-cert";
pub(crate) const CLIENT_CERT_CHAIN: &str = "client-cert-chain";

const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// Whether `headers` hold more than one `Client-Cert` field line: one certificate, sent twice or
/// two different ones, is not something a proxy does.
pub(crate) fn repeated_client_cert(headers: &HeaderMap) -> bool {
    headers.get_all(CLIENT_CERT).iter().nth(1).is_some()
}

/// The chain the fields carry, leaf first: `Ok(None)` without `Client-Cert`, `Err` with a
/// reason when the fields are malformed or the chain is longer than [`MAX_CHAIN`].
pub(crate) fn chain_from_headers(
    headers: &HeaderMap,
) -> Result<Option<Vec<CertificateDer<'static>>>, &'static str> {
    let mut lines = headers.get_all(CLIENT_CERT).iter();
    let Some(leaf) = lines.next() else {
        return Ok(None);
    };
    if lines.next().is_some() {
        return Err("more than one Client-Cert field line");
    }
    let leaf = leaf.to_str().map_err(|_| "Client-Cert is not ASCII")?;
    let mut chain = vec![byte_sequence(leaf)?];
    // A List may be split over several field lines; they combine as one, comma-separated.
    for line in headers.get_all(CLIENT_CERT_CHAIN) {
        let line = line
            .to_str()
            .map_err(|_| "Client-Cert-Chain is not ASCII")?;
        if line.trim_matches(is_ows).is_empty() {
            continue;
        }
        for member in line.split(',') {
            if chain.len() == MAX_CHAIN {
                return Err("Client-Cert-Chain is longer than accepted");
            }
            chain.push(byte_sequence(member)?);
        }
    }
    Ok(Some(chain))
}

/// One RFC 8941 Byte Sequence, `:base64:`, with optional white space around it.
fn byte_sequence(field: &str) -> Result<CertificateDer<'static>, &'static str> {
    let inner = field
        .trim_matches(is_ows)
        .strip_prefix(':')
        .and_then(|rest| rest.strip_suffix(':'))
        .ok_or("not a Structured Field Byte Sequence")?;
    if inner.is_empty() {
        return Err("an empty Byte Sequence");
    }
    if !inner
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'=')
    {
        return Err("a Byte Sequence with characters outside base64");
    }
    LENIENT
        .decode(inner)
        .map(CertificateDer::from)
        .map_err(|_| "a Byte Sequence that is not valid base64")
}

fn is_ows(c: char) -> bool {
    c == ' ' || c == '\t'
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(fields: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in fields {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn parse(fields: &[(&'static str, &str)]) -> Result<Option<Vec<Vec<u8>>>, &'static str> {
        chain_from_headers(&headers(fields))
            .map(|chain| chain.map(|c| c.iter().map(|der| der.to_vec()).collect()))
    }

    #[test]
    fn a_leaf_and_its_chain_are_read() {
        assert_eq!(parse(&[]), Ok(None));
        assert_eq!(
            parse(&[(CLIENT_CERT, ":AQID:")]),
            Ok(Some(vec![vec![1, 2, 3]]))
        );
        assert_eq!(
            parse(&[
                (CLIENT_CERT, " :AQID: "),
                (CLIENT_CERT_CHAIN, ":BAU=: , :Bg==:"),
                (CLIENT_CERT_CHAIN, "\t:Bw:"),
            ]),
            Ok(Some(vec![vec![1, 2, 3], vec![4, 5], vec![6], vec![7]]))
        );
        assert_eq!(
            parse(&[(CLIENT_CERT, ":AQID:"), (CLIENT_CERT_CHAIN, "")]),
            Ok(Some(vec![vec![1, 2, 3]]))
        );
    }

    #[test]
    fn a_chain_without_a_leaf_is_nothing() {
        assert_eq!(parse(&[(CLIENT_CERT_CHAIN, ":AQID:")]), Ok(None));
    }

    #[test]
    fn malformed_fields_are_refused() {
        for fields in [
            &[(CLIENT_CERT, "AQID")][..],
            &[(CLIENT_CERT, ":AQID")],
            &[(CLIENT_CERT, "::")],
            &[(CLIENT_CERT, ":AQ-D:")],
            &[(CLIENT_CERT, ":AQ ID:")],
            &[(CLIENT_CERT, ":A:")],
            &[(CLIENT_CERT, ":AQID:;param=1")],
            &[(CLIENT_CERT, "\"AQID\"")],
            &[(CLIENT_CERT, ":AQID:"), (CLIENT_CERT, ":AQID:")],
            &[(CLIENT_CERT, ":AQID:, :AQID:")],
            &[
                (CLIENT_CERT, ":AQID:"),
                (CLIENT_CERT_CHAIN, ":AQID:,,:AQID:"),
            ],
            &[(CLIENT_CERT, ":AQID:"), (CLIENT_CERT_CHAIN, ":AQID:,")],
            &[(CLIENT_CERT, ":AQID:"), (CLIENT_CERT_CHAIN, "AQID")],
        ] {
            assert!(parse(fields).is_err(), "{fields:?}");
        }
    }

    #[test]
    fn a_chain_longer_than_accepted_is_refused() {
        let members = [":AQID:"; MAX_CHAIN - 1].join(",");
        assert_eq!(
            parse(&[(CLIENT_CERT, ":AQID:"), (CLIENT_CERT_CHAIN, &members)])
                .unwrap()
                .unwrap()
                .len(),
            MAX_CHAIN
        );
        let members = [":AQID:"; MAX_CHAIN].join(",");
        assert!(parse(&[(CLIENT_CERT, ":AQID:"), (CLIENT_CERT_CHAIN, &members)]).is_err());
    }
}
