//! Mutual TLS (RFC 8705): clients that authenticate with a TLS client certificate at the token
//! service's mutual-TLS listener or through a trusted proxy's `Client-Cert` header (RFC 9440),
//! and the certificate-bound tokens they get, enforced by the partner API over its own TLS
//! listener or behind a trusted proxy. Certificates are made on the spot (`test_support::pki`):
//! a CA and what it issues, another CA, self-signed and expired certificates.

use crate::common;

use std::time::Duration;

use auth_server::admin::{ClientAuth, TlsIdentity, certs_from_pem};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::system::{TestApi, resource_settings, spawn_resource_with};
use common::{Backend, TestAuth, claims_of, spawn_auth_with, test_db};
use reqwest::StatusCode;
use serde_json::Value;
use test_support::pki::{Ca, Leaf, Subject, self_signed};

/// Both services speaking TLS with a server certificate of `server_ca`; the token service with
/// its mutual-TLS listener trusting `client_ca` for `tls_client_auth`; the partner API asking
/// for client certificates. The partner API reads the token service's keys from a plain-HTTP
/// mirror (its own HTTP client trusts only the system's roots, not this test's CA).
struct Mtls {
    auth: TestAuth,
    api: TestApi,
    server_ca: Ca,
    client_ca: Ca,
    api_base: String,
}

fn https_client(server_ca: &Ca, identity: Option<&Leaf>) -> reqwest::Client {
    let root = reqwest::Certificate::from_pem(server_ca.cert_pem().as_bytes()).unwrap();
    let builder = edge::http_client(Duration::from_secs(10), Duration::from_secs(30))
        .tls_certs_only([root])
        .pool_max_idle_per_host(0);
    let builder = match identity {
        Some(leaf) => {
            builder.identity(reqwest::Identity::from_pem(leaf.identity_pem().as_bytes()).unwrap())
        }
        None => builder,
    };
    builder.build().unwrap()
}

/// Serves `auth`'s current JWKS on plain HTTP.
async fn jwks_mirror(auth: &TestAuth) -> String {
    let keys = auth.state.keys.clone();
    let app = axum::Router::new().route(
        "/jwks.json",
        axum::routing::get(move || {
            let keys = keys.clone();
            async move { keys.get().jwks_json().clone() }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

async fn mtls_system(backend: Backend) -> Option<Mtls> {
    let db = test_db(backend).await?;
    let server_ca = Ca::new("Test Server CA");
    let client_ca = Ca::new("Partner CA");
    let server = server_ca.server();
    let dir = db.dir.path().to_owned();
    let (cert, key) = (dir.join("server.pem"), dir.join("server.key"));
    std::fs::write(&cert, &server.cert_pem).unwrap();
    std::fs::write(&key, &server.key_pem).unwrap();

    let mut settings = TestAuth::settings(&db);
    settings.transport =
        edge::Transport::new(Some(cert.clone()), Some(key.clone()), vec![], "AUTH").unwrap();
    settings.transport.client_cas = Some(edge::ClientCas::from_pem(&client_ca.cert_pem()).unwrap());
    settings.mtls_bind = Some("127.0.0.1:0".parse().unwrap());
    let auth = spawn_auth_with(db, settings).await;

    let api_db = test_db(backend).await?;
    let mut api_settings = resource_settings(&auth, &api_db);
    api_settings.jwks_url = jwks_mirror(&auth).await;
    api_settings.transport =
        edge::Transport::new(Some(cert), Some(key), vec![], "RESOURCE").unwrap();
    api_settings.transport.request_client_certs = true;
    let api = spawn_resource_with(api_db, api_settings).await;
    api.wait_ready().await;
    let api_base = api.base_url.replace("http://", "https://");
    Some(Mtls {
        auth,
        api,
        server_ca,
        client_ca,
        api_base,
    })
}

impl Mtls {
    fn mtls_url(&self, path: &str) -> String {
        format!("{}{path}", self.auth.mtls_base_url.as_ref().unwrap())
    }

    /// A client-credentials request at the mutual-TLS listener with `client_id` alone in the
    /// form, presenting `cert`.
    async fn token(&self, cert: Option<&Leaf>, client_id: &str) -> reqwest::Response {
        https_client(&self.server_ca, cert)
            .post(self.mtls_url("/oauth2/token"))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", client_id),
            ])
            .send()
            .await
            .expect("token request")
    }

    async fn access_token(&self, cert: &Leaf, client_id: &str) -> String {
        let response = self.token(Some(cert), client_id).await;
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_owned()
    }

    /// `GET /v1/me` at the partner API over TLS with `token`, presenting `cert`.
    async fn me(&self, cert: Option<&Leaf>, token: &str) -> reqwest::Response {
        https_client(&self.server_ca, cert)
            .get(format!("{}/v1/me", self.api_base))
            .bearer_auth(token)
            .send()
            .await
            .expect("API request")
    }

    async fn stop(self) {
        self.api.stop().await;
        self.auth.stop().await;
    }
}

async fn refused(response: reqwest::Response) {
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client", "{body}");
}

async fn tls_client_auth(backend: Backend) {
    let Some(sys) = mtls_system(backend).await else {
        return;
    };
    let dn = "CN=acme-client,O=Acme Corp,C=DE";
    let by_dn = sys
        .auth
        .client_authenticating(
            "acme",
            "orders:read",
            ClientAuth::Tls(TlsIdentity::Subject(dn.into())),
        )
        .await;
    let by_san = sys
        .auth
        .client_authenticating(
            "globex",
            "orders:read",
            ClientAuth::Tls(TlsIdentity::San("client.globex.example".into())),
        )
        .await;
    let acme = Subject {
        common_name: "acme-client",
        organization: Some("Acme Corp"),
        country: Some("DE"),
        sans: &[],
    };
    let cert = sys.client_ca.client(&acme);
    let response = sys.token(Some(&cert), by_dn.client_id.as_str()).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    let claims = claims_of(body["access_token"].as_str().unwrap());
    assert_eq!(
        claims["cnf"]["x5t#S256"],
        cert.x5t_s256(),
        "bound to the certificate"
    );

    let globex = sys.client_ca.client(&Subject {
        sans: &["client.globex.example"],
        ..Subject::cn("globex")
    });
    assert_eq!(
        sys.token(Some(&globex), by_san.client_id.as_str())
            .await
            .status(),
        StatusCode::OK
    );

    // Refused: the same DN from another CA, an expired certificate, another DN, no certificate,
    // and a certificate registered for one client presented for the other.
    let other_ca = Ca::new("Someone Else's CA");
    for (what, cert) in [
        ("another CA", Some(other_ca.client(&acme))),
        ("expired", Some(sys.client_ca.expired_client(&acme))),
        (
            "another DN",
            Some(sys.client_ca.client(&Subject::cn("acme-client"))),
        ),
        ("self-signed with the DN", Some(self_signed(&acme, false))),
        ("no certificate", None),
    ] {
        let response = sys.token(cert.as_ref(), by_dn.client_id.as_str()).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{what}");
        refused(response).await;
    }
    refused(sys.token(Some(&cert), by_san.client_id.as_str()).await).await;

    // A secret client cannot authenticate with a certificate.
    let (secret_client, _) = sys.auth.client("acme", "orders:read").await;
    refused(
        sys.token(Some(&cert), secret_client.client_id.as_str())
            .await,
    )
    .await;
    sys.stop().await;
}

async fn self_signed_tls_client_auth(backend: Backend) {
    let Some(sys) = mtls_system(backend).await else {
        return;
    };
    let registered = self_signed(&Subject::cn("acme-2026"), false);
    let as_cert = |leaf: &Leaf| certs_from_pem(&leaf.cert_pem).unwrap().remove(0);
    let client = sys
        .auth
        .client_authenticating(
            "acme",
            "orders:read",
            ClientAuth::SelfSignedTls(vec![as_cert(&registered)]),
        )
        .await;
    let id = client.client_id.as_str();
    let token = sys.access_token(&registered, id).await;
    assert_eq!(claims_of(&token)["cnf"]["x5t#S256"], registered.x5t_s256());

    // Another self-signed certificate with the same subject is not the registered one.
    refused(
        sys.token(Some(&self_signed(&Subject::cn("acme-2026"), false)), id)
            .await,
    )
    .await;

    // Rotation: the successor is added, both work, the partner switches, the old one is
    // removed. No request fails on the way.
    let successor = self_signed(&Subject::cn("acme-2027"), false);
    auth_server::admin::add_cert(&sys.auth.state.db, id, as_cert(&successor))
        .await
        .unwrap();
    assert_eq!(
        sys.token(Some(&registered), id).await.status(),
        StatusCode::OK
    );
    sys.auth.sync_clients().await;
    assert_eq!(
        sys.token(Some(&successor), id).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        sys.token(Some(&registered), id).await.status(),
        StatusCode::OK
    );
    auth_server::admin::remove_cert(&sys.auth.state.db, id, &registered.x5t_s256())
        .await
        .unwrap();
    sys.auth.sync_clients().await;
    assert_eq!(
        sys.token(Some(&successor), id).await.status(),
        StatusCode::OK
    );
    refused(sys.token(Some(&registered), id).await).await;

    // An expired certificate is refused even when registered.
    let expired = self_signed(&Subject::cn("acme-old"), true);
    auth_server::admin::add_cert(&sys.auth.state.db, id, as_cert(&expired))
        .await
        .unwrap();
    sys.auth.sync_clients().await;
    refused(sys.token(Some(&expired), id).await).await;
    sys.stop().await;
}

on_both_backends!(tls_client_auth, self_signed_tls_client_auth);

/// A bound token at the partner API: with its certificate, with another and with none, over the
/// API's own TLS; the verified-token cache does not skip the check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_partner_api_accepts_a_bound_token_only_with_its_certificate() {
    let Some(sys) = mtls_system(Backend::Sqlite).await else {
        return;
    };
    let cert = self_signed(&Subject::cn("acme"), false);
    let client = sys
        .auth
        .client_authenticating(
            "acme",
            "orders:read",
            ClientAuth::SelfSignedTls(certs_from_pem(&cert.cert_pem).unwrap()),
        )
        .await;
    let token = sys.access_token(&cert, client.client_id.as_str()).await;
    // The right certificate (twice: the second is a cache hit).
    for _ in 0..2 {
        assert_eq!(sys.me(Some(&cert), &token).await.status(), StatusCode::OK);
    }
    // A stolen token without the private key: refused, with the RFC 6750 challenge, though the
    // token is in the verified-token cache.
    for presented in [None, Some(self_signed(&Subject::cn("acme"), false))] {
        let response = sys.me(presented.as_ref(), &token).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let challenge = response.headers()["www-authenticate"].to_str().unwrap();
        assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    }
    // Unbound tokens work as before, with or without a certificate.
    let (secret_client, secret) = sys.auth.client("acme", "orders:read").await;
    let response = https_client(&sys.server_ca, None)
        .post(sys.auth.url("/oauth2/token").replace("http://", "https://"))
        .basic_auth(secret_client.client_id.as_str(), Some(secret.expose()))
        .form(common::CLIENT_CREDENTIALS)
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "the plain TLS listener serves secret clients"
    );
    let body: Value = response.json().await.unwrap();
    let unbound = body["access_token"].as_str().unwrap().to_owned();
    assert!(claims_of(&unbound).get("cnf").is_none());
    assert_eq!(sys.me(None, &unbound).await.status(), StatusCode::OK);
    assert_eq!(sys.me(Some(&cert), &unbound).await.status(), StatusCode::OK);
    sys.stop().await;
}

/// RFC 9440 `Client-Cert` from a TLS-terminating proxy: believed from a declared proxy (here
/// the test itself, on 127.0.0.1), ignored from anyone else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trusted_proxys_client_cert_header_is_believed_and_an_untrusted_ones_ignored() {
    let db = test_db(Backend::Sqlite).await.unwrap();
    let mut settings = TestAuth::settings(&db);
    settings.transport.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    let auth = spawn_auth_with(db, settings).await;
    let cert = self_signed(&Subject::cn("acme"), false);
    let client = auth
        .client_authenticating(
            "acme",
            "orders:read",
            ClientAuth::SelfSignedTls(certs_from_pem(&cert.cert_pem).unwrap()),
        )
        .await;
    let header = format!(":{}:", STANDARD.encode(&cert.der));
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", client.client_id.as_str()),
    ];
    let response = common::http()
        .post(auth.url("/oauth2/token"))
        .header("client-cert", &header)
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    let token = body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(claims_of(&token)["cnf"]["x5t#S256"], cert.x5t_s256());

    // The partner API behind the same proxy: the header is the certificate; without it (or from
    // an address that is not the proxy) the bound token is refused.
    let api_db = test_db(Backend::Sqlite).await.unwrap();
    let mut api_settings = resource_settings(&auth, &api_db);
    api_settings.transport.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    let api = spawn_resource_with(api_db, api_settings).await;
    api.wait_ready().await;
    let me = |header: Option<String>, client: reqwest::Client| {
        let request = client.get(api.url("/v1/me")).bearer_auth(&token);
        let request = match header {
            Some(h) => request.header("client-cert", h),
            None => request,
        };
        async move { request.send().await.unwrap().status() }
    };
    assert_eq!(
        me(Some(header.clone()), common::http()).await,
        StatusCode::OK
    );
    assert_eq!(me(None, common::http()).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        me(Some(header.clone()), common::http_from("127.0.0.2")).await,
        StatusCode::UNAUTHORIZED,
        "from an address that is not the proxy, the header is ignored"
    );
    // At the token service, the same header from an untrusted address is no certificate.
    let response = common::http_from("127.0.0.2")
        .post(auth.url("/oauth2/token"))
        .header("client-cert", &header)
        .form(&form)
        .send()
        .await
        .unwrap();
    refused(response).await;
    api.stop().await;
    auth.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_advertises_the_mutual_tls_endpoints_and_bound_tokens() {
    let Some(sys) = mtls_system(Backend::Sqlite).await else {
        return;
    };
    let metadata: Value = https_client(&sys.server_ca, None)
        .get(sys.mtls_url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(metadata["tls_client_certificate_bound_access_tokens"], true);
    let aliases = &metadata["mtls_endpoint_aliases"];
    let port = sys
        .auth
        .mtls_base_url
        .as_ref()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(
        aliases["token_endpoint"],
        format!("https://auth.test:{port}/oauth2/token")
    );
    assert!(aliases["introspection_endpoint"].is_string());
    sys.stop().await;
}
