//! `private_key_jwt` clients from the command line: enrolled with a JWKS file of public keys or a
//! `jwks_uri`, what `client create` and `client show` print for them, what they refuse (a private
//! or symmetric key above all), and a key rotation with `client update --jwks-file` while the
//! token service verifies their assertions.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair};
use serde_json::{Value, json};

use crate::support::{Backend, ISSUER, TestAuth, http, spawn_auth_server};
use crate::{audit_actions, cli, client_count, failure_line, json_of, write_file};

on_both_backends!(
    a_private_key_jwt_client_is_enrolled_with_its_public_keys_or_its_jwks_uri,
    key_enrolment_refusals_are_one_line_and_create_nothing,
    a_private_key_jwt_client_rotates_its_keys_from_the_cli_while_the_server_runs,
);

const CREATE: [&str; 10] = [
    "client",
    "create",
    "--name",
    "Acme ERP",
    "--partner",
    "acme",
    "--scopes",
    "orders:read",
    "--auth-method",
    "private_key_jwt",
];

/// `client create --auth-method private_key_jwt` for the standard test client, with `more`.
fn create(app: &TestAuth, more: &[&str]) -> std::process::Output {
    let args: Vec<&str> = CREATE.iter().chain(more).copied().collect();
    cli(app, &args)
}

/// A partner's signing key: its public JWK, and what signs its assertions.
struct PartnerKey {
    kid: String,
    alg: Algorithm,
    encoding: EncodingKey,
    jwk: Value,
    /// The RFC 7638 thumbprint, computed here as a partner would.
    thumbprint: String,
}

fn rfc7638(members: &Value) -> String {
    // serde_json sorts object members, which is the canonical form RFC 7638 asks for.
    URL_SAFE_NO_PAD.encode(ring::digest::digest(
        &ring::digest::SHA256,
        members.to_string().as_bytes(),
    ))
}

impl PartnerKey {
    fn es256(kid: &str) -> PartnerKey {
        keys::install_crypto_provider();
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        let point = pair.public_key().as_ref();
        let (x, y) = (
            URL_SAFE_NO_PAD.encode(&point[1..33]),
            URL_SAFE_NO_PAD.encode(&point[33..65]),
        );
        PartnerKey {
            kid: kid.into(),
            alg: Algorithm::ES256,
            encoding: EncodingKey::from_ec_der(pkcs8.as_ref()),
            thumbprint: rfc7638(&json!({ "crv": "P-256", "kty": "EC", "x": x, "y": y })),
            jwk: json!({
                "kty": "EC", "crv": "P-256", "kid": kid, "use": "sig", "alg": "ES256",
                "x": x, "y": y,
            }),
        }
    }

    fn ed25519(kid: &str) -> PartnerKey {
        keys::install_crypto_provider();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        let x = URL_SAFE_NO_PAD.encode(pair.public_key().as_ref());
        PartnerKey {
            kid: kid.into(),
            alg: Algorithm::EdDSA,
            encoding: EncodingKey::from_ed_der(pkcs8.as_ref()),
            thumbprint: rfc7638(&json!({ "crv": "Ed25519", "kty": "OKP", "x": x })),
            jwk: json!({ "kty": "OKP", "crv": "Ed25519", "kid": kid, "x": x }),
        }
    }

    /// A client assertion for `client_id` addressed to the issuer, valid for a minute.
    fn assertion(&self, client_id: &str) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let claims = json!({
            "iss": client_id, "sub": client_id, "aud": ISSUER,
            "iat": now, "exp": now + 60, "jti": uuid::Uuid::new_v4().to_string(),
        });
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.encoding).unwrap()
    }
}

/// The public key set of `keys`, as a partner publishes it.
fn jwks(keys: &[&PartnerKey]) -> String {
    json!({ "keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>() }).to_string()
}

/// The status of a client-credentials request authenticated by an assertion signed with `key`.
async fn token_status(app: &TestAuth, client_id: &str, key: &PartnerKey) -> StatusCode {
    let assertion = key.assertion(client_id);
    let status = http()
        .post(app.url("/oauth2/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", assertion.as_str()),
            ("client_id", client_id),
        ])
        .send()
        .await
        .expect("token request")
        .status();
    app.state.audit.flush().await;
    status
}

/// `(kid, algs, thumbprint)` of each key `client show` lists.
fn listed_keys(shown: &Value) -> Vec<(Value, Value, Value)> {
    shown["keys"]
        .as_array()
        .expect("a keys array")
        .iter()
        .map(|k| (k["kid"].clone(), k["algs"].clone(), k["thumbprint"].clone()))
        .collect()
}

fn listed(key: &PartnerKey) -> (Value, Value, Value) {
    let alg = match key.alg {
        Algorithm::ES256 => "ES256",
        Algorithm::EdDSA => "EdDSA",
        other => panic!("no test key uses {other:?}"),
    };
    (json!(key.kid), json!([alg]), json!(key.thumbprint))
}

async fn a_private_key_jwt_client_is_enrolled_with_its_public_keys_or_its_jwks_uri(
    backend: Backend,
) {
    let Some(app) = spawn_auth_server(backend).await else {
        return;
    };
    let (es, ed) = (PartnerKey::es256("es-2026"), PartnerKey::ed25519("ed-2026"));
    let file = write_file(&app, "jwks.json", &jwks(&[&es, &ed]));
    let created = json_of(&create(&app, &["--jwks-file", &file, "--json"]));
    assert_eq!(created["auth_method"], "private_key_jwt");
    assert_eq!(listed_keys(&created), [listed(&es), listed(&ed)]);
    assert_eq!(created["jwks_uri"], Value::Null);
    assert_eq!(created["certs"], json!([]));
    assert!(created.get("client_secret").is_none(), "{created}");
    let id = created["client_id"].as_str().unwrap();
    let shown = json_of(&cli(&app, &["client", "show", id, "--json"]));
    assert_eq!(shown["keys"], created["keys"]);
    assert!(shown.get("client_secret").is_none() && shown.get("jwks").is_none());

    // The human form: key ids, algorithms and thumbprints, no key material and no secret.
    let text = String::from_utf8(cli(&app, &["client", "show", id]).stdout).unwrap();
    assert!(text.contains("auth method: private_key_jwt"), "{text}");
    assert!(
        text.contains("KEY ID") && text.contains("THUMBPRINT"),
        "{text}"
    );
    for key in [&es, &ed] {
        assert!(
            text.contains(&key.kid) && text.contains(&key.thumbprint),
            "{text}"
        );
        assert!(!text.contains(key.jwk["x"].as_str().unwrap()), "{text}");
    }
    let output = create(&app, &["--jwks-file", &file]);
    assert!(output.status.success(), "{output:?}");
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(
        text.contains(&es.thumbprint) && !text.contains("client_secret"),
        "{text}"
    );

    // A single key may go without a kid.
    let mut anonymous = PartnerKey::es256("unused");
    anonymous.jwk.as_object_mut().unwrap().remove("kid");
    let one = write_file(&app, "one.json", &jwks(&[&anonymous]));
    let created = json_of(&create(&app, &["--jwks-file", &one, "--json"]));
    assert_eq!(
        listed_keys(&created),
        [(Value::Null, json!(["ES256"]), json!(anonymous.thumbprint))]
    );

    let by_uri = json_of(&create(
        &app,
        &["--jwks-uri", "https://partner.example/jwks.json", "--json"],
    ));
    assert_eq!(by_uri["jwks_uri"], "https://partner.example/jwks.json");
    assert_eq!(by_uri["keys"], json!([]));
    assert!(by_uri.get("client_secret").is_none(), "{by_uri}");
    let id = by_uri["client_id"].as_str().unwrap();
    let text = String::from_utf8(cli(&app, &["client", "show", id]).stdout).unwrap();
    assert!(
        text.contains("jwks_uri: https://partner.example/jwks.json"),
        "{text}"
    );
    assert_eq!(client_count(&app), 4);
    app.stop().await;
}

async fn key_enrolment_refusals_are_one_line_and_create_nothing(backend: Backend) {
    let Some(app) = spawn_auth_server(backend).await else {
        return;
    };
    let es = PartnerKey::es256("es-2026");
    // The private half of a partner's key, as a JWK: the coordinates and "d".
    let d = "jTPcDwZc9SgS3QajqgE1aIcb0lEcm7UO9h3Rn3kkCH8";
    let mut private = es.jwk.clone();
    private["d"] = json!(d);
    let private = write_file(
        &app,
        "private.json",
        &json!({ "keys": [private] }).to_string(),
    );
    let secret = "c2hhcmVkLXNlY3JldC1zaGFyZWQtc2VjcmV0";
    let oct = write_file(
        &app,
        "oct.json",
        &json!({ "keys": [{ "kty": "oct", "kid": "hmac", "k": secret }] }).to_string(),
    );
    let not_jwks = write_file(&app, "not.json", "[1, 2, 3]");
    let empty = write_file(&app, "empty.json", r#"{"keys": []}"#);
    let good = write_file(&app, "jwks.json", &jwks(&[&es]));
    let missing = app.db.dir.path().join("missing.json");
    let missing = missing.to_str().unwrap();

    let refused = |args: &[&str], expected: &str| {
        let line = failure_line(&cli(&app, args));
        assert!(
            line.starts_with("error: ") && line.contains(expected),
            "{args:?}: {line}"
        );
        assert!(
            !line.contains(d) && !line.contains(secret),
            "{args:?}: {line}"
        );
        line
    };
    fn with<'a>(more: &[&'a str]) -> Vec<&'a str> {
        CREATE.iter().chain(more).copied().collect()
    }
    refused(
        &with(&[]),
        "private_key_jwt needs --jwks-file FILE or --jwks-uri URL",
    );
    let line = refused(&with(&["--jwks-file", &private]), "this is a private key");
    assert!(
        line.contains("ask the partner to generate a new key pair"),
        "{line}"
    );
    refused(
        &with(&["--jwks-file", &oct]),
        "symmetric (kty \"oct\") keys are not accepted",
    );
    refused(
        &with(&["--jwks-uri", "http://partner.example/"]),
        "--jwks-uri: the jwks_uri must use https",
    );
    let line = refused(
        &with(&[
            "--jwks-uri",
            "https://user:hunter2@partner.example/jwks.json",
        ]),
        "--jwks-uri: the jwks_uri must not contain credentials",
    );
    assert!(!line.contains("hunter2"), "{line}");
    refused(
        &with(&["--jwks-uri", "partner.example/jwks.json"]),
        "not an absolute URL",
    );
    refused(
        &with(&[
            "--jwks-file",
            &good,
            "--jwks-uri",
            "https://partner.example/jwks.json",
        ]),
        "cannot be used with",
    );
    refused(
        &with(&["--jwks-file", &not_jwks]),
        "not a JSON object with a \"keys\" array",
    );
    refused(&with(&["--jwks-file", &empty]), "no usable signing key");
    refused(&with(&["--jwks-file", missing]), "cannot read JWKS file");
    refused(
        &[
            "client",
            "create",
            "--name",
            "n",
            "--partner",
            "acme",
            "--scopes",
            "orders:read",
            "--jwks-file",
            &good,
        ],
        "--jwks-file/--jwks-uri is for private_key_jwt clients, not client_secret_basic",
    );
    refused(
        &[
            "client",
            "create",
            "--name",
            "n",
            "--partner",
            "acme",
            "--scopes",
            "orders:read",
            "--auth-method",
            "tls_client_auth",
            "--tls-san",
            "client.example",
            "--jwks-uri",
            "https://partner.example/jwks.json",
        ],
        "--jwks-file/--jwks-uri is for private_key_jwt clients, not tls_client_auth",
    );
    assert_eq!(client_count(&app), 0, "a refused create creates nothing");
    app.stop().await;
}

async fn a_private_key_jwt_client_rotates_its_keys_from_the_cli_while_the_server_runs(
    backend: Backend,
) {
    let Some(app) = spawn_auth_server(backend).await else {
        return;
    };
    let (old, new) = (PartnerKey::es256("2026"), PartnerKey::ed25519("2027"));
    let first = write_file(&app, "first.json", &jwks(&[&old]));
    let overlap = write_file(&app, "overlap.json", &jwks(&[&old, &new]));
    let last = write_file(&app, "last.json", &jwks(&[&new]));
    let created = json_of(&create(&app, &["--jwks-file", &first, "--json"]));
    let id = created["client_id"].as_str().unwrap().to_owned();
    let id = id.as_str();
    assert_eq!(token_status(&app, id, &old).await, StatusCode::OK);
    assert_eq!(token_status(&app, id, &new).await, StatusCode::UNAUTHORIZED);

    // The partner publishes the new key beside the old one: both sign.
    let both = json_of(&cli(
        &app,
        &["client", "update", id, "--jwks-file", &overlap, "--json"],
    ));
    assert_eq!(listed_keys(&both), [listed(&old), listed(&new)]);
    app.sync_clients().await;
    assert_eq!(token_status(&app, id, &new).await, StatusCode::OK);
    assert_eq!(token_status(&app, id, &old).await, StatusCode::OK);

    // Refused updates leave the keys as they are.
    let mut private = new.jwk.clone();
    private["d"] = json!("jTPcDwZc9SgS3QajqgE1aIcb0lEcm7UO9h3Rn3kkCH8");
    let private = write_file(
        &app,
        "private.json",
        &json!({ "keys": [private] }).to_string(),
    );
    for (args, expected) in [
        (
            vec!["client", "update", id, "--jwks-file", private.as_str()],
            "this is a private key",
        ),
        (
            vec![
                "client",
                "update",
                id,
                "--jwks-uri",
                "http://partner.example/",
            ],
            "--jwks-uri",
        ),
        (
            vec!["client", "rotate-secret", id],
            "holds no secret: rotate its certificates (--add-cert, --remove-cert) or keys \
             (--jwks-file, --jwks-uri)",
        ),
        (
            vec!["client", "update", id, "--remove-cert", "abc"],
            "no certificate with thumbprint abc",
        ),
        // Not half done: the new key set is not registered when the rest is refused.
        (
            vec![
                "client",
                "update",
                id,
                "--jwks-file",
                last.as_str(),
                "--remove-cert",
                "abc",
            ],
            "no certificate with thumbprint abc",
        ),
    ] {
        let line = failure_line(&cli(&app, &args));
        assert!(
            line.starts_with("error: ") && line.contains(expected),
            "{args:?}: {line}"
        );
    }
    let shown = json_of(&cli(&app, &["client", "show", id, "--json"]));
    assert_eq!(listed_keys(&shown), [listed(&old), listed(&new)]);

    // The old key is withdrawn: its assertions are refused from then on.
    let rotated = json_of(&cli(
        &app,
        &["client", "update", id, "--jwks-file", &last, "--json"],
    ));
    assert_eq!(listed_keys(&rotated), [listed(&new)]);
    app.sync_clients().await;
    assert_eq!(token_status(&app, id, &old).await, StatusCode::UNAUTHORIZED);
    assert_eq!(token_status(&app, id, &new).await, StatusCode::OK);

    // Moving to a published key set: the registered document is dropped.
    let moved = json_of(&cli(
        &app,
        &[
            "client",
            "update",
            id,
            "--jwks-uri",
            "https://partner.example/jwks.json",
            "--json",
        ],
    ));
    assert_eq!(moved["jwks_uri"], "https://partner.example/jwks.json");
    assert_eq!(moved["keys"], json!([]));

    let trail = json_of(&cli(&app, &["audit", "--client", id, "--json"]));
    let updates: Vec<Value> = trail
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "client.update")
        .map(|e| serde_json::from_str(e["detail"].as_str().unwrap()).unwrap())
        .collect();
    assert_eq!(updates.len(), 3, "{trail}");
    assert_eq!(
        (&updates[0]["jwks"], &updates[0]["jwks_uri"]),
        (&json!(false), &json!("https://partner.example/jwks.json"))
    );
    for update in &updates[1..] {
        assert_eq!(
            (&update["jwks"], &update["jwks_uri"]),
            (&json!(true), &Value::Null)
        );
    }
    let actions = audit_actions(&app, id).await;
    assert_eq!(actions.last().map(String::as_str), Some("client.create"));
    assert!(
        !actions.iter().any(|a| a.starts_with("client.rotate")),
        "{actions:?}"
    );
    app.stop().await;
}
