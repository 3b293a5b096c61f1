//! Criterion micro-benchmarks of the per-token work: signing (claims to compact JWS) and the full
//! verification the partner API does on a cache miss, for ES256 and EdDSA, beside scope parsing
//! and client-secret hashing. Run with `cargo bench -p keys --bench tokens`.

use criterion::{Criterion, criterion_group, criterion_main};
use keys::verify::{Expectations, VerifyingKey, parse_header, verify_with_key};
use keys::{Algorithm, SigningKey};
use shared_claims::{AccessTokenClaims, ScopeSet};

fn claims(now: i64) -> AccessTokenClaims {
    serde_json::from_value(serde_json::json!({
        "iss": "https://auth.example",
        "sub": "cl_0123456789abcdef",
        "aud": "partner-api",
        "exp": now + 600,
        "nbf": now,
        "iat": now,
        "jti": "0193a3b4-7c1d-7e2f-8a9b-0c1d2e3f4a5b",
        "client_id": "cl_0123456789abcdef",
        "scope": "orders:read catalog:read",
        "partner_id": "acme",
    }))
    .expect("valid claims")
}

fn tokens(c: &mut Criterion) {
    keys::install_crypto_provider();
    // jsonwebtoken checks `exp` and `nbf` against the real clock.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs() as i64;
    let claims = claims(now);
    for (alg, name) in [(Algorithm::ES256, "ES256"), (Algorithm::EdDSA, "EdDSA")] {
        let key = SigningKey::generate(alg).expect("a key");
        c.bench_function(&format!("sign {name} (claims to compact JWS)"), |b| {
            b.iter(|| key.sign_jwt(std::hint::black_box(&claims)).expect("signed"))
        });
        let token = key.sign_jwt(&claims).expect("signed");
        let verifying = VerifyingKey::from_jwk(key.public_jwk()).expect("a verifying key");
        let expect = Expectations {
            issuer: "https://auth.example",
            audience: Some("partner-api"),
            leeway: 30,
            now,
        };
        c.bench_function(&format!("verify {name} (header, signature, claims)"), |b| {
            b.iter(|| {
                let header = parse_header(std::hint::black_box(&token)).expect("a header");
                verify_with_key(&token, &header, &verifying, expect).expect("valid")
            })
        });
    }
    c.bench_function("scope parse (4 scopes)", |b| {
        b.iter(|| {
            ScopeSet::parse(std::hint::black_box(
                "orders:read catalog:read invoices:read inventory:read",
            ))
        })
    });
    c.bench_function("SHA-256 of a token (verified-token cache key)", |b| {
        let token = "e".repeat(560);
        b.iter(|| {
            ring::digest::digest(
                &ring::digest::SHA256,
                std::hint::black_box(token.as_bytes()),
            )
        })
    });
}

criterion_group!(benches, tokens);
criterion_main!(benches);
