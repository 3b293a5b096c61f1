//! Just enough DER to read an RSA public key, which ring verifies from (n, e) but does not parse
//! out of a SubjectPublicKeyInfo.
//!
//! Every read is bounds-checked and returns `None` on malformed input; ring validates the
//! resulting modulus and exponent before use.

const INTEGER: u8 = 0x02;
const BIT_STRING: u8 = 0x03;
const OBJECT_IDENTIFIER: u8 = 0x06;
const SEQUENCE: u8 = 0x30;

/// The DER contents of the rsaEncryption OID, 1.2.840.113549.1.1.1.
const RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];

/// Reads (n, e), big-endian without leading zeros, from a PKCS#1 `RSAPublicKey` or an X.509
/// `SubjectPublicKeyInfo` wrapping one.
pub(super) fn rsa_public_key_components(der: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let body = only(SEQUENCE, der)?;
    let (tag, first, rest) = read(body)?;
    match tag {
        INTEGER => {
            let e = only(INTEGER, rest)?;
            Some((unsigned(first)?, unsigned(e)?))
        }
        SEQUENCE => {
            let (oid, _parameters) = expect(OBJECT_IDENTIFIER, first)?;
            if oid != RSA_ENCRYPTION {
                return None;
            }
            let bits = only(BIT_STRING, rest)?;
            // The first octet of a BIT STRING counts unused trailing bits, zero for a key.
            let (&0, inner) = bits.split_first()? else {
                return None;
            };
            let inner = only(SEQUENCE, inner)?;
            let (n, rest) = expect(INTEGER, inner)?;
            let e = only(INTEGER, rest)?;
            Some((unsigned(n)?, unsigned(e)?))
        }
        _ => None,
    }
}

/// Reads one tag-length-value, returning the tag, the value and what follows.
fn read(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first_len, rest) = rest.split_first()?;
    let (len, rest) = if first_len < 0x80 {
        (usize::from(first_len), rest)
    } else {
        // Long form: the low bits count the length octets. Zero is BER's indefinite length, and
        // more than four octets would describe a key far larger than any RSA key.
        let count = usize::from(first_len & 0x7f);
        if count == 0 || count > 4 {
            return None;
        }
        let (octets, rest) = rest.split_at_checked(count)?;
        let len = octets.iter().try_fold(0usize, |len, &octet| {
            len.checked_mul(256)?.checked_add(usize::from(octet))
        })?;
        (len, rest)
    };
    let (value, rest) = rest.split_at_checked(len)?;
    Some((tag, value, rest))
}

/// Reads one element that must have `tag`, returning its value and what follows.
fn expect(tag: u8, input: &[u8]) -> Option<(&[u8], &[u8])> {
    match read(input)? {
        (found, value, rest) if found == tag => Some((value, rest)),
        _ => None,
    }
}

/// Reads an element that must have `tag` and be the last one in `input`.
fn only(tag: u8, input: &[u8]) -> Option<&[u8]> {
    match expect(tag, input)? {
        (value, []) => Some(value),
        _ => None,
    }
}

/// Converts a DER INTEGER to unsigned big-endian bytes, refusing negative numbers and zero.
fn unsigned(integer: &[u8]) -> Option<Vec<u8>> {
    // DER integers are two's complement, so a set top bit means a negative number.
    if integer.first()? & 0x80 != 0 {
        return None;
    }
    let start = integer.iter().position(|&octet| octet != 0)?;
    Some(integer[start..].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_minimal_pkcs1_key() {
        // SEQUENCE { INTEGER 0x00ff, INTEGER 3 }
        let der = [0x30, 0x07, 0x02, 0x02, 0x00, 0xff, 0x02, 0x01, 0x03];
        assert_eq!(
            rsa_public_key_components(&der),
            Some((vec![0xff], vec![0x03]))
        );
    }

    #[test]
    fn rejects_malformed_input_without_panicking() {
        let cases: [&[u8]; 10] = [
            &[],
            &[0x30],
            &[0x30, 0x80],
            &[0x30, 0x85, 1, 1, 1, 1, 1],
            &[0x30, 0x84, 0xff, 0xff, 0xff, 0xff],
            &[0x30, 0x03, 0x02, 0x01, 0x80],
            &[0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x00],
            &[0x30, 0x03, 0x02, 0x01, 0x01],
            &[0x31, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x03],
            &[0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x03, 0x00],
        ];
        for der in cases {
            assert_eq!(rsa_public_key_components(der), None, "{der:02x?}");
        }
    }
}
