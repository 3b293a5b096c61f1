//! Arbitrary bytes as a JWKS document: parsing must not panic, symmetric keys must never be
//! trusted, and a token verified against whatever keys come out must not panic either.
#![no_main]

use keys::verify::{Expectations, parse_header, verify_with_key};
use libfuzzer_sys::fuzz_target;

const TOKEN: &str = "eyJhbGciOiJFUzI1NiIsInR5cCI6ImF0K2p3dCIsImtpZCI6ImsifQ.eyJpc3MiOiJodHRwOi8vYXV0aC50ZXN0In0.AAAA";

fuzz_target!(|data: &[u8]| {
    keys::install_crypto_provider();
    let Ok(keys) = resource_api::jwks::parse_jwks(data) else { return };
    let header = parse_header(TOKEN).expect("fixed header parses");
    for key in keys.values() {
        assert!(matches!(
            key.alg,
            keys::Algorithm::ES256 | keys::Algorithm::EdDSA | keys::Algorithm::RS256
        ));
        let expect = Expectations { issuer: "http://auth.test", audience: Some("partner-api"), leeway: 30, now: 0 };
        let _ = verify_with_key(TOKEN, &header, key, expect);
    }
});
