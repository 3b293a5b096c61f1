//! `private_key_jwt` (RFC 7523 §2.2) at the token endpoint, with the audience rule of RFC 10070:
//! the assertion's `aud` is the issuer identifier alone. Keys registered as a JWKS document or
//! published at a `jwks_uri` (served here by a small HTTP server the test controls); `jti`
//! single use across instances; every refusal an `invalid_client` that is audited and counted.

use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use auth_server::admin::ClientAuth;
use auth_server::store::KeySourceUpdate;
use common::partner_keys::{PartnerKey, assertion_token, claims, jwks};
use common::{Backend, ISSUER, TestAuth, claims_of, spawn_auth_server, spawn_auth_with};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::Mutex;

async fn pkjwt_client(auth: &TestAuth, keys: &[&PartnerKey]) -> String {
    auth.client_authenticating(
        "acme",
        "orders:read",
        ClientAuth::PrivateKeyJwt(KeySourceUpdate::Document(jwks(keys))),
    )
    .await
    .client_id
    .to_string()
}

async fn refused(response: reqwest::Response) -> Value {
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client", "{body}");
    body
}

async fn audit_reasons(auth: &TestAuth, client_id: &str) -> Vec<String> {
    auth.state.audit.flush().await;
    auth.state
        .db
        .list_audit(Some(client_id), 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "client.auth_failed")
        .map(|e| {
            let detail: Value = serde_json::from_str(&e.detail).unwrap();
            detail["reason"].as_str().unwrap_or_default().to_owned()
        })
        .collect()
}

async fn accepted_and_refused(backend: Backend) {
    let Some(auth) = spawn_auth_server(backend).await else {
        return;
    };
    let es = PartnerKey::es256("es-1");
    let ed = PartnerKey::ed25519("ed-1");
    let client_id = pkjwt_client(&auth, &[&es, &ed]).await;

    // Accepted: aud = the issuer (as a string, and as the only element of an array), either key,
    // with or without client_id in the form.
    for (assertion, form_id) in [
        (es.assertion(&client_id), None),
        (ed.assertion(&client_id), Some(client_id.as_str())),
        (es.assertion_to(&client_id, json!([ISSUER])), None),
    ] {
        let response = assertion_token(&auth, form_id, &assertion).await;
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        let token = claims_of(body["access_token"].as_str().unwrap());
        assert_eq!(token["client_id"], client_id.as_str());
        assert!(token.get("cnf").is_none(), "no certificate, no binding");
    }

    let endpoint = format!("{ISSUER}/oauth2/token");
    let now = common::unix_time() as i64;
    let mut long = claims(&client_id, json!(ISSUER));
    long["exp"] = json!(now + 301);
    long["iat"] = json!(now);
    let mut no_jti = claims(&client_id, json!(ISSUER));
    no_jti.as_object_mut().unwrap().remove("jti");
    let mut no_exp = claims(&client_id, json!(ISSUER));
    no_exp.as_object_mut().unwrap().remove("exp");
    let mut expired = claims(&client_id, json!(ISSUER));
    expired["iat"] = json!(now - 600);
    expired["exp"] = json!(now - 400);
    let mut other_iss = claims(&client_id, json!(ISSUER));
    other_iss["iss"] = json!("cl_someoneelse");
    let stranger = PartnerKey::es256("es-1");
    let cases: Vec<(&str, String, Option<&str>)> = vec![
        (
            "aud = token endpoint (RFC 10070 refuses it)",
            es.assertion_to(&client_id, json!(endpoint)),
            None,
        ),
        (
            "aud = [issuer, token endpoint]",
            es.assertion_to(&client_id, json!([ISSUER, endpoint])),
            None,
        ),
        (
            "aud = another server",
            es.assertion_to(&client_id, json!("https://elsewhere.example")),
            None,
        ),
        ("lifetime of 301 s", es.sign(&long), None),
        ("no jti", es.sign(&no_jti), None),
        ("no exp", es.sign(&no_exp), None),
        ("expired", es.sign(&expired), None),
        ("iss is not the client", es.sign(&other_iss), None),
        (
            "signed by an unregistered key with a registered kid",
            stranger.assertion(&client_id),
            None,
        ),
        (
            "client_id in the form names another client",
            es.assertion(&client_id),
            Some("cl_0123456789abcdef0123"),
        ),
        ("not a JWT", "not.a.jwt".to_owned(), None),
    ];
    for (what, assertion, form_id) in &cases {
        let response = assertion_token(&auth, *form_id, assertion).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{what}");
        refused(response).await;
    }
    let reasons = audit_reasons(&auth, &client_id).await;
    assert!(
        reasons.len() >= cases.len() - 2,
        "each refusal about this client is audited: {reasons:?}"
    );
    assert!(reasons.iter().all(|r| !r.is_empty()), "{reasons:?}");

    // Replay: the same assertion a second time is refused, though it is still valid.
    let once = es.assertion(&client_id);
    assert_eq!(
        assertion_token(&auth, None, &once).await.status(),
        StatusCode::OK
    );
    refused(assertion_token(&auth, None, &once).await).await;
    assert!(
        audit_reasons(&auth, &client_id)
            .await
            .contains(&"assertion_replayed".to_owned())
    );
    auth.stop().await;
}

async fn methods_are_enforced(backend: Backend) {
    let Some(auth) = spawn_auth_server(backend).await else {
        return;
    };
    let key = PartnerKey::es256("k1");
    let pkjwt = pkjwt_client(&auth, &[&key]).await;
    // A secret client cannot authenticate with an assertion, even one signed by a key some
    // other client registered.
    let (secret_client, secret) = auth.client("acme", "orders:read").await;
    refused(
        assertion_token(
            &auth,
            None,
            &key.assertion(secret_client.client_id.as_str()),
        )
        .await,
    )
    .await;
    // And a private_key_jwt client has no secret to present.
    let response = common::token_response(
        &auth,
        pkjwt.as_str(),
        secret.expose(),
        common::CLIENT_CREDENTIALS,
    )
    .await;
    refused(response).await;
    // An assertion together with a secret is one method too many.
    let response = common::http()
        .post(auth.url("/oauth2/token"))
        .basic_auth(secret_client.client_id.as_str(), Some(secret.expose()))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", common::partner_keys::JWT_BEARER),
            ("client_assertion", &key.assertion(&pkjwt)),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    // Another assertion type is refused.
    let response = common::http()
        .post(auth.url("/oauth2/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:saml2-bearer",
            ),
            ("client_assertion", &key.assertion(&pkjwt)),
        ])
        .send()
        .await
        .unwrap();
    refused(response).await;
    let metadata: Value = common::http()
        .get(auth.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for method in [
        "client_secret_basic",
        "client_secret_post",
        "tls_client_auth",
        "self_signed_tls_client_auth",
        "private_key_jwt",
    ] {
        assert!(
            metadata["token_endpoint_auth_methods_supported"]
                .as_array()
                .unwrap()
                .contains(&json!(method)),
            "{method}"
        );
    }
    assert_eq!(
        metadata["token_endpoint_auth_signing_alg_values_supported"],
        json!(["ES256", "EdDSA", "RS256", "PS256"])
    );
    auth.stop().await;
}

on_both_backends!(accepted_and_refused, methods_are_enforced);

/// Two instances on one PostgreSQL database: an assertion spent at one is refused at the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_is_refused_by_another_instance() {
    let Some(first) = spawn_auth_server(Backend::Postgres).await else {
        return;
    };
    let db = common::TestDb::sharing(&first.db);
    let settings = TestAuth::settings(&db);
    let second = spawn_auth_with(db, settings).await;
    let key = PartnerKey::es256("k1");
    let client_id = pkjwt_client(&first, &[&key]).await;
    let assertion = key.assertion(&client_id);
    assert_eq!(
        assertion_token(&first, None, &assertion).await.status(),
        StatusCode::OK
    );
    refused(assertion_token(&second, None, &assertion).await).await;
    // A fresh assertion works at the second instance: it knows the client.
    assert_eq!(
        assertion_token(&second, None, &key.assertion(&client_id))
            .await
            .status(),
        StatusCode::OK
    );
    second.stop().await;
    first.stop().await;
}

/// A partner's key set published at a URL this test serves, counting fetches.
struct PublishedKeys {
    url: String,
    keys: Arc<Mutex<Option<String>>>,
    fetches: Arc<AtomicUsize>,
}

async fn publish(initial: String) -> PublishedKeys {
    let keys = Arc::new(Mutex::new(Some(initial)));
    let fetches = Arc::new(AtomicUsize::new(0));
    let (k, f) = (keys.clone(), fetches.clone());
    let app = axum::Router::new().route(
        "/jwks.json",
        axum::routing::get(move || {
            let (keys, fetches) = (k.clone(), f.clone());
            async move {
                fetches.fetch_add(1, Ordering::SeqCst);
                match keys.lock().await.clone() {
                    Some(doc) => (StatusCode::OK, doc),
                    None => (StatusCode::SERVICE_UNAVAILABLE, String::new()),
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    PublishedKeys { url, keys, fetches }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_at_a_jwks_uri_are_fetched_cached_and_refetched_once_for_a_new_kid() {
    let Some(auth) = spawn_auth_server(Backend::Sqlite).await else {
        return;
    };
    let old = PartnerKey::es256("2026-01");
    let published = publish(jwks(&[&old])).await;
    let client_id = auth
        .client_authenticating(
            "acme",
            "orders:read",
            ClientAuth::PrivateKeyJwt(KeySourceUpdate::Uri(published.url.clone())),
        )
        .await
        .client_id
        .to_string();
    for _ in 0..3 {
        let response = assertion_token(&auth, None, &old.assertion(&client_id)).await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    assert_eq!(published.fetches.load(Ordering::SeqCst), 1, "cached");

    // The partner rotates: the new key is published, and used at once. One refetch.
    let new = PartnerKey::ed25519("2026-02");
    *published.keys.lock().await = Some(jwks(&[&new]));
    let response = assertion_token(&auth, None, &new.assertion(&client_id)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(published.fetches.load(Ordering::SeqCst), 2);
    // An unknown kid within the cooldown costs no fetch.
    let unknown = PartnerKey::es256("never-published");
    refused(assertion_token(&auth, None, &unknown.assertion(&client_id)).await).await;
    assert_eq!(published.fetches.load(Ordering::SeqCst), 2, "cooldown");

    // The URI goes down: the keys fetched already keep working.
    *published.keys.lock().await = None;
    let response = assertion_token(&auth, None, &new.assertion(&client_id)).await;
    assert_eq!(response.status(), StatusCode::OK);
    auth.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jwks_uri_that_is_down_from_the_start_is_an_invalid_client_not_an_error() {
    let Some(auth) = spawn_auth_server(Backend::Sqlite).await else {
        return;
    };
    let key = PartnerKey::es256("k1");
    let published = publish(jwks(&[&key])).await;
    *published.keys.lock().await = None;
    let client_id = auth
        .client_authenticating(
            "acme",
            "orders:read",
            ClientAuth::PrivateKeyJwt(KeySourceUpdate::Uri(published.url.clone())),
        )
        .await
        .client_id
        .to_string();
    refused(assertion_token(&auth, None, &key.assertion(&client_id)).await).await;
    assert!(published.fetches.load(Ordering::SeqCst) >= 1);
    assert!(
        audit_reasons(&auth, &client_id)
            .await
            .iter()
            .any(|r| r.contains("unavailable")),
        "the audit says why"
    );
    auth.stop().await;
}

/// Key rotation through the CLI's path (a new JWKS document holding both keys, then the new one
/// alone), with a partner requesting tokens all along: no request fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_rotation_fails_no_request() {
    let Some(auth) = spawn_auth_server(Backend::Sqlite).await else {
        return;
    };
    let old = PartnerKey::es256("old");
    let new = PartnerKey::es256("new");
    let client_id = pkjwt_client(&auth, &[&old]).await;
    let update = |keys: &[&PartnerKey]| auth_server::store::ClientUpdate {
        keys: Some(KeySourceUpdate::Document(jwks(keys))),
        ..Default::default()
    };
    let mut outcomes = Vec::new();
    outcomes.push(
        assertion_token(&auth, None, &old.assertion(&client_id))
            .await
            .status(),
    );
    auth_server::admin::update_client(&auth.state.db, &client_id, update(&[&old, &new]))
        .await
        .unwrap();
    // Until the server has seen the new set, the partner keeps the old key...
    outcomes.push(
        assertion_token(&auth, None, &old.assertion(&client_id))
            .await
            .status(),
    );
    auth.sync_clients().await;
    // ...then switches.
    for _ in 0..3 {
        outcomes.push(
            assertion_token(&auth, None, &new.assertion(&client_id))
                .await
                .status(),
        );
    }
    auth_server::admin::update_client(&auth.state.db, &client_id, update(&[&new]))
        .await
        .unwrap();
    auth.sync_clients().await;
    outcomes.push(
        assertion_token(&auth, None, &new.assertion(&client_id))
            .await
            .status(),
    );
    assert!(
        outcomes.iter().all(|s| *s == StatusCode::OK),
        "{outcomes:?}"
    );
    // The withdrawn key no longer works.
    refused(assertion_token(&auth, None, &old.assertion(&client_id)).await).await;
    auth.stop().await;
}
