use serde_json::{Value, json};

use super::*;
use crate::client_keys::test_keys::{PartnerKey, jwks};

/// The RSA key of RFC 7638 §3.1, whose thumbprint the RFC gives.
const RFC7638_N: &str = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";

fn es_jwk(kid: &str) -> Value {
    PartnerKey::es256().jwk(Some(kid), json!({}))
}

/// The problem of the one key in a document made of `jwk` alone.
fn problem_of(jwk: Value) -> KeyProblem {
    match parse_jwks(&jwks(&[jwk])) {
        Err(JwksError::Key { problem, .. }) => problem,
        other => panic!("expected a key problem, got {other:?}"),
    }
}

#[test]
fn each_key_type_is_accepted_with_the_algorithms_it_may_verify() {
    let text = jwks(&[
        PartnerKey::es256().jwk(Some("ec"), json!({"use": "sig"})),
        PartnerKey::ed25519().jwk(Some("ed"), json!({"alg": "EdDSA"})),
        PartnerKey::rsa().jwk(Some("rsa-any"), json!({})),
        PartnerKey::rsa().jwk(Some("rsa-rs"), json!({"alg": "RS256"})),
        PartnerKey::rsa().jwk(
            Some("rsa-ps"),
            json!({"alg": "PS256", "key_ops": ["verify"]}),
        ),
    ]);
    let keys = parse_jwks(&text).unwrap();
    let summary: Vec<_> = keys
        .iter()
        .map(|k| (k.kid().unwrap(), k.algorithms()))
        .collect();
    assert_eq!(
        summary,
        [
            ("ec", &[Algorithm::ES256][..]),
            ("ed", &[Algorithm::EdDSA][..]),
            ("rsa-any", &[Algorithm::RS256, Algorithm::PS256][..]),
            ("rsa-rs", &[Algorithm::RS256][..]),
            ("rsa-ps", &[Algorithm::PS256][..]),
        ]
    );
    assert_eq!(keys[0].kind(), KeyKind::P256);
    assert_eq!(keys[1].kind().to_string(), "OKP Ed25519");
    assert_eq!(keys[2].kind(), KeyKind::Rsa(2048));
    assert!(keys[2].allows(Algorithm::PS256) && !keys[3].allows(Algorithm::PS256));
    assert!(!keys[0].allows(Algorithm::HS256));
}

#[test]
fn the_thumbprint_is_rfc_7638s() {
    let doc = jwks(&[json!({"kty": "RSA", "n": RFC7638_N, "e": "AQAB", "kid": "2011-04-29"})]);
    let keys = parse_jwks(&doc).unwrap();
    assert_eq!(
        keys[0].thumbprint(),
        "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    );
    let debug = format!("{:?}", keys[0]);
    assert!(debug.contains("NzbLsXh8") && !debug.contains(&RFC7638_N[..20]));
}

#[test]
fn a_single_key_may_have_no_kid_but_not_one_of_two() {
    let keys = parse_jwks(&jwks(&[PartnerKey::es256().jwk(None, json!({}))])).unwrap();
    assert_eq!(keys[0].kid(), None);
    let err = parse_jwks(&jwks(&[
        es_jwk("a"),
        PartnerKey::es256().jwk(None, json!({})),
    ]))
    .unwrap_err();
    assert_eq!(
        err,
        JwksError::Key {
            index: 1,
            kid: None,
            problem: KeyProblem::MissingKid
        }
    );
}

#[test]
fn a_pasted_private_key_is_refused_and_called_what_it_is() {
    for member in ["d", "p", "q", "dp", "dq", "qi", "oth"] {
        let jwk = PartnerKey::rsa().jwk(Some("k"), json!({ member: "AQAB" }));
        assert_eq!(problem_of(jwk), KeyProblem::PrivateKey(member));
    }
    let jwk = PartnerKey::es256().jwk(Some("k"), json!({"d": "c2VjcmV0IGJ5dGVz"}));
    let message = parse_jwks(&jwks(&[jwk])).unwrap_err().to_string();
    assert!(message.contains("private key"), "{message}");
    assert!(message.contains("key 0 (kid \"k\")"), "{message}");
    assert!(
        !message.contains("c2VjcmV0"),
        "never echo key material: {message}"
    );
}

#[test]
fn symmetric_keys_are_refused() {
    let jwk = json!({"kty": "oct", "k": "c2VjcmV0", "kid": "h", "alg": "HS256"});
    assert_eq!(problem_of(jwk), KeyProblem::Symmetric);
}

#[test]
fn keys_for_encryption_are_refused() {
    assert!(matches!(
        problem_of(PartnerKey::es256().jwk(Some("k"), json!({"use": "enc"}))),
        KeyProblem::NotForSignatures(_)
    ));
    assert!(matches!(
        problem_of(PartnerKey::rsa().jwk(Some("k"), json!({"key_ops": ["encrypt"]}))),
        KeyProblem::NotForSignatures(_)
    ));
    assert!(matches!(
        problem_of(PartnerKey::rsa().jwk(Some("k"), json!({"alg": "RSA-OAEP"}))),
        KeyProblem::UnsupportedAlg(_)
    ));
}

#[test]
fn unknown_key_types_and_curves_are_refused() {
    assert!(matches!(
        problem_of(json!({"kty": "XYZ", "kid": "k"})),
        KeyProblem::UnsupportedKeyType(_)
    ));
    let mut p384 = es_jwk("k");
    p384["crv"] = "P-384".into();
    assert!(matches!(problem_of(p384), KeyProblem::UnsupportedCurve(_)));
    let mut x25519 = PartnerKey::ed25519().jwk(Some("k"), json!({}));
    x25519["crv"] = "X25519".into();
    assert!(matches!(
        problem_of(x25519),
        KeyProblem::UnsupportedCurve(_)
    ));
    assert_eq!(
        problem_of(json!({"kid": "k", "crv": "P-256"})),
        KeyProblem::MissingMember("kty")
    );
}

#[test]
fn an_alg_that_contradicts_the_key_type_is_refused() {
    let cases = [
        (
            PartnerKey::es256().jwk(Some("k"), json!({"alg": "RS256"})),
            "EC",
        ),
        (
            PartnerKey::es256().jwk(Some("k"), json!({"alg": "EdDSA"})),
            "EC",
        ),
        (
            PartnerKey::ed25519().jwk(Some("k"), json!({"alg": "ES256"})),
            "OKP",
        ),
        (
            PartnerKey::rsa().jwk(Some("k"), json!({"alg": "ES256"})),
            "RSA",
        ),
    ];
    for (jwk, kty) in cases {
        assert!(
            matches!(problem_of(jwk), KeyProblem::AlgMismatch { kty: k, .. } if k == kty),
            "{kty}"
        );
    }
}

#[test]
fn alg_none_hmac_and_unsupported_algorithms_are_refused() {
    for alg in ["none", "HS256", "HS512"] {
        let jwk = PartnerKey::es256().jwk(Some("k"), json!({ "alg": alg }));
        assert!(
            matches!(problem_of(jwk), KeyProblem::ForbiddenAlg(_)),
            "{alg}"
        );
    }
    for alg in ["RS512", "ES384", "PS384", "Ed25519"] {
        let jwk = PartnerKey::rsa().jwk(Some("k"), json!({ "alg": alg }));
        assert!(
            matches!(problem_of(jwk), KeyProblem::UnsupportedAlg(_)),
            "{alg}"
        );
    }
}

#[test]
fn weak_or_malformed_rsa_keys_are_refused() {
    // A 1024-bit modulus (top bit set).
    let mut n = vec![0xC5u8; 128];
    n[127] = 0x01;
    let small = json!({"kty": "RSA", "kid": "k", "e": "AQAB", "n": URL_SAFE_NO_PAD.encode(&n)});
    assert_eq!(problem_of(small), KeyProblem::RsaTooSmall(1024));
    // 2047 bits is still too small.
    let mut n = vec![0x45u8; 256];
    n[255] = 0x01;
    let almost = json!({"kty": "RSA", "kid": "k", "e": "AQAB", "n": URL_SAFE_NO_PAD.encode(&n)});
    assert_eq!(problem_of(almost), KeyProblem::RsaTooSmall(2047));
    let leading_zero = {
        let mut n = vec![0u8];
        n.extend(URL_SAFE_NO_PAD.decode(RFC7638_N).unwrap());
        json!({"kty": "RSA", "kid": "k", "e": "AQAB", "n": URL_SAFE_NO_PAD.encode(&n)})
    };
    assert!(matches!(
        problem_of(leading_zero),
        KeyProblem::InvalidMember("n", _)
    ));
    for e in ["AA", "Ag", "AAEAAQ", "AQABAQAB", "not base64!"] {
        let jwk = json!({"kty": "RSA", "kid": "k", "e": e, "n": RFC7638_N});
        assert!(
            matches!(problem_of(jwk), KeyProblem::InvalidMember("e", _)),
            "{e}"
        );
    }
}

#[test]
fn malformed_curve_points_are_refused() {
    let mut short = es_jwk("k");
    short["x"] = URL_SAFE_NO_PAD.encode([1u8; 31]).into();
    assert!(matches!(
        problem_of(short),
        KeyProblem::InvalidMember("x", _)
    ));
    let mut padded = PartnerKey::ed25519().jwk(Some("k"), json!({}));
    padded["x"] = format!("{}=", padded["x"].as_str().unwrap()).into();
    assert!(matches!(
        problem_of(padded),
        KeyProblem::InvalidMember("x", _)
    ));
    let mut missing = es_jwk("k");
    missing.as_object_mut().unwrap().remove("y");
    assert_eq!(problem_of(missing), KeyProblem::MissingMember("y"));
}

#[test]
fn duplicate_kids_are_refused() {
    let err = parse_jwks(&jwks(&[es_jwk("same"), es_jwk("other"), es_jwk("same")])).unwrap_err();
    assert_eq!(err, JwksError::DuplicateKid("\"same\"".to_owned()));
}

#[test]
fn empty_oversized_and_overfull_documents_are_refused() {
    assert!(matches!(parse_jwks(&jwks(&[])), Err(JwksError::Empty)));
    let seventeen: Vec<_> = (0..17).map(|i| es_jwk(&format!("k{i}"))).collect();
    assert!(matches!(
        parse_jwks(&jwks(&seventeen)),
        Err(JwksError::TooManyKeys(17))
    ));
    let sixteen: Vec<_> = (0..16).map(|i| es_jwk(&format!("k{i}"))).collect();
    assert_eq!(parse_jwks(&jwks(&sixteen)).unwrap().len(), 16);
    let mut padded = es_jwk("k");
    padded["x-padding"] = "a".repeat(MAX_JWKS_BYTES).into();
    assert!(matches!(
        parse_jwks(&jwks(&[padded])),
        Err(JwksError::TooLarge)
    ));
}

#[test]
fn documents_that_are_not_a_jwks_are_refused() {
    for text in [
        "",
        "[]",
        "{}",
        "{\"keys\": {}}",
        "not json",
        "{\"keys\": [] ",
    ] {
        assert!(
            matches!(parse_jwks(text), Err(JwksError::NotAJwks)),
            "{text}"
        );
    }
    assert_eq!(problem_of(json!("a string")), KeyProblem::NotAnObject);
    let mut numeric_kid = es_jwk("k");
    numeric_kid["kid"] = 7.into();
    assert!(matches!(
        problem_of(numeric_kid),
        KeyProblem::InvalidMember("kid", _)
    ));
}

#[test]
fn messages_quote_document_strings_short_and_escaped() {
    let jwk = json!({"kty": format!("{}\n{}", "X".repeat(100), "injected"), "kid": "k"});
    let message = parse_jwks(&jwks(&[jwk])).unwrap_err().to_string();
    assert!(!message.contains('\n'), "{message}");
    assert!(!message.contains("injected"), "{message}");
    assert!(message.len() < 200, "{message}");
}

#[test]
fn a_published_set_skips_keys_that_are_not_for_us_but_not_published_secrets() {
    let body = jwks(&[
        PartnerKey::rsa().jwk(Some("enc"), json!({"use": "enc", "alg": "RSA-OAEP"})),
        {
            let mut p384 = es_jwk("p384");
            p384["crv"] = "P-384".into();
            p384
        },
        es_jwk("sig"),
    ]);
    assert!(
        parse_jwks(&body).is_err(),
        "a registered document is strict"
    );
    let keys = parse_published_jwks(body.as_bytes()).unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].kid(), Some("sig"));

    let with_secret = jwks(&[
        es_jwk("sig"),
        json!({"kty": "oct", "k": "c2VjcmV0", "kid": "h"}),
    ]);
    assert!(matches!(
        parse_published_jwks(with_secret.as_bytes()),
        Err(JwksError::Key {
            problem: KeyProblem::Symmetric,
            ..
        })
    ));
    let nothing_for_us = jwks(&[PartnerKey::rsa().jwk(Some("enc"), json!({"use": "enc"}))]);
    assert_eq!(
        parse_published_jwks(nothing_for_us.as_bytes()).unwrap_err(),
        JwksError::Empty
    );
}

#[test]
fn a_set_selects_by_kid_and_a_lone_key_answers_any() {
    let set = KeySet::new(parse_jwks(&jwks(&[es_jwk("a"), es_jwk("b")])).unwrap());
    assert_eq!(set.select(Some("b")).unwrap().kid(), Some("b"));
    assert!(set.select(Some("c")).is_none());
    assert!(set.select(None).is_none(), "two keys need a kid");

    let one = KeySet::new(parse_jwks(&jwks(&[es_jwk("a")])).unwrap());
    assert!(one.select(None).is_some());
    assert!(one.select(Some("b")).is_none(), "a kid that names no key");

    let anonymous =
        KeySet::new(parse_jwks(&jwks(&[PartnerKey::es256().jwk(None, json!({}))])).unwrap());
    assert!(anonymous.select(None).is_some());
    assert!(anonymous.select(Some("whatever")).is_some());
}
