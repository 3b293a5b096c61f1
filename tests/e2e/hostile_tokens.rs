//! Hostile and broken tokens: every one answers 401 `invalid_token`, never 500, never 200.

use crate::common;
use crate::common::system;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{Backend, TestAuth, http};
use keys::MasterKey;
use reqwest::StatusCode;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde_json::{Value, json};
use system::spawn_system;

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A compact JWS of `header` and `claims` with the signature `sign` makes over the signing input.
fn forge(header: &Value, claims: &Value, sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
    let input = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
    let signature = sign(input.as_bytes());
    format!("{input}.{}", b64(signature))
}

fn es256(pair: &EcdsaKeyPair) -> impl Fn(&[u8]) -> Vec<u8> + '_ {
    move |input| {
        pair.sign(&SystemRandom::new(), input)
            .unwrap()
            .as_ref()
            .to_vec()
    }
}

/// The token service's active private key, read the way only an insider could: from the database
/// with the master key. It lets these tests sign tokens that are perfect except for one flaw.
async fn real_key(auth: &TestAuth) -> (String, EcdsaKeyPair) {
    let master = MasterKey::load(&auth.db.master_key_path()).unwrap();
    let row = auth
        .state
        .db
        .list_signing_keys()
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.state == keys::KeyState::Active)
        .unwrap();
    let der = keys::dangerous::reveal_pkcs8(&row.sealed(), &master).unwrap();
    let pair =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der, &SystemRandom::new())
            .unwrap();
    (row.kid, pair)
}

fn attacker_key() -> EcdsaKeyPair {
    let rng = SystemRandom::new();
    let der = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der.as_ref(), &rng).unwrap()
}

fn public_jwk(pair: &EcdsaKeyPair, kid: &str) -> Value {
    let point = pair.public_key().as_ref();
    json!({ "kty": "EC", "crv": "P-256", "x": b64(&point[1..33]), "y": b64(&point[33..]), "kid": kid, "alg": "ES256" })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_tokens_all_answer_401_invalid_token() {
    let (auth, api) = spawn_system(Backend::Sqlite).await.unwrap();
    let (client, secret) = auth.client("acme", "orders:read catalog:read").await;
    let good = common::token(&auth, client.client_id.as_str(), secret.expose()).await;
    let claims = common::claims_of(&good);
    let (kid, real) = real_key(&auth).await;
    let attacker = attacker_key();
    let header = json!({ "alg": "ES256", "typ": "at+jwt", "kid": kid });
    let with = |base: &Value, key: &str, value: Value| {
        let mut v = base.clone();
        if value.is_null() {
            v.as_object_mut().unwrap().remove(key);
        } else {
            v[key] = value;
        }
        v
    };
    let now = auth_server::now();

    // A perfect forgery by an insider is accepted: the checks below fail for their one flaw only.
    let control = forge(&header, &claims, es256(&real));
    // RFC 9068 §4: the long media type form of typ is accepted as well.
    let long_typ = forge(
        &with(&header, "typ", json!("application/at+jwt")),
        &claims,
        es256(&real),
    );
    for accepted in [&control, &long_typ] {
        let response = common::get(&api, "/v1/me", accepted).await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    assert_eq!(
        common::get(&api, "/v1/me", &control).await.status(),
        StatusCode::OK
    );

    let jwk_text = public_jwk(&real, &kid).to_string();
    let hmac_with = |secret: Vec<u8>| {
        move |input: &[u8]| {
            let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &secret);
            ring::hmac::sign(&key, input).as_ref().to_vec()
        }
    };
    let mut cases: Vec<(&str, String)> = vec![
        (
            "alg none",
            forge(&with(&header, "alg", json!("none")), &claims, |_| {
                Vec::new()
            }),
        ),
        ("alg none, no signature part", {
            let t = forge(&with(&header, "alg", json!("none")), &claims, |_| {
                Vec::new()
            });
            t.trim_end_matches('.').to_owned()
        }),
        (
            "HS256 keyed with the public JWK",
            forge(
                &with(&header, "alg", json!("HS256")),
                &claims,
                hmac_with(jwk_text.clone().into_bytes()),
            ),
        ),
        (
            "HS256 keyed with the public point",
            forge(
                &with(&header, "alg", json!("HS256")),
                &claims,
                hmac_with(real.public_key().as_ref().to_vec()),
            ),
        ),
        (
            "attacker key with the real kid",
            forge(&header, &claims, es256(&attacker)),
        ),
        (
            "unknown kid",
            forge(
                &with(&header, "kid", json!("no-such-key")),
                &claims,
                es256(&attacker),
            ),
        ),
        (
            "kid with a path",
            forge(
                &with(&header, "kid", json!("../../../../etc/passwd")),
                &claims,
                es256(&attacker),
            ),
        ),
        (
            "kid with SQL",
            forge(
                &with(&header, "kid", json!("x' OR '1'='1' --")),
                &claims,
                es256(&attacker),
            ),
        ),
        (
            "kid of the wrong type",
            forge(&with(&header, "kid", json!(42)), &claims, es256(&real)),
        ),
        ("embedded jwk header", {
            let h = json!({ "alg": "ES256", "typ": "at+jwt", "kid": "attacker", "jwk": public_jwk(&attacker, "attacker") });
            forge(&h, &claims, es256(&attacker))
        }),
        ("embedded jwk header with the real kid", {
            let h = with(&header, "jwk", public_jwk(&attacker, &kid));
            forge(&h, &claims, es256(&attacker))
        }),
        (
            "jku pointing elsewhere",
            forge(
                &with(&header, "jku", json!("http://127.0.0.1:9/jwks.json")),
                &claims,
                es256(&attacker),
            ),
        ),
        (
            "x5u pointing elsewhere",
            forge(
                &with(&header, "x5u", json!("http://127.0.0.1:9/cert.pem")),
                &claims,
                es256(&attacker),
            ),
        ),
        (
            "jku on an otherwise valid token",
            forge(
                &with(&header, "jku", json!("http://127.0.0.1:9/jwks.json")),
                &claims,
                es256(&real),
            ),
        ),
        (
            "crit header",
            forge(
                &with(&header, "crit", json!(["exp"])),
                &claims,
                es256(&real),
            ),
        ),
        (
            "ECDSA r = s = 0",
            forge(&header, &claims, |_| vec![0u8; 64]),
        ),
        (
            "ECDSA signature of the wrong length",
            forge(&header, &claims, |_| vec![1u8; 63]),
        ),
        (
            "typ JWT",
            forge(&with(&header, "typ", json!("JWT")), &claims, es256(&real)),
        ),
        (
            "no typ",
            forge(&with(&header, "typ", Value::Null), &claims, es256(&real)),
        ),
        (
            "no kid",
            forge(&with(&header, "kid", Value::Null), &claims, es256(&real)),
        ),
        (
            "wrong iss",
            forge(
                &header,
                &with(&claims, "iss", json!("http://evil.test")),
                es256(&real),
            ),
        ),
        (
            "wrong aud",
            forge(
                &header,
                &with(&claims, "aud", json!("other-api")),
                es256(&real),
            ),
        ),
        (
            "wrong aud in an array",
            forge(
                &header,
                &with(&claims, "aud", json!(["a", "b"])),
                es256(&real),
            ),
        ),
        (
            "expired",
            forge(
                &header,
                &with(
                    &with(&claims, "exp", json!(now - 3600)),
                    "iat",
                    json!(now - 4200),
                ),
                es256(&real),
            ),
        ),
        (
            "nbf in the future",
            forge(
                &header,
                &with(&claims, "nbf", json!(now + 3600)),
                es256(&real),
            ),
        ),
        (
            "iat in the future",
            forge(
                &header,
                &with(&claims, "iat", json!(now + 3600)),
                es256(&real),
            ),
        ),
        (
            "exp as a string",
            forge(
                &header,
                &with(&claims, "exp", json!((now + 600).to_string())),
                es256(&real),
            ),
        ),
        (
            "scope as a number",
            forge(&header, &with(&claims, "scope", json!(7)), es256(&real)),
        ),
        (
            "missing exp",
            forge(&header, &with(&claims, "exp", Value::Null), es256(&real)),
        ),
        (
            "missing sub",
            forge(&header, &with(&claims, "sub", Value::Null), es256(&real)),
        ),
        (
            "sub differs from client_id",
            forge(
                &header,
                &with(&claims, "sub", json!("cl_someone_else")),
                es256(&real),
            ),
        ),
        (
            "claims are not an object",
            forge(&header, &json!([1, 2, 3]), es256(&real)),
        ),
        ("altered payload", {
            let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
            parts[1] = b64(with(&claims, "partner_id", json!("globex")).to_string());
            parts.join(".")
        }),
        ("truncated", good[..good.len() - 10].to_owned()),
        ("two parts", good.rsplit_once('.').unwrap().0.to_owned()),
        ("four parts", format!("{good}.AAAA")),
        ("bad base64url", format!("!!!{}", &good[3..])),
        (
            "header not JSON",
            format!("{}.{}", b64("not json"), good.split_once('.').unwrap().1),
        ),
        ("empty", String::new()),
        ("spaces", "a b c".to_owned()),
    ];
    // An oversized token, refused by the verifier's size bound (4 KiB) before any parsing. It
    // stays under the 16 KiB header limit, beyond which the edge answers 431 before the verifier
    // sees the token (checked below).
    cases.push((
        "12 KiB token",
        format!("{}.{}.{}", "a".repeat(6 * 1024), "b".repeat(6 * 1024), "c"),
    ));

    let fetches_before = api.jwks_fetches();
    for (what, token) in &cases {
        let response = http()
            .get(api.url("/v1/me"))
            .header("authorization", format!("Bearer {token}"))
            .send()
            .await
            .unwrap();
        let status = response.status();
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}");
        let challenge = response
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_owned());
        let challenge = challenge.unwrap_or_default();
        if token.is_empty() {
            assert!(
                challenge.starts_with("Bearer realm=\"partner-api\""),
                "{what}: {challenge}"
            );
        } else {
            assert!(
                challenge.contains("error=\"invalid_token\""),
                "{what}: {challenge}"
            );
        }
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json",
            "{what}"
        );
    }
    // The forged kids caused at most one refetch (the cooldown holds the rest back).
    assert!(
        api.jwks_fetches() - fetches_before <= 1,
        "fetches: {}",
        api.jwks_fetches() - fetches_before
    );

    // A 20 KiB token is over the 16 KiB limit on one header: 431 at the edge, in problem+json.
    // (Far larger heads, like the 1 MB token below, are refused by hyper itself.)
    let response = http()
        .get(api.url("/v1/me"))
        .header(
            "authorization",
            format!(
                "Bearer {}.{}.c",
                "a".repeat(10 * 1024),
                "b".repeat(10 * 1024)
            ),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
    );
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );

    // A 1 MB token is refused too: 401 from the verifier, or 431 from the HTTP layer.
    let huge = "a".repeat(1024 * 1024);
    match http()
        .get(api.url("/v1/me"))
        .header("authorization", format!("Bearer {huge}"))
        .send()
        .await
    {
        Ok(response) => assert!(
            [
                StatusCode::UNAUTHORIZED,
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
            ]
            .contains(&response.status()),
            "1 MB token: {}",
            response.status()
        ),
        Err(err) => panic!("1 MB token: the connection failed instead of an answer: {err}"),
    }
    // The server is fine afterwards.
    assert_eq!(
        common::get(&api, "/v1/me", &good).await.status(),
        StatusCode::OK
    );
    api.stop().await;
    auth.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_without_a_bearer_token_get_a_bare_challenge() {
    let (auth, api) = spawn_system(Backend::Sqlite).await.unwrap();
    for (what, header) in [
        ("no header", None),
        ("basic", Some("Basic YTpi")),
        ("bearer without token", Some("Bearer ")),
    ] {
        let mut request = http().get(api.url("/v1/orders"));
        if let Some(value) = header {
            request = request.header("authorization", value);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{what}");
        let challenge = response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_owned();
        if header == Some("Bearer ") {
            assert!(challenge.contains("invalid_token"), "{what}: {challenge}");
        } else {
            assert_eq!(challenge, "Bearer realm=\"partner-api\"", "{what}");
        }
    }
    // Health and readiness need no token.
    assert_eq!(
        common::get_status(api.url("/healthz")).await,
        StatusCode::OK
    );
    assert_eq!(common::get_status(api.url("/readyz")).await, StatusCode::OK);
    let missing = http().get(api.url("/v2/nothing")).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        missing.headers()["content-type"],
        "application/problem+json"
    );
    api.stop().await;
    auth.stop().await;
}
