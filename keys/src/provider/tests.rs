//! Tests of the ring provider through jsonwebtoken's public API, with real keys.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::crypto::CryptoProvider;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
use ring::signature::{ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair};
use serde::{Deserialize, Serialize};

use super::*;
use crate::{SigningKey, install_crypto_provider};

/// A 2048-bit RSA key made with `openssl genpkey` for these tests only; it protects nothing.
const RSA_PKCS1_PRIVATE_KEY: &str = concat!(
    "MIIEowIBAAKCAQEA0UjFqxJYvZUMe14+hEwDEMQmLozVoSjS5KjLOc88hr4BtCFPiFa+DENmvWNg5Z0vBKcwQUNi",
    "KNJMw+kUGRSIjjzEWSqD/MnoCNo7j05MvRsjGXGPEhp9YeiHGuQjn+LDnnaZfch84pM8o/yQA+c72nykMSrQVI51",
    "TEaLKjUP04AQr1j60oOUgLXwNVP/LZIHRP4gihMs0y0mnZOkjxH8Bhhw43AWiYIef1dx20dXLic9T4vJF1kaSdsy",
    "OWHqNIpIvyMkP2FxOqRA40djWI/99gXvT8ZGTTyD3vD0Af+D3CXSujufS9IGLRSvrRMIrSpCUpUEYGl9y87UUaMT",
    "wA1IrwIDAQABAoIBABbe9wsc9CmzsiuBPx/CFsusQ+fuaCI2jeWDNMJajWjENvdydHiX0ikQ7Jdh1uMA7HR7uOBI",
    "9t8zLER0okejYND6fxKnfMkRX5QoFT4x9lzsLEfJizMVRgJ/INSlfecpJuuYVmnSkSNJp+Tb4vkqOfZEjMT6ws2a",
    "y+LMCsVQCyy3rWaFkk1fe5jSCJLNWfcZgqNvdochRo/k+LLGG6wrFzEoew6mdQ5euc9BFrnB6EYraD3T42Y8rZTA",
    "9F5Jkr+V0dZ2DTWYNH8MalosGv7K4VwU1CUx8UJS8puul2JdRD8qsdo7QltHabXIs9sr7nHmy5MCAwfS5M5cgXAw",
    "Fv2Z6EECgYEA95JfkAeb3f4dSnVhQe0Bd5GQNxbyhz3ZUxIq4iCPM+5Rly0CryrepbLXG9crkqU9XzAEjPsbLC+Q",
    "tPqQfxk8hxCop68ExrqOtvXGnClLjSz3hVT6qDBuTzszOuQY1GyP+gJeUBBZnHVANP7vcF2OzUDJ/b2D2mvNf9/+",
    "/a+1mbECgYEA2Gi3nk1Ow7mDOPxuGdBGb+0d6u4F69CJWZgtQ+MnFbhsRFU4cP21RBzSehZjCmBRzBBeOmPe22Se",
    "qZhlJd1NkA795ODOr9Ew3mfyQoqiTKY8FkQRX8Pd1AlIg/d9EzfcugQ+8RAVy4r99JKNVwxK1k0AEabClhrUOlNr",
    "EVtNQF8CgYAJXGF8oq0EEc2tuQ56XanGiZx4WMfG0VHcUD2K20xO3F39Z1hIo0hT35U+mj4th03wwXIKmpwGaa4B",
    "CdBY3e1p9flKjdWSZg9rX5Oo5+7RYbfiNLpdjac+G7DuMx21On2fKGPEhzm8LrrExjbrer4hiKeajoXjxlu40BFm",
    "KjSloQKBgQCf+6Iq3BnrZbyVpz+5w5ge7FterwIfl7XCT1a/RjFBxGn9hkbIeTbFGM2cxeoH5LbztfIDFovNAzCs",
    "TeYQvO63He4igvMpVOvcr1mQSa68HXR0PXPeqQzX0NkT/iUvzO9XcQYa7fo+1Azz/leQz5yPmrL/WZmmoETerYaM",
    "eUO93wKBgDfyaBTqGDUg84KpJmZ7eR2mzVo9MdcgHXdxk69KOYUIsCPTtGLJaHftWP50wv47Zyf1/lNgoNNYUoYP",
    "1zdpIc7JrQlgCS/PvUVpGGkX/8lr6eD2plVwmV+GbncJ9jNOj7lZLTuJ20B4bgjkjNMMlOCiGQ8NKAck/E5z58aw",
    "XPQm",
);

const RSA_SPKI_PUBLIC_KEY: &str = concat!(
    "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA0UjFqxJYvZUMe14+hEwDEMQmLozVoSjS5KjLOc88hr4B",
    "tCFPiFa+DENmvWNg5Z0vBKcwQUNiKNJMw+kUGRSIjjzEWSqD/MnoCNo7j05MvRsjGXGPEhp9YeiHGuQjn+LDnnaZ",
    "fch84pM8o/yQA+c72nykMSrQVI51TEaLKjUP04AQr1j60oOUgLXwNVP/LZIHRP4gihMs0y0mnZOkjxH8Bhhw43AW",
    "iYIef1dx20dXLic9T4vJF1kaSdsyOWHqNIpIvyMkP2FxOqRA40djWI/99gXvT8ZGTTyD3vD0Af+D3CXSujufS9IG",
    "LRSvrRMIrSpCUpUEYGl9y87UUaMTwA1IrwIDAQAB",
);

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Claims {
    sub: String,
    exp: u64,
}

fn claims(sub: &str) -> Claims {
    Claims {
        sub: sub.to_owned(),
        exp: jsonwebtoken::get_current_timestamp() + 300,
    }
}

fn validation(alg: Algorithm) -> Validation {
    let mut validation = Validation::new(alg);
    validation.validate_aud = false;
    validation
}

/// Replaces the claims segment, keeping the original header and signature.
fn with_claims(token: &str, replacement: &Claims) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(replacement).unwrap());
    format!("{}.{}.{}", parts[0], payload, parts[2])
}

/// Replaces the signature segment.
fn with_signature(token: &str, signature: &[u8]) -> String {
    let message = token.rsplit_once('.').unwrap().0;
    format!("{message}.{}", URL_SAFE_NO_PAD.encode(signature))
}

fn assert_invalid_signature<T: std::fmt::Debug>(result: jsonwebtoken::errors::Result<T>) {
    match result {
        Err(err) => assert_eq!(err.kind(), &ErrorKind::InvalidSignature),
        Ok(value) => panic!("accepted a bad token: {value:?}"),
    }
}

fn der_element(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    match u16::try_from(content.len()).unwrap() {
        len @ 0..=0x7f => out.push(len as u8),
        len @ 0x80..=0xff => out.extend([0x81, len as u8]),
        len => out.extend([0x82, (len >> 8) as u8, len as u8]),
    }
    out.extend_from_slice(content);
    out
}

fn rsa_pkcs1_private_key() -> Vec<u8> {
    STANDARD.decode(RSA_PKCS1_PRIVATE_KEY).unwrap()
}

/// Wraps the PKCS#1 key in a PKCS#8 PrivateKeyInfo, to exercise the other import path.
fn rsa_pkcs8_private_key() -> Vec<u8> {
    let algorithm = [
        der_element(
            0x06,
            &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01],
        ),
        der_element(0x05, &[]),
    ]
    .concat();
    let info = [
        der_element(0x02, &[0]),
        der_element(0x30, &algorithm),
        der_element(0x04, &rsa_pkcs1_private_key()),
    ]
    .concat();
    der_element(0x30, &info)
}

#[test]
fn hs256_tokens_verify_and_tampered_ones_do_not() {
    install_crypto_provider();
    let secret = b"a shared secret of thirty-two bytes!";
    let token = encode(
        &Header::new(Algorithm::HS256),
        &claims("alice"),
        &EncodingKey::from_secret(secret).unwrap(),
    )
    .unwrap();
    let key = DecodingKey::from_secret(secret).unwrap();
    let data = decode::<Claims>(&token, &key, &validation(Algorithm::HS256)).unwrap();
    assert_eq!(data.claims.sub, "alice");

    let tampered = with_claims(&token, &claims("mallory"));
    assert_invalid_signature(decode::<Claims>(
        &tampered,
        &key,
        &validation(Algorithm::HS256),
    ));

    let mut signature = URL_SAFE_NO_PAD
        .decode(token.rsplit_once('.').unwrap().1)
        .unwrap();
    signature[0] ^= 1;
    let tampered = with_signature(&token, &signature);
    assert_invalid_signature(decode::<Claims>(
        &tampered,
        &key,
        &validation(Algorithm::HS256),
    ));

    let wrong_key = DecodingKey::from_secret(b"another secret").unwrap();
    assert_invalid_signature(decode::<Claims>(
        &token,
        &wrong_key,
        &validation(Algorithm::HS256),
    ));
}

#[test]
fn hs384_and_hs512_round_trip() {
    install_crypto_provider();
    for alg in [Algorithm::HS384, Algorithm::HS512] {
        let token = encode(
            &Header::new(alg),
            &claims("bob"),
            &EncodingKey::from_secret(b"secret").unwrap(),
        )
        .unwrap();
        let key = DecodingKey::from_secret(b"secret").unwrap();
        assert!(decode::<Claims>(&token, &key, &validation(alg)).is_ok());
    }
}

#[test]
fn es256_signature_of_all_zero_bytes_is_rejected() {
    install_crypto_provider();
    let signer = SigningKey::generate(crate::Algorithm::ES256).unwrap();
    let token = signer.sign_jwt(&claims("carol")).unwrap();
    let key = DecodingKey::from_jwk(signer.public_jwk()).unwrap();
    assert!(decode::<Claims>(&token, &key, &validation(Algorithm::ES256)).is_ok());

    let zeroed = with_signature(&token, &[0u8; 64]);
    assert_invalid_signature(decode::<Claims>(
        &zeroed,
        &key,
        &validation(Algorithm::ES256),
    ));
    // A DER-encoded (ASN.1) signature is the wrong format for JWS and must not be accepted either.
    let short = with_signature(&token, &[0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00]);
    assert_invalid_signature(decode::<Claims>(
        &short,
        &key,
        &validation(Algorithm::ES256),
    ));
}

#[test]
fn eddsa_signature_of_zero_bytes_and_a_tampered_payload_are_rejected() {
    install_crypto_provider();
    let signer = SigningKey::generate(crate::Algorithm::EdDSA).unwrap();
    let token = signer.sign_jwt(&claims("dave")).unwrap();
    let key = DecodingKey::from_jwk(signer.public_jwk()).unwrap();
    let zeroed = with_signature(&token, &[0u8; 64]);
    assert_invalid_signature(decode::<Claims>(
        &zeroed,
        &key,
        &validation(Algorithm::EdDSA),
    ));
    let tampered = with_claims(&token, &claims("eve"));
    assert_invalid_signature(decode::<Claims>(
        &tampered,
        &key,
        &validation(Algorithm::EdDSA),
    ));
}

#[test]
fn jsonwebtoken_encode_signs_with_our_pkcs8_keys() {
    install_crypto_provider();
    let cases = [
        (
            crate::Algorithm::ES256,
            EncodingKey::from_ec_der as fn(&[u8]) -> EncodingKey,
        ),
        (crate::Algorithm::EdDSA, EncodingKey::from_ed_der),
    ];
    for (alg, encoding_key) in cases {
        let pkcs8 = crate::signing_key::generate_pkcs8(alg).unwrap();
        let signer = SigningKey::from_pkcs8(alg, &pkcs8).unwrap();
        let token = encode(
            &Header::new(alg.to_jwt()),
            &claims("frank"),
            &encoding_key(&pkcs8),
        )
        .unwrap();
        let key = DecodingKey::from_jwk(signer.public_jwk()).unwrap();
        assert!(decode::<Claims>(&token, &key, &validation(alg.to_jwt())).is_ok());
    }
}

#[test]
fn es384_works_through_jwk_from_encoding_key() {
    install_crypto_provider();
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, &rng).unwrap();
    let encoding_key = EncodingKey::from_ec_der(pkcs8.as_ref());
    let token = encode(
        &Header::new(Algorithm::ES384),
        &claims("grace"),
        &encoding_key,
    )
    .unwrap();

    let jwk = Jwk::from_encoding_key(&encoding_key, Algorithm::ES384).unwrap();
    let key = DecodingKey::from_jwk(&jwk).unwrap();
    assert!(decode::<Claims>(&token, &key, &validation(Algorithm::ES384)).is_ok());
    assert_eq!(
        jwk.thumbprint(ThumbprintHash::SHA256).unwrap(),
        crate::thumbprint(&jwk).unwrap()
    );
}

#[test]
fn rsa_pkcs1_and_pss_sign_and_verify_from_every_key_form() {
    install_crypto_provider();
    let spki = STANDARD.decode(RSA_SPKI_PUBLIC_KEY).unwrap();
    let (n, e) = rsa_pub_components_from_public_key(&spki).unwrap();
    assert_eq!(
        rsa_pub_components_from_private_key(&rsa_pkcs1_private_key()).unwrap(),
        (n.clone(), e.clone())
    );
    assert_eq!(e, [0x01, 0x00, 0x01]);
    assert_eq!(n.len(), 256);

    // The PKCS#1 RSAPublicKey is the content of the SubjectPublicKeyInfo's BIT STRING.
    let pkcs1_public = spki[spki.len() - 270..].to_vec();
    assert_eq!(
        rsa_pub_components_from_public_key(&pkcs1_public).unwrap(),
        (n.clone(), e.clone())
    );

    let decoding_keys = [
        DecodingKey::from_rsa_der(&spki),
        DecodingKey::from_rsa_der(&pkcs1_public),
        DecodingKey::from_rsa_raw_components(&n, &e),
        DecodingKey::from_jwk(
            &Jwk::from_encoding_key(
                &EncodingKey::from_rsa_der(&rsa_pkcs1_private_key()),
                Algorithm::RS256,
            )
            .unwrap(),
        )
        .unwrap(),
    ];
    for private_key in [rsa_pkcs1_private_key(), rsa_pkcs8_private_key()] {
        let encoding_key = EncodingKey::from_rsa_der(&private_key);
        for alg in [
            Algorithm::RS256,
            Algorithm::RS384,
            Algorithm::RS512,
            Algorithm::PS256,
            Algorithm::PS384,
            Algorithm::PS512,
        ] {
            let token = encode(&Header::new(alg), &claims("heidi"), &encoding_key).unwrap();
            for key in &decoding_keys {
                assert!(
                    decode::<Claims>(&token, key, &validation(alg)).is_ok(),
                    "{alg:?}"
                );
            }
            let tampered = with_claims(&token, &claims("ivan"));
            assert_invalid_signature(decode::<Claims>(
                &tampered,
                &decoding_keys[0],
                &validation(alg),
            ));
        }
    }

    let jwk =
        Jwk::from_decoding_key(&DecodingKey::from_rsa_der(&spki), Some(Algorithm::RS256)).unwrap();
    let AlgorithmParameters::RSA(params) = &jwk.algorithm else {
        panic!("not an RSA JWK: {jwk:?}");
    };
    assert_eq!(params.e, "AQAB");
}

#[test]
fn keys_of_the_wrong_family_are_refused() {
    install_crypto_provider();
    let pkcs8 = crate::signing_key::generate_pkcs8(crate::Algorithm::ES256).unwrap();
    let signer = SigningKey::from_pkcs8(crate::Algorithm::ES256, &pkcs8).unwrap();
    let ec_public = DecodingKey::from_jwk(signer.public_jwk()).unwrap();
    // An attacker who flips the header to HS256 must not get the public key used as a secret.
    assert!((RING_PROVIDER.verifier_factory)(&Algorithm::HS256, &ec_public).is_err());
    assert!((RING_PROVIDER.verifier_factory)(&Algorithm::RS256, &ec_public).is_err());
    assert!((RING_PROVIDER.verifier_factory)(&Algorithm::EdDSA, &ec_public).is_err());
    let ec_private = EncodingKey::from_ec_der(&pkcs8);
    assert!((RING_PROVIDER.signer_factory)(&Algorithm::HS256, &ec_private).is_err());
    assert!((RING_PROVIDER.signer_factory)(&Algorithm::ES384, &ec_private).is_err());
}

#[test]
fn garbage_keys_are_errors_not_panics() {
    let garbage = b"definitely not a key";
    for alg in [Algorithm::ES256, Algorithm::ES384] {
        assert!((RING_PROVIDER.signer_factory)(&alg, &EncodingKey::from_ec_der(garbage)).is_err());
    }
    for alg in [Algorithm::RS256, Algorithm::PS512] {
        assert!((RING_PROVIDER.signer_factory)(&alg, &EncodingKey::from_rsa_der(garbage)).is_err());
        assert!(
            (RING_PROVIDER.verifier_factory)(&alg, &DecodingKey::from_rsa_der(garbage)).is_err()
        );
    }
    assert!(
        (RING_PROVIDER.signer_factory)(&Algorithm::EdDSA, &EncodingKey::from_ed_der(garbage))
            .is_err()
    );

    // Verifiers over garbage public keys build, since ring parses lazily, but never verify.
    let verifier =
        (RING_PROVIDER.verifier_factory)(&Algorithm::ES256, &DecodingKey::from_ec_der(garbage))
            .unwrap();
    assert!(verifier.verify(b"message", &vec![0u8; 64]).is_err());
    let verifier =
        (RING_PROVIDER.verifier_factory)(&Algorithm::EdDSA, &DecodingKey::from_ed_der(garbage))
            .unwrap();
    assert!(verifier.verify(b"message", &vec![0u8; 64]).is_err());
    let verifier = (RING_PROVIDER.verifier_factory)(
        &Algorithm::RS256,
        &DecodingKey::from_rsa_raw_components(&[0x01], &[0x03]),
    )
    .unwrap();
    assert!(verifier.verify(b"message", &vec![0u8; 256]).is_err());

    assert!(ec_pub_components_from_private_key(garbage, Algorithm::ES256).is_err());
    assert!(ec_pub_components_from_private_key(garbage, Algorithm::HS256).is_err());
    assert!(ed_pub_components_from_private_key(garbage, &EllipticCurve::Ed25519).is_err());
    assert!(ed_pub_components_from_private_key(garbage, &EllipticCurve::P256).is_err());
    assert!(rsa_pub_components_from_private_key(garbage).is_err());
    assert!(rsa_pub_components_from_public_key(garbage).is_err());
}

#[test]
fn key_utils_match_the_keys_we_publish() {
    let es_der = crate::signing_key::generate_pkcs8(crate::Algorithm::ES256).unwrap();
    let es = SigningKey::from_pkcs8(crate::Algorithm::ES256, &es_der).unwrap();
    let (curve, x, y) = ec_pub_components_from_private_key(&es_der, Algorithm::ES256).unwrap();
    let AlgorithmParameters::EllipticCurve(params) = &es.public_jwk().algorithm else {
        panic!("not an EC JWK");
    };
    assert_eq!(curve, EllipticCurve::P256);
    assert_eq!(URL_SAFE_NO_PAD.encode(x), params.x);
    assert_eq!(URL_SAFE_NO_PAD.encode(y), params.y);

    let ed_der = crate::signing_key::generate_pkcs8(crate::Algorithm::EdDSA).unwrap();
    let ed = SigningKey::from_pkcs8(crate::Algorithm::EdDSA, &ed_der).unwrap();
    let x = ed_pub_components_from_private_key(&ed_der, &EllipticCurve::Ed25519).unwrap();
    let AlgorithmParameters::OctetKeyPair(params) = &ed.public_jwk().algorithm else {
        panic!("not an OKP JWK");
    };
    assert_eq!(URL_SAFE_NO_PAD.encode(x), params.x);
}

#[test]
fn compute_digest_is_sha2() {
    let sha256 = compute_digest(b"abc", ThumbprintHash::SHA256).unwrap();
    assert_eq!(
        URL_SAFE_NO_PAD.encode(sha256),
        "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0"
    );
    assert_eq!(
        compute_digest(b"abc", ThumbprintHash::SHA384)
            .unwrap()
            .len(),
        48
    );
    assert_eq!(
        compute_digest(b"abc", ThumbprintHash::SHA512)
            .unwrap()
            .len(),
        64
    );
}

#[test]
fn installing_from_many_threads_is_harmless() {
    let threads: Vec<_> = (0..8)
        .map(|_| std::thread::spawn(install_crypto_provider))
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    install_crypto_provider();
    let installed = CryptoProvider::try_get_default().unwrap();
    assert!(std::ptr::eq(installed, &RING_PROVIDER));
}
