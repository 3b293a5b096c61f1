//! Arbitrary bytes as a bearer token: the verifier must refuse without panicking, and must never
//! accept anything (no input is signed by the trusted key).
#![no_main]

use std::sync::OnceLock;

use keys::verify::{Expectations, VerifyingKey, parse_header, verify_with_key};
use libfuzzer_sys::fuzz_target;

fn trusted() -> &'static VerifyingKey {
    static KEY: OnceLock<VerifyingKey> = OnceLock::new();
    KEY.get_or_init(|| {
        keys::install_crypto_provider();
        let key = keys::SigningKey::generate(keys::Algorithm::ES256).expect("key");
        VerifyingKey::from_jwk(key.public_jwk()).expect("verifying key")
    })
}

fuzz_target!(|data: &[u8]| {
    let token = String::from_utf8_lossy(data);
    let Ok(header) = parse_header(&token) else { return };
    let expect = Expectations { issuer: "http://auth.test", audience: Some("partner-api"), leeway: 30, now: 1_800_000_000 };
    assert!(verify_with_key(&token, &header, trusted(), expect).is_err(), "an unsigned input was accepted");
});
