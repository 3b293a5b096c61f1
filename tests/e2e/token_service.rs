//! End-to-end tests of the token service over real HTTP, each on SQLite and on PostgreSQL.

use crate::common;

use std::collections::BTreeSet;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::{Backend, CLIENT_CREDENTIALS, ClientAuth, ISSUER, TestAuth, http, spawn_auth_server};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use reqwest::StatusCode;
use serde_json::Value;

on_both_backends!(
    a_token_from_each_auth_method_verifies_against_the_served_jwks,
    lifetime_honours_the_default_and_the_per_client_override,
    requested_scope_narrows_and_resource_picks_the_audience,
    every_client_mistake_gets_its_rfc_6749_error,
    a_right_secret_with_url_encoded_special_characters_is_accepted,
    a_disabled_client_is_refused_and_enabled_again,
    discovery_and_health_endpoints_answer,
    failed_authentications_and_issued_tokens_are_audited,
    a_burst_of_audit_events_is_stored_whole_and_in_order,
);

async fn jwks(app: &TestAuth) -> JwkSet {
    common::get_json(app.url("/.well-known/jwks.json")).await
}

/// Verifies `token` with jsonwebtoken against the served JWKS and returns its header and claims.
async fn verify(app: &TestAuth, token: &str) -> (jsonwebtoken::Header, Value) {
    keys::install_crypto_provider();
    let header = jsonwebtoken::decode_header(token).expect("header");
    let set = jwks(app).await;
    let jwk = set
        .find(header.kid.as_deref().expect("kid"))
        .expect("kid is published");
    let key = DecodingKey::from_jwk(jwk).expect("decoding key");
    let mut validation = Validation::new(header.alg);
    validation.set_audience(&["partner-api"]);
    validation.set_issuer(&[ISSUER]);
    validation.validate_nbf = true;
    validation.set_required_spec_claims(&["exp", "iat", "nbf", "iss", "aud", "sub"]);
    let data = jsonwebtoken::decode::<Value>(token, &key, &validation).expect("token verifies");
    (data.header, data.claims)
}

async fn a_token_from_each_auth_method_verifies_against_the_served_jwks(backend: Backend) {
    let Some(app) = spawn_auth_server(backend).await else {
        return;
    };
    let (client, secret) = app.client("acme", "orders:read catalog:read").await;
    for method in [ClientAuth::Basic, ClientAuth::Post] {
        let response = common::token_response_as(
            &app,
            method,
            client.client_id.as_str(),
            secret.expose(),
            CLIENT_CREDENTIALS,
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["cache-control"], "no-store");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body["expires_in"], 600);
        assert_eq!(body["scope"], "catalog:read orders:read");
        let token = body["access_token"].as_str().unwrap();
        let (header, claims) = verify(&app, token).await;
        assert_eq!(header.typ.as_deref(), Some("at+jwt"));
        assert_eq!(header.alg, jsonwebtoken::Algorithm::ES256);
        assert_eq!(
            header.kid.as_deref(),
            app.state.keys.get().active().map(|k| k.kid())
        );
        // The raw header carries exactly alg, typ and kid: nothing a verifier could be tricked by.
        let raw_header: Value = common::header_of(token);
        let names: BTreeSet<&str> = raw_header
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(names, BTreeSet::from(["alg", "kid", "typ"]));
        let names: BTreeSet<&str> = claims
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            names,
            BTreeSet::from([
                "iss",
                "sub",
                "aud",
                "exp",
                "iat",
                "nbf",
                "jti",
                "client_id",
                "scope",
                "partner_id"
            ])
        );
        assert_eq!(claims["iss"], ISSUER);
        assert_eq!(claims["sub"], client.client_id.as_str());
        assert_eq!(claims["client_id"], client.client_id.as_str());
        assert_eq!(claims["aud"], "partner-api");
        assert_eq!(claims["partner_id"], "acme");
        assert_eq!(claims["scope"], "catalog:read orders:read");
        assert_eq!(claims["nbf"], claims["iat"]);
        let now = auth_server::now();
        assert!((claims["iat"].as_i64().unwrap() - now).abs() <= 5);
    }
    app.stop().await;
}

async fn lifetime_honours_the_default_and_the_per_client_override(backend: Backend) {
    let Some(app) = spawn_auth_server(backend).await else {
        return;
    };
    let (default_client, default_secret) = app.client("acme", "orders:read").await;
    let (short, short_secret) = app
        .client_with("globex", "orders:read", |c| c.access_token_ttl = Some(120))
        .await;
    for (client, secret, ttl) in [
        (&default_client, &default_secret, 600),
        (&short, &short_secret, 120),
    ] {
        let body: Value = common::token_response_as(
            &app,
            ClientAuth::Basic,
            client.client_id.as_str(),
            secret.expose(),
            CLIENT_CREDENTIALS,
        )
        .await
        .json()
        .await
        .unwrap();
        assert_eq!(body["expires_in"], ttl);
        let (_, claims) = verify(&app, body["access_token"].as_str().unwrap()).await;
        assert_eq!(
            claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
            ttl
        );
    }
    app.stop().await;
}

async fn requested_scope_narrows_and_resource_picks_the_audience(backend: Backend) {
    let Some(app) = spawn_auth_server(backend).await else {
        return;
    };
    let (client, secret) = app
        .client_with("initech", "orders:read invoices:read", |c| {
            c.audiences = vec!["partner-api".into(), "https://reports.example".into()]
        })
        .await;
    let id = client.client_id.as_str();
    let response = common::token_response_as(
        &app,
        ClientAuth::Basic,
        id,
        secret.expose(),
        &[
            ("grant_type", "client_credentials"),
            ("scope", "invoices:read"),
        ],
    )
    .await;
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["scope"], "invoices:read");
    let token = body["access_token"].as_str().unwrap();
    let claims: Value = common::claims_of(token);
    assert_eq!(
        claims["aud"], "partner-api",
        "no resource: the first audience"
    );

    let body: Value = common::token_response_as(
        &app,
        ClientAuth::Post,
        id,
        secret.expose(),
        &[
            ("grant_type", "client_credentials"),
            ("resource", "https://reports.example"),
        ],
    )
    .await
    .json()
    .await
    .unwrap();
    let token = body["access_token"].as_str().unwrap();
    let claims: Value = common::claims_of(token);
    assert_eq!(claims["aud"], "https://reports.example");

    let response = common::token_response_as(
        &app,
        ClientAuth::Basic,
        id,
        secret.expose(),
        &[
            ("grant_type", "client_credentials"),
            ("resource", "https://evil.example"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"],
        "invalid_target"
    );
    app.stop().await;
}

/// A request the token endpoint must refuse, and how. `{id}` and `{secret}` in the body and in
/// the credentials stand for a real client's id and secret, `{pad}` for 64 KiB of padding.
struct Mistake {
    what: &'static str,
    content_type: Option<&'static str>,
    body: &'static str,
    authorization: Authorization,
    status: StatusCode,
    error: &'static str,
    basic_challenge: bool,
}

/// The `Authorization` header of a [`Mistake`].
enum Authorization {
    None,
    /// HTTP Basic over `user:password` as written.
    Basic(&'static str),
    /// HTTP Basic over raw bytes (which need not be UTF-8).
    BasicBytes(&'static [u8]),
    /// The header value as written.
    Raw(&'static str),
}

const FORM: Option<&str> = Some("application/x-www-form-urlencoded");

/// Every client mistake and its RFC 6749 §5.2 answer. Failed client authentication carries a
/// Basic challenge exactly when the client tried HTTP Basic.
const MISTAKES: &[Mistake] = &[
    Mistake {
        what: "unknown client (basic)",
        content_type: FORM,
        body: "grant_type=client_credentials",
        authorization: Authorization::Basic("cl_nobody:{secret}"),
        status: StatusCode::UNAUTHORIZED,
        error: "invalid_client",
        basic_challenge: true,
    },
    Mistake {
        what: "unknown client (post)",
        content_type: FORM,
        body: "grant_type=client_credentials&client_id=cl_nobody&client_secret={secret}",
        authorization: Authorization::None,
        status: StatusCode::UNAUTHORIZED,
        error: "invalid_client",
        basic_challenge: false,
    },
    Mistake {
        what: "wrong secret (basic)",
        content_type: FORM,
        body: "grant_type=client_credentials",
        authorization: Authorization::Basic("{id}:pcs_wrong"),
        status: StatusCode::UNAUTHORIZED,
        error: "invalid_client",
        basic_challenge: true,
    },
    Mistake {
        what: "wrong secret (post)",
        content_type: FORM,
        body: "grant_type=client_credentials&client_id={id}&client_secret=pcs_wrong",
        authorization: Authorization::None,
        status: StatusCode::UNAUTHORIZED,
        error: "invalid_client",
        basic_challenge: false,
    },
    Mistake {
        what: "no credentials",
        content_type: FORM,
        body: "grant_type=client_credentials",
        authorization: Authorization::None,
        status: StatusCode::UNAUTHORIZED,
        error: "invalid_client",
        basic_challenge: false,
    },
    Mistake {
        what: "client id without secret",
        content_type: FORM,
        body: "grant_type=client_credentials&client_id={id}",
        authorization: Authorization::None,
        status: StatusCode::UNAUTHORIZED,
        error: "invalid_client",
        basic_challenge: false,
    },
    Mistake {
        what: "missing grant type",
        content_type: FORM,
        body: "client_id={id}&client_secret={secret}",
        authorization: Authorization::None,
        status: StatusCode::BAD_REQUEST,
        error: "invalid_request",
        basic_challenge: false,
    },
    Mistake {
        what: "unsupported grant type",
        content_type: FORM,
        body: "grant_type=password&client_id={id}&client_secret={secret}",
        authorization: Authorization::None,
        status: StatusCode::BAD_REQUEST,
        error: "unsupported_grant_type",
        basic_challenge: false,
    },
    Mistake {
        what: "scope outside the allowed set",
        content_type: FORM,
        body: "grant_type=client_credentials&client_id={id}&client_secret={secret}&scope=orders:read+admin",
        authorization: Authorization::None,
        status: StatusCode::BAD_REQUEST,
        error: "invalid_scope",
        basic_challenge: false,
    },
    Mistake {
        what: "malformed scope",
        content_type: FORM,
        body: "grant_type=client_credentials&client_id={id}&client_secret={secret}&scope=orders:read++catalog:read",
        authorization: Authorization::None,
        status: StatusCode::BAD_REQUEST,
        error: "invalid_scope",
        basic_challenge: false,
    },
    Mistake {
        what: "scope with a forbidden character",
        content_type: FORM,
        body: "grant_type=client_credentials&client_id={id}&client_secret={secret}&scope=%22orders%22",
        authorization: Authorization::None,
        status: StatusCode::BAD_REQUEST,
        error: "invalid_scope",
        basic_challenge: false,
    },
    Mistake {
        what: "duplicated grant_type",
        content_type: FORM,
        body: "grant_type=client_credentials&grant_type=client_credentials&client_id={id}&client_secret={secret}",
        authorization: Authorization::None,
        status: StatusCode::BAD_REQUEST,
        error: "invalid_request",
        basic_challenge: false,
    },
    Mistake {
        what: "duplicated scope",
        content_type: FORM,
        body: "grant_type=client_credentials&scope=orders:read&scope=catalog:read&client_id={id}&client_secret={secret}",
        authorization: Authorization::None,
        status: StatusCode::BAD_REQUEST,
        error: "invalid_request",
        basic_challenge: false,
    },
    Mistake {
        what: "both auth methods",
        content_type: FORM,
        body: "grant_type=client_credentials&client_secret={secret}",
        authorization: Authorization::Basic("{id}:{secret}"),
        status: StatusCode::BAD_REQUEST,
        error: "invalid_request",
        basic_challenge: false,
    },
    Mistake {
        what: "basic: not base64",
        content_type: FORM,
        body: "grant_type=client_credentials",
        authorization: Authorization::Raw("Basic %%%not-base64%%%"),
        status: StatusCode::UNAUTHORIZED,
        error: "invalid_client",
        basic_challenge: true,
    },
    Mistake {
        what: "basic: no colon",
        content_type: FORM,
        body: "grant_type=client_credentials",
        authorization: Authorization::Basic("{id}"),
        status: StatusCode::UNAUTHORIZED,
        error: "invalid_client",
        basic_challenge: true,
    },
    Mistake {
        what: "basic: not utf-8",
        content_type: FORM,
        body: "grant_type=client_credentials",
        authorization: Authorization::BasicBytes(&[0xff, 0xfe, b':', b'x']),
        status: StatusCode::UNAUTHORIZED,
        error: "invalid_client",
        basic_challenge: true,
    },
    Mistake {
        what: "other authorization scheme",
        content_type: FORM,
        body: "grant_type=client_credentials",
        authorization: Authorization::Raw("Bearer abc"),
        status: StatusCode::UNAUTHORIZED,
        error: "invalid_client",
        basic_challenge: true,
    },
    Mistake {
        what: "wrong content type (json)",
        content_type: Some("application/json"),
        body: r#"{"grant_type":"client_credentials"}"#,
        authorization: Authorization::Basic("{id}:{secret}"),
        status: StatusCode::BAD_REQUEST,
        error: "invalid_request",
        basic_challenge: false,
    },
    Mistake {
        what: "no content type",
        content_type: None,
        body: "grant_type=client_credentials",
        authorization: Authorization::Basic("{id}:{secret}"),
        status: StatusCode::BAD_REQUEST,
        error: "invalid_request",
        basic_challenge: false,
    },
    Mistake {
        what: "empty body",
        content_type: FORM,
        body: "",
        authorization: Authorization::Basic("{id}:{secret}"),
        status: StatusCode::BAD_REQUEST,
        error: "invalid_request",
        basic_challenge: false,
    },
    Mistake {
        what: "oversized body",
        content_type: FORM,
        body: "grant_type=client_credentials&pad={pad}",
        authorization: Authorization::Basic("{id}:{secret}"),
        status: StatusCode::PAYLOAD_TOO_LARGE,
        error: "invalid_request",
        basic_challenge: false,
    },
];

impl Mistake {
    /// Sends this mistake's request for the client `id` with `secret`.
    async fn send(&self, app: &TestAuth, id: &str, secret: &str) -> reqwest::Response {
        let fill = |text: &str| {
            text.replace("{id}", id)
                .replace("{secret}", secret)
                .replace("{pad}", &"a".repeat(64 * 1024))
        };
        let mut request = http().post(app.url("/oauth2/token")).body(fill(self.body));
        if let Some(content_type) = self.content_type {
            request = request.header("content-type", content_type);
        }
        let authorization = match self.authorization {
            Authorization::None => None,
            Authorization::Basic(credentials) => {
                Some(format!("Basic {}", STANDARD.encode(fill(credentials))))
            }
            Authorization::BasicBytes(bytes) => Some(format!("Basic {}", STANDARD.encode(bytes))),
            Authorization::Raw(value) => Some(value.to_owned()),
        };
        if let Some(authorization) = authorization {
            request = request.header("authorization", authorization);
        }
        request
            .send()
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", self.what))
    }

    /// Checks status, `Cache-Control`, the Basic challenge, the content type and `error`.
    async fn check(&self, response: reqwest::Response) {
        let what = self.what;
        assert_eq!(response.status(), self.status, "{what}");
        assert_eq!(response.headers()["cache-control"], "no-store", "{what}");
        let challenge = response.headers().get("www-authenticate");
        assert_eq!(
            challenge.is_some(),
            self.basic_challenge,
            "{what}: WWW-Authenticate presence"
        );
        if let Some(challenge) = challenge {
            assert!(challenge.to_str().unwrap().starts_with("Basic"), "{what}");
        }
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json"),
            "{what}"
        );
        let body: Value = response
            .json()
            .await
            .unwrap_or_else(|e| panic!("{what}: body is not JSON: {e}"));
        assert_eq!(body["error"], self.error, "{what}: {body}");
    }
}

async fn every_client_mistake_gets_its_rfc_6749_error(backend: Backend) {
    let Some(app) = spawn_auth_server(backend).await else {
        return;
    };
    let (client, secret) = app.client("acme", "orders:read catalog:read").await;
    let id = client.client_id.as_str();
    let s = secret.expose();
    for mistake in MISTAKES {
        mistake.check(mistake.send(&app, id, s).await).await;
    }
    let url = app.url("/oauth2/token");
    use StatusCode as S;

    // A GET is not a token request.
    let response = http().get(&url).send().await.unwrap();
    assert_eq!(response.status(), S::METHOD_NOT_ALLOWED);
    // After all that, the real credentials still work.
    assert_eq!(
        common::token_response_as(&app, ClientAuth::Basic, id, s, CLIENT_CREDENTIALS)
            .await
            .status(),
        S::OK
    );
    app.stop().await;
}

async fn a_right_secret_with_url_encoded_special_characters_is_accepted(backend: Backend) {
    let Some(app) = spawn_auth_server(backend).await else {
        return;
    };
    let (client, _) = app.client("acme", "orders:read").await;
    // Generated secrets are base64url, but RFC 6749 §2.3.1 says Basic credentials are form-encoded
    // first: prove the decoding with a secret full of characters that need it.
    let special = "p@ss:w/rd+100%&=é ~";
    let hash = auth_server::secret::hash_secret(special.as_bytes());
    let audit = auth_server::store::AuditEvent {
        at: auth_server::now(),
        actor: "test".into(),
        action: "client.secret_reset".into(),
        client_id: Some(client.client_id.to_string()),
        source_ip: None,
        detail: serde_json::json!({}),
    };
    app.state
        .db
        .replace_client_secrets(client.client_id.as_str(), &hash, auth_server::now(), &audit)
        .await
        .unwrap();
    for basic in [true, false] {
        let response = common::token_response_as(
            &app,
            ClientAuth::Post,
            client.client_id.as_str(),
            special,
            CLIENT_CREDENTIALS,
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK, "basic = {basic}");
    }
    // Sent without form-encoding inside Basic, '+' would mean a space: that secret is wrong.
    let raw = format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{special}", client.client_id))
    );
    let response = http()
        .post(app.url("/oauth2/token"))
        .header("authorization", raw)
        .form(CLIENT_CREDENTIALS)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    app.stop().await;
}

async fn a_disabled_client_is_refused_and_enabled_again(backend: Backend) {
    let Some(app) = spawn_auth_server(backend).await else {
        return;
    };
    let (client, secret) = app.client("globex", "catalog:read").await;
    let id = client.client_id.as_str();
    auth_server::admin::set_disabled(&app.state.db, id, true)
        .await
        .unwrap();
    app.sync_clients().await;
    let response = common::token_response_as(
        &app,
        ClientAuth::Basic,
        id,
        secret.expose(),
        CLIENT_CREDENTIALS,
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"],
        "invalid_client"
    );
    auth_server::admin::set_disabled(&app.state.db, id, false)
        .await
        .unwrap();
    assert_eq!(
        common::token_response_as(
            &app,
            ClientAuth::Basic,
            id,
            secret.expose(),
            CLIENT_CREDENTIALS
        )
        .await
        .status(),
        StatusCode::OK
    );
    app.stop().await;
}

async fn discovery_and_health_endpoints_answer(backend: Backend) {
    let Some(app) = spawn_auth_server(backend).await else {
        return;
    };
    app.client("acme", "orders:read catalog:read").await;
    let response = http()
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "public, max-age=300");
    let set: Value = response.json().await.unwrap();
    let keys = set["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2, "the active key and the pending key");
    let key = &keys[0];
    assert_eq!(key["kty"], "EC");
    assert_eq!(key["crv"], "P-256");
    assert_eq!(key["alg"], "ES256");
    assert_eq!(key["use"], "sig");
    assert!(
        key.get("d").is_none(),
        "private part must never be published"
    );

    let meta: Value = common::get_json(app.url("/.well-known/oauth-authorization-server")).await;
    assert_eq!(meta["issuer"], ISSUER);
    assert_eq!(meta["token_endpoint"], format!("{ISSUER}/oauth2/token"));
    assert_eq!(meta["jwks_uri"], format!("{ISSUER}/.well-known/jwks.json"));
    assert_eq!(
        meta["grant_types_supported"],
        serde_json::json!(["client_credentials", "refresh_token"])
    );
    assert_eq!(
        meta["revocation_endpoint"],
        format!("{ISSUER}/oauth2/revoke")
    );
    assert_eq!(
        meta["introspection_endpoint"],
        format!("{ISSUER}/oauth2/introspect")
    );
    assert_eq!(
        meta["token_endpoint_auth_methods_supported"],
        serde_json::json!([
            "client_secret_basic",
            "client_secret_post",
            "tls_client_auth",
            "self_signed_tls_client_auth",
            "private_key_jwt"
        ])
    );
    assert_eq!(meta["tls_client_certificate_bound_access_tokens"], true);
    assert!(
        meta.get("mtls_endpoint_aliases").is_none(),
        "no mutual-TLS listener, no aliases"
    );
    assert_eq!(
        meta["scopes_supported"],
        serde_json::json!(["catalog:read", "orders:read"])
    );
    // OpenID Connect discovery (API Gateway's JWT authorizer) finds the same document.
    let openid = http()
        .get(app.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap();
    assert_eq!(openid.status(), StatusCode::OK);
    assert!(openid.headers().get("cache-control").is_none());
    assert_eq!(openid.json::<Value>().await.unwrap(), meta);

    let health = http().get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let ready = http().get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    assert_eq!(ready.headers()["x-content-type-options"], "nosniff");
    assert!(ready.headers().get("x-request-id").is_some());

    // Readiness follows the database: once the pool is closed the server says it is not ready.
    app.state.db.close().await;
    let ready = http().get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let unknown = http().get(app.url("/nope")).send().await.unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        unknown.headers()["content-type"],
        "application/problem+json"
    );
}

async fn failed_authentications_and_issued_tokens_are_audited(backend: Backend) {
    let Some(app) = spawn_auth_server(backend).await else {
        return;
    };
    let (client, secret) = app.client("acme", "orders:read").await;
    let id = client.client_id.as_str();
    assert_eq!(
        common::token_response_as(&app, ClientAuth::Basic, id, "pcs_wrong", CLIENT_CREDENTIALS)
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let body: Value = common::token_response_as(
        &app,
        ClientAuth::Basic,
        id,
        secret.expose(),
        CLIENT_CREDENTIALS,
    )
    .await
    .json()
    .await
    .unwrap();
    app.state.audit.flush().await;
    let trail = app.state.db.list_audit(Some(id), 10).await.unwrap();
    let actions: Vec<&str> = trail.iter().map(|r| r.action.as_str()).collect();
    assert_eq!(
        actions,
        ["token.issue", "client.auth_failed", "client.create"]
    );
    assert_eq!(trail[1].source_ip.as_deref(), Some("127.0.0.1"));
    assert!(trail[1].detail.contains("wrong_secret"));
    let (_, claims) = verify(&app, body["access_token"].as_str().unwrap()).await;
    assert!(trail[0].detail.contains(claims["jti"].as_str().unwrap()));
    for record in &trail {
        assert!(!record.detail.contains(secret.expose()));
    }
    app.stop().await;
}

/// A busy server's batch is one transaction: on SQLite several INSERT statements (full chunks
/// through one cached prepared statement, then the rest), on PostgreSQL one. Every event must
/// land once, in the order it was recorded, across chunk boundaries and across batches.
async fn a_burst_of_audit_events_is_stored_whole_and_in_order(backend: Backend) {
    let Some(app) = spawn_auth_server(backend).await else {
        return;
    };
    let event = |seq: usize| auth_server::store::AuditEvent {
        at: seq as i64,
        actor: "server".into(),
        action: "bench.event".into(),
        client_id: Some("burst".into()),
        source_ip: None,
        detail: serde_json::json!({ "seq": seq }),
    };
    // 1,000 events (more than three 256-row statements) and then 600 more, as the audit writer
    // hands them to the store: the second batch reuses the prepared statement of the first.
    for seqs in [0..1000, 1000..1600] {
        let batch: Vec<_> = seqs.map(event).collect();
        app.state.db.insert_audit_events(&batch).await.unwrap();
    }
    let trail = app.state.db.list_audit(Some("burst"), 5000).await.unwrap();
    assert_eq!(trail.len(), 1600);
    // Newest first: ids and sequence numbers both descend, with no gap and no repeat.
    for (i, record) in trail.iter().enumerate() {
        let seq = 1599 - i;
        assert_eq!(record.at, seq as i64);
        assert_eq!(record.detail, format!(r#"{{"seq":{seq}}}"#));
        if i > 0 {
            assert!(record.id < trail[i - 1].id);
        }
    }
    app.stop().await;
}
