//! Transport security: no plaintext on a non-loopback address unless a TLS-terminating proxy is
//! declared; TLS served end to end; X-Forwarded-For believed only from declared proxies.

use crate::common;

use std::net::IpAddr;

use common::{Backend, TestAuth, spawn_auth_with, test_db};
use reqwest::StatusCode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaintext_on_a_public_address_is_refused_with_a_clear_message() {
    let db = test_db(Backend::Sqlite).await.unwrap();
    let mut settings = TestAuth::settings(&db);
    settings.bind = "0.0.0.0:0".parse().unwrap();
    let err = match auth_server::Application::build(settings.clone()).await {
        Ok(_) => panic!("served plaintext on 0.0.0.0"),
        Err(err) => err.to_string(),
    };
    assert!(
        err.contains("refusing to serve plaintext") && err.contains("AUTH_TLS_CERT"),
        "{err}"
    );

    let mut api =
        resource_api::Settings::with_defaults(common::ISSUER, "http://127.0.0.1:9/jwks", &db.url);
    api.bind = "0.0.0.0:0".parse().unwrap();
    let err = match resource_api::Application::build(api.clone()).await {
        Ok(_) => panic!("served plaintext on 0.0.0.0"),
        Err(err) => err.to_string(),
    };
    assert!(err.contains("RESOURCE_TRUSTED_PROXIES"), "{err}");

    // Declaring the TLS-terminating proxy in front makes it a deliberate choice.
    settings.transport.trusted_proxies = vec!["10.0.0.1".parse().unwrap()];
    assert!(auth_server::Application::build(settings).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_is_served_end_to_end_with_a_generated_certificate() {
    let db = test_db(Backend::Sqlite).await.unwrap();
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap();
    let cert_path = db.dir.path().join("cert.pem");
    let key_path = db.dir.path().join("key.pem");
    std::fs::write(&cert_path, certified.cert.pem()).unwrap();
    std::fs::write(&key_path, certified.signing_key.serialize_pem()).unwrap();
    let mut settings = TestAuth::settings(&db);
    settings.transport =
        edge::Transport::new(Some(cert_path), Some(key_path), vec![], "AUTH").unwrap();
    let auth = spawn_auth_with(db, settings).await;
    let (client, secret) = auth.client("acme", "orders:read").await;

    let root = reqwest::Certificate::from_pem(certified.cert.pem().as_bytes()).unwrap();
    let https = edge::http_client(
        std::time::Duration::from_secs(10),
        std::time::Duration::from_secs(30),
    )
    .tls_certs_only([root])
    .build()
    .unwrap();
    let base = auth.base_url.replace("http://", "https://");
    let response = https
        .post(format!("{base}/oauth2/token"))
        .basic_auth(client.client_id.as_str(), Some(secret.expose()))
        .form(common::CLIENT_CREDENTIALS)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["strict-transport-security"],
        "max-age=31536000"
    );
    assert_eq!(response.headers()["x-frame-options"], "DENY");
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(body["access_token"].is_string());
    // Plain HTTP on the TLS port gets no answer in the clear.
    let plain = common::http().get(auth.url("/healthz")).send().await;
    assert!(plain.is_err() || plain.unwrap().status() != StatusCode::OK);
    auth.stop().await;
}

async fn failed_attempt_source(trusted: Vec<IpAddr>) -> Option<String> {
    let db = test_db(Backend::Sqlite).await.unwrap();
    let mut settings = TestAuth::settings(&db);
    settings.transport.trusted_proxies = trusted;
    let auth = spawn_auth_with(db, settings).await;
    let (client, _) = auth.client("acme", "orders:read").await;
    let response = common::http()
        .post(auth.url("/oauth2/token"))
        .basic_auth(client.client_id.as_str(), Some("pcs_wrong"))
        .header("x-forwarded-for", "198.51.100.1, 203.0.113.7")
        .form(common::CLIENT_CREDENTIALS)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    auth.state.audit.flush().await;
    let trail = auth
        .state
        .db
        .list_audit(Some(client.client_id.as_str()), 10)
        .await
        .unwrap();
    let source = trail
        .iter()
        .find(|r| r.action == "client.auth_failed")
        .and_then(|r| r.source_ip.clone());
    auth.stop().await;
    source
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_for_is_honoured_only_from_trusted_proxies() {
    assert_eq!(
        failed_attempt_source(vec![]).await.as_deref(),
        Some("127.0.0.1"),
        "no proxy declared: the header is ignored"
    );
    assert_eq!(
        failed_attempt_source(vec!["127.0.0.1".parse().unwrap()])
            .await
            .as_deref(),
        Some("203.0.113.7"),
        "through a declared proxy: the nearest untrusted address"
    );
}
