use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use serde_json::{Value, json};

use super::*;
use crate::client_keys::test_keys::{PartnerKey, jwks};
use crate::client_keys::{ClientKey, parse_jwks};

const ISSUER: &str = "https://auth.example.com";
const TOKEN_ENDPOINT: &str = "https://auth.example.com/oauth2/token";
const CLIENT: &str = "cl_partner";
const NOW: i64 = 1_750_000_000;

fn claims() -> Value {
    json!({
        "iss": CLIENT,
        "sub": CLIENT,
        "aud": ISSUER,
        "iat": NOW,
        "exp": NOW + 60,
        "jti": "jti-1",
    })
}

/// `claims()` with `changes` applied; a `null` removes the claim.
fn claims_with(changes: Value) -> Value {
    let mut claims = claims();
    for (name, value) in changes.as_object().unwrap() {
        if value.is_null() {
            claims.as_object_mut().unwrap().remove(name);
        } else {
            claims[name] = value.clone();
        }
    }
    claims
}

fn header(alg: &str) -> Value {
    json!({"alg": alg, "typ": "JWT", "kid": "k1"})
}

/// The key the partner registered, as a JWKS of one key with `kid` "k1" and `extra` members.
fn registered(key: &PartnerKey, extra: Value) -> ClientKey {
    parse_jwks(&jwks(&[key.jwk(Some("k1"), extra)]))
        .unwrap()
        .remove(0)
}

fn expect() -> Expected<'static> {
    Expected::new(CLIENT, ISSUER, NOW)
}

/// An ES256 partner and its registered key.
fn es256() -> (PartnerKey, ClientKey) {
    let key = PartnerKey::es256();
    let registered = registered(&key, json!({}));
    (key, registered)
}

/// Signs `claims` with an ES256 partner key and verifies the result with that key.
fn verify_claims(claims: &Value) -> Result<VerifiedAssertion, AssertionError> {
    let (key, registered) = es256();
    let assertion = key.sign(Algorithm::ES256, &header("ES256"), claims);
    verify(&assertion, &registered, &expect())
}

fn verify_header(header: &Value) -> Result<VerifiedAssertion, AssertionError> {
    let (key, registered) = es256();
    let assertion = key.sign(Algorithm::ES256, header, &claims());
    verify(&assertion, &registered, &expect())
}

fn accepted() -> Result<VerifiedAssertion, AssertionError> {
    Ok(VerifiedAssertion {
        jti: "jti-1".into(),
        exp: NOW + 60,
    })
}

/// A JWS with any header and payload and a made-up signature.
fn unsigned(header: &Value, claims: &Value, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        URL_SAFE_NO_PAD.encode(signature)
    )
}

#[test]
fn assertions_signed_with_each_algorithm_verify() {
    let cases = [
        (PartnerKey::es256(), Algorithm::ES256, "ES256", json!({})),
        (PartnerKey::ed25519(), Algorithm::EdDSA, "EdDSA", json!({})),
        (PartnerKey::rsa(), Algorithm::RS256, "RS256", json!({})),
        (PartnerKey::rsa(), Algorithm::PS256, "PS256", json!({})),
        (
            PartnerKey::rsa(),
            Algorithm::RS256,
            "RS256",
            json!({"alg": "RS256"}),
        ),
        (
            PartnerKey::rsa(),
            Algorithm::PS256,
            "PS256",
            json!({"alg": "PS256"}),
        ),
    ];
    for (key, alg, name, extra) in cases {
        let registered = registered(&key, extra);
        let assertion = key.sign(alg, &header(name), &claims());
        assert_eq!(
            verify(&assertion, &registered, &expect()),
            accepted(),
            "{name}"
        );
    }
}

#[test]
fn peek_tells_which_client_and_key_before_any_verification() {
    let (key, _) = es256();
    let assertion = key.sign(Algorithm::ES256, &header("ES256"), &claims());
    let unverified = peek(&assertion).unwrap();
    assert_eq!(
        unverified,
        Unverified {
            alg: Algorithm::ES256,
            kid: Some("k1".into()),
            typ: Some("JWT".into()),
            iss: Some(CLIENT.into()),
            sub: Some(CLIENT.into()),
        }
    );
    assert_eq!(unverified.claimed_client_id(), Some(CLIENT));
    let other = key.sign(
        Algorithm::ES256,
        &json!({"alg": "ES256"}),
        &claims_with(json!({"iss": "someone-else"})),
    );
    let unverified = peek(&other).unwrap();
    assert_eq!((&unverified.kid, &unverified.typ), (&None, &None));
    assert_eq!(unverified.claimed_client_id(), None);
}

#[test]
fn an_assertion_made_by_jsonwebtoken_encode_verifies() {
    keys::install_crypto_provider();
    let key = PartnerKey::ed25519();
    let registered = registered(&key, json!({"alg": "EdDSA", "use": "sig"}));
    let mut header = jsonwebtoken::Header::new(Algorithm::EdDSA);
    header.kid = Some("k1".into());
    let assertion = jsonwebtoken::encode(&header, &claims(), key.encoding_key()).unwrap();
    assert_eq!(verify(&assertion, &registered, &expect()), accepted());
}

#[test]
fn the_audience_must_be_our_issuer_identifier_alone() {
    assert_eq!(verify_claims(&claims()), accepted());
    assert_eq!(
        verify_claims(&claims_with(json!({"aud": [ISSUER]}))),
        accepted()
    );
    for aud in [
        json!(TOKEN_ENDPOINT),
        json!([TOKEN_ENDPOINT]),
        json!([ISSUER, TOKEN_ENDPOINT]),
        json!([TOKEN_ENDPOINT, ISSUER]),
        json!([ISSUER, ISSUER]),
        json!("https://other.example.com"),
        json!(format!("{ISSUER}/")),
        json!("HTTPS://AUTH.EXAMPLE.COM"),
        json!([]),
        json!(null),
        json!(7),
    ] {
        assert_eq!(
            verify_claims(&claims_with(json!({ "aud": aud.clone() }))),
            Err(AssertionError::Audience),
            "{aud}"
        );
    }
}

#[test]
fn alg_none_is_refused() {
    for alg in ["none", "None", "NONE"] {
        let assertion = unsigned(&json!({"alg": alg, "kid": "k1"}), &claims(), b"");
        assert_eq!(peek(&assertion).unwrap_err().as_str(), "assertion_alg");
        let (_, registered) = es256();
        assert_eq!(
            verify(&assertion, &registered, &expect())
                .unwrap_err()
                .as_str(),
            "assertion_alg"
        );
    }
}

#[test]
fn an_hmac_made_with_the_public_key_is_refused() {
    // Algorithm confusion: the attacker uses the (public) registered key as an HMAC secret.
    let key = PartnerKey::rsa();
    let jwk = key.jwk(Some("k1"), json!({}));
    let registered = registered(&key, json!({}));
    let n = URL_SAFE_NO_PAD.decode(jwk["n"].as_str().unwrap()).unwrap();
    for secret in [jwk.to_string().into_bytes(), n] {
        let header = header("HS256");
        let mut message = URL_SAFE_NO_PAD.encode(header.to_string());
        message.push('.');
        message.push_str(&URL_SAFE_NO_PAD.encode(claims().to_string()));
        let tag = ring::hmac::sign(
            &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &secret),
            message.as_bytes(),
        );
        let assertion = format!("{message}.{}", URL_SAFE_NO_PAD.encode(tag));
        assert_eq!(
            verify(&assertion, &registered, &expect()),
            Err(AssertionError::Alg("HMAC algorithms are refused"))
        );
    }
    // And were the header check ever bypassed, our provider refuses an RSA key for HMAC.
    assert!(
        (keys::RING_PROVIDER.verifier_factory)(&Algorithm::HS256, registered.decoding_key())
            .is_err()
    );
}

#[test]
fn an_alg_the_registered_key_does_not_allow_is_refused() {
    // An EC key registered; the assertion is a valid EdDSA one from another key.
    let (_, ec_registered) = es256();
    let ed = PartnerKey::ed25519();
    let assertion = ed.sign(Algorithm::EdDSA, &header("EdDSA"), &claims());
    assert_eq!(
        verify(&assertion, &ec_registered, &expect())
            .unwrap_err()
            .as_str(),
        "assertion_alg"
    );
    // An RSA key registered for RS256 only; the partner signs PS256 with that very key.
    let rsa = PartnerKey::rsa();
    let rs256_only = registered(&rsa, json!({"alg": "RS256"}));
    let assertion = rsa.sign(Algorithm::PS256, &header("PS256"), &claims());
    assert_eq!(
        verify(&assertion, &rs256_only, &expect())
            .unwrap_err()
            .as_str(),
        "assertion_alg"
    );
    // Algorithms we do not verify at all are refused by peek.
    for alg in ["ES384", "RS512", "PS384", "Ed25519", "", "es256"] {
        let assertion = unsigned(&json!({ "alg": alg }), &claims(), b"sig");
        assert_eq!(
            peek(&assertion).unwrap_err().as_str(),
            "assertion_alg",
            "{alg}"
        );
    }
    let no_alg = unsigned(&json!({"kid": "k1"}), &claims(), b"sig");
    assert_eq!(peek(&no_alg).unwrap_err().as_str(), "assertion_alg");
}

#[test]
fn a_signature_by_another_key_or_over_other_content_is_refused() {
    let (_, registered) = es256();
    let impostor = PartnerKey::es256();
    let assertion = impostor.sign(Algorithm::ES256, &header("ES256"), &claims());
    assert_eq!(
        verify(&assertion, &registered, &expect()),
        Err(AssertionError::Signature)
    );

    let (key, registered) = es256();
    let assertion = key.sign(Algorithm::ES256, &header("ES256"), &claims());
    let mut parts: Vec<&str> = assertion.split('.').collect();
    let tampered_claims = URL_SAFE_NO_PAD.encode(claims_with(json!({"jti": "jti-2"})).to_string());
    parts[1] = &tampered_claims;
    assert_eq!(
        verify(&parts.join("."), &registered, &expect()),
        Err(AssertionError::Signature)
    );
    let zeroes = format!(
        "{}.{}.{}",
        parts[0],
        parts[1],
        URL_SAFE_NO_PAD.encode([0u8; 64])
    );
    assert_eq!(
        verify(&zeroes, &registered, &expect()),
        Err(AssertionError::Signature)
    );
}

#[test]
fn exp_and_jti_are_required() {
    assert_eq!(
        verify_claims(&claims_with(json!({"exp": null}))),
        Err(AssertionError::Claims("exp is required"))
    );
    assert_eq!(
        verify_claims(&claims_with(json!({"jti": null}))),
        Err(AssertionError::Claims("jti is required"))
    );
    for jti in [String::new(), "j".repeat(MAX_JTI_CHARS + 1)] {
        assert_eq!(
            verify_claims(&claims_with(json!({ "jti": jti })))
                .unwrap_err()
                .as_str(),
            "assertion_claims"
        );
    }
    let longest = "é".repeat(MAX_JTI_CHARS);
    assert_eq!(
        verify_claims(&claims_with(json!({ "jti": longest.clone() }))),
        Ok(VerifiedAssertion {
            jti: longest,
            exp: NOW + 60
        })
    );
    for wrong_type in [
        json!({"exp": "soon"}),
        json!({"jti": 7}),
        json!({"iat": [1]}),
    ] {
        assert_eq!(
            verify_claims(&claims_with(wrong_type.clone()))
                .unwrap_err()
                .as_str(),
            "assertion_claims",
            "{wrong_type}"
        );
    }
}

#[test]
fn an_expired_assertion_is_refused_after_the_leeway() {
    let at = |exp: i64| claims_with(json!({"iat": exp - 60, "exp": exp}));
    assert_eq!(
        verify_claims(&at(NOW - DEFAULT_LEEWAY)),
        Err(AssertionError::Expired)
    );
    assert_eq!(verify_claims(&at(NOW - 3600)), Err(AssertionError::Expired));
    assert!(verify_claims(&at(NOW - DEFAULT_LEEWAY + 1)).is_ok());
}

#[test]
fn an_assertion_living_longer_than_five_minutes_is_refused() {
    let life = |iat: Option<i64>, exp: i64| claims_with(json!({"iat": iat, "exp": exp}));
    assert_eq!(
        verify_claims(&life(Some(NOW), NOW + 301)),
        Err(AssertionError::Lifetime)
    );
    assert!(verify_claims(&life(Some(NOW), NOW + 300)).is_ok());
    assert_eq!(
        verify_claims(&life(Some(NOW - 400), NOW + 10)),
        Err(AssertionError::Lifetime),
        "an old iat with a late exp"
    );
    // Without iat, the lifetime left is measured from now, with the leeway for the partner's clock.
    assert!(verify_claims(&life(None, NOW + 300 + DEFAULT_LEEWAY)).is_ok());
    assert_eq!(
        verify_claims(&life(None, NOW + 301 + DEFAULT_LEEWAY)),
        Err(AssertionError::Lifetime)
    );
}

#[test]
fn an_assertion_from_the_future_is_refused() {
    assert_eq!(
        verify_claims(&claims_with(json!({"iat": NOW + 31, "exp": NOW + 90}))),
        Err(AssertionError::NotYetValid)
    );
    assert_eq!(
        verify_claims(&claims_with(json!({"nbf": NOW + 31}))),
        Err(AssertionError::NotYetValid)
    );
    assert!(verify_claims(&claims_with(json!({"nbf": NOW + 30, "iat": NOW + 30}))).is_ok());
    assert!(verify_claims(&claims_with(json!({"nbf": NOW - 5}))).is_ok());
}

#[test]
fn fractional_times_are_numeric_dates() {
    let claims = claims_with(json!({"iat": NOW as f64 + 0.25, "exp": (NOW + 60) as f64 + 0.75}));
    assert_eq!(verify_claims(&claims), accepted());
    assert_eq!(
        verify_claims(&claims_with(json!({"exp": 1e300})))
            .unwrap_err()
            .as_str(),
        "assertion_claims"
    );
}

#[test]
fn iss_and_sub_must_both_be_the_client() {
    for changes in [
        json!({"iss": "other"}),
        json!({"sub": "other"}),
        json!({"iss": "other", "sub": "other"}),
        json!({"iss": null}),
        json!({"sub": null}),
        json!({"iss": "CL_PARTNER", "sub": "CL_PARTNER"}),
    ] {
        assert_eq!(
            verify_claims(&claims_with(changes.clone())),
            Err(AssertionError::Issuer),
            "{changes}"
        );
    }
}

#[test]
fn typ_may_be_absent_jwt_or_client_authentication_jwt() {
    for typ in [
        Some("JWT"),
        Some("jwt"),
        Some("application/jwt"),
        Some("client-authentication+jwt"),
        Some("application/client-authentication+jwt"),
        Some("Application/Client-Authentication+JWT"),
        None,
    ] {
        let mut header = json!({"alg": "ES256", "kid": "k1"});
        if let Some(typ) = typ {
            header["typ"] = typ.into();
        }
        assert_eq!(verify_header(&header), accepted(), "{typ:?}");
    }
    for typ in [
        json!("at+jwt"),
        json!("application/at+jwt"),
        json!("JOSE"),
        json!("JWS"),
        json!("jwt; charset=utf-8"),
        json!("application/"),
        json!("applicationjwt"),
        json!(""),
        json!(null),
        json!(1),
    ] {
        let header = json!({"alg": "ES256", "kid": "k1", "typ": typ.clone()});
        assert_eq!(
            verify_header(&header).unwrap_err().as_str(),
            "assertion_header",
            "{typ}"
        );
    }
}

#[test]
fn keys_and_key_locations_in_the_header_are_refused() {
    let attacker = PartnerKey::es256();
    let (_, registered) = es256();
    let own_jwk = attacker.jwk(None, json!({}));
    for (member, value) in [
        ("jwk", own_jwk),
        ("jku", json!("https://attacker.example/jwks")),
        ("x5u", json!("https://attacker.example/cert.pem")),
        ("x5c", json!(["MIIB"])),
        ("crit", json!(["exp"])),
        ("b64", json!(true)),
    ] {
        let mut header = header("ES256");
        header[member] = value;
        // Signed by the attacker's own key, named in the header...
        let assertion = attacker.sign(Algorithm::ES256, &header, &claims());
        assert_eq!(
            peek(&assertion).unwrap_err().as_str(),
            "assertion_header",
            "{member}"
        );
        assert_eq!(
            verify(&assertion, &registered, &expect())
                .unwrap_err()
                .as_str(),
            "assertion_header"
        );
        // ...and even when otherwise signed by the registered key.
        assert_eq!(
            verify_header(&header).unwrap_err().as_str(),
            "assertion_header"
        );
    }
    // A certificate thumbprint is only a hint, and harmless.
    let mut with_x5t = header("ES256");
    with_x5t["x5t#S256"] = "aGludA".into();
    assert_eq!(verify_header(&with_x5t), accepted());
}

#[test]
fn malformed_assertions_are_refused_before_any_key_is_needed() {
    let (key, _) = es256();
    let padded = claims_with(json!({"padding": "p".repeat(MAX_ASSERTION_BYTES)}));
    let too_long = key.sign(Algorithm::ES256, &header("ES256"), &padded);
    assert_eq!(peek(&too_long), Err(AssertionError::Malformed("too long")));

    let good = key.sign(Algorithm::ES256, &header("ES256"), &claims());
    let parts: Vec<&str> = good.split('.').collect();
    let not_json = URL_SAFE_NO_PAD.encode("not json");
    let array = URL_SAFE_NO_PAD.encode("[1]");
    let numeric_iss = URL_SAFE_NO_PAD.encode(r#"{"iss": 7}"#);
    for (case, assertion) in [
        ("two parts", format!("{}.{}", parts[0], parts[1])),
        ("four parts", format!("{good}.{}", parts[2])),
        ("empty", String::new()),
        (
            "header not base64url",
            format!("*.{}.{}", parts[1], parts[2]),
        ),
        (
            "header padded",
            format!("{}=.{}.{}", parts[0], parts[1], parts[2]),
        ),
        (
            "header not JSON",
            format!("{not_json}.{}.{}", parts[1], parts[2]),
        ),
        (
            "header not an object",
            format!("{array}.{}.{}", parts[1], parts[2]),
        ),
        (
            "payload not base64url",
            format!("{}.*.{}", parts[0], parts[2]),
        ),
        (
            "payload not JSON",
            format!("{}.{not_json}.{}", parts[0], parts[2]),
        ),
        (
            "payload not an object",
            format!("{}.{array}.{}", parts[0], parts[2]),
        ),
        (
            "iss not a string",
            format!("{}.{numeric_iss}.{}", parts[0], parts[2]),
        ),
        ("JWE-like", "a.b.c.d.e".to_owned()),
    ] {
        assert_eq!(
            peek(&assertion).unwrap_err().as_str(),
            "assertion_malformed",
            "{case}"
        );
    }
    let numeric_kid = json!({"alg": "ES256", "kid": 7});
    assert_eq!(
        verify_header(&numeric_kid).unwrap_err().as_str(),
        "assertion_header"
    );
}

#[test]
fn errors_never_echo_assertion_content() {
    const MARK: &str = "MARK-7f3a";
    let (key, registered) = es256();
    let marked = claims_with(json!({"iss": MARK, "sub": MARK, "aud": MARK, "jti": MARK}));
    let failures = [
        key.sign(Algorithm::ES256, &header("ES256"), &marked),
        key.sign(
            Algorithm::ES256,
            &json!({"alg": "ES256", "typ": MARK, "kid": MARK}),
            &claims(),
        ),
        unsigned(&json!({ "alg": MARK }), &marked, MARK.as_bytes()),
        unsigned(&json!({"alg": "ES256", "jku": MARK}), &marked, b""),
        format!("{MARK}.{MARK}.{MARK}"),
    ];
    for assertion in failures {
        let err = verify(&assertion, &registered, &expect()).unwrap_err();
        assert!(!err.to_string().contains(MARK), "{err}");
        assert!(!format!("{err:?}").contains(MARK), "{err:?}");
    }
}

#[test]
fn reasons_are_stable_and_distinct() {
    let all = [
        (AssertionError::Malformed("x"), "assertion_malformed"),
        (AssertionError::Header("x"), "assertion_header"),
        (AssertionError::Alg("x"), "assertion_alg"),
        (AssertionError::UnknownKey, "unknown_key"),
        (AssertionError::KeysUnavailable, "keys_unavailable"),
        (AssertionError::Signature, "assertion_signature"),
        (AssertionError::Issuer, "assertion_issuer"),
        (AssertionError::Audience, "assertion_audience"),
        (AssertionError::Expired, "assertion_expired"),
        (AssertionError::NotYetValid, "assertion_not_yet_valid"),
        (AssertionError::Lifetime, "assertion_lifetime"),
        (AssertionError::Claims("x"), "assertion_claims"),
        (AssertionError::Replayed, "assertion_replayed"),
    ];
    let mut seen = std::collections::HashSet::new();
    for (err, reason) in all {
        assert_eq!(err.as_str(), reason);
        assert!(seen.insert(reason));
    }
    assert_eq!(
        AssertionError::from(&KeyLookupError::UnknownKey),
        AssertionError::UnknownKey
    );
    assert_eq!(
        AssertionError::from(&KeyLookupError::Unavailable(None)),
        AssertionError::KeysUnavailable
    );
}

#[test]
fn the_defaults_are_thirty_seconds_of_leeway_and_five_minutes_of_life() {
    let expected = Expected::new(CLIENT, ISSUER, NOW);
    assert_eq!((expected.leeway, expected.max_lifetime), (30, 300));
    assert_eq!(
        JWT_BEARER,
        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    );
}
