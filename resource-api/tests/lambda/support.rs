//! A token service running in-process for the partner API's Lambda tests (its keys and real
//! tokens), and a JWKS endpoint in front of it that records every fetch.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use auth_server::admin::{self, ClientSpec};
use auth_server::state::AppState;
use axum::extract::State;
use axum::response::IntoResponse;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use shared_claims::{PartnerId, ScopeSet};

pub const ISSUER: &str = "http://auth.test";

pub struct TokenService {
    pub base_url: String,
    pub state: AppState,
    dir: tempfile::TempDir,
    _task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl TokenService {
    pub async fn start() -> TokenService {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = auth_server::Settings::with_defaults(
            format!("sqlite://{}", dir.path().join("auth.db").display()),
            dir.path().join("master.key"),
        );
        settings.bind = "127.0.0.1:0".parse().unwrap();
        settings.issuer = ISSUER.into();
        settings.key_reload_interval = Duration::from_millis(200);
        // The tests act as a TLS-terminating proxy when they hand the token service a client
        // certificate (RFC 9440 `Client-Cert`), for certificate-bound tokens.
        settings.transport.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
        let app = auth_server::Application::build(settings).await.unwrap();
        let base_url = format!("http://{}", app.local_addr());
        let state = app.state().clone();
        let task = tokio::spawn(app.run_until(std::future::pending()));
        TokenService {
            base_url,
            state,
            dir,
            _task: task,
        }
    }

    /// A client of `partner` with `scopes`, created as the admin CLI would: (id, secret).
    pub async fn client(&self, partner: &str, scopes: &str) -> (String, String) {
        let spec = ClientSpec {
            name: format!("{partner} test client"),
            partner_id: PartnerId::parse(partner).unwrap(),
            scopes: ScopeSet::parse(scopes).unwrap(),
            audiences: vec!["partner-api".into()],
            access_token_ttl: None,
            refresh_enabled: false,
            introspect_allowed: false,
        };
        let (client, secret) = admin::create_client(&self.state.db, spec).await.unwrap();
        (
            client.client_id.as_str().to_owned(),
            secret.expose().to_owned(),
        )
    }

    /// An access token for the client, from the token endpoint.
    pub async fn token_for(&self, id: &str, secret: &str) -> String {
        let body: serde_json::Value = http()
            .post(format!("{}/oauth2/token", self.base_url))
            .basic_auth(id, Some(secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        body["access_token"].as_str().expect("a token").to_owned()
    }

    /// A `self_signed_tls_client_auth` client of `partner` holding `cert`, and a token for it,
    /// bound to the certificate (`cnf.x5t#S256`).
    pub async fn bound_token(
        &self,
        partner: &str,
        scopes: &str,
        cert: &test_support::pki::Leaf,
    ) -> String {
        let spec = ClientSpec {
            name: format!("{partner} certificate client"),
            partner_id: PartnerId::parse(partner).unwrap(),
            scopes: ScopeSet::parse(scopes).unwrap(),
            audiences: vec!["partner-api".into()],
            access_token_ttl: None,
            refresh_enabled: false,
            introspect_allowed: false,
        };
        let auth = admin::ClientAuth::SelfSignedTls(admin::certs_from_pem(&cert.cert_pem).unwrap());
        let (client, _) = admin::register_client(&self.state.db, spec, auth)
            .await
            .unwrap();
        use base64::Engine;
        let header = format!(
            ":{}:",
            base64::engine::general_purpose::STANDARD.encode(&cert.der)
        );
        let body: serde_json::Value = http()
            .post(format!("{}/oauth2/token", self.base_url))
            .header("client-cert", header)
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", client.client_id.as_str()),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        body["access_token"]
            .as_str()
            .expect("a bound token")
            .to_owned()
    }

    /// A new client of `partner` and a token for it.
    pub async fn token(&self, partner: &str, scopes: &str) -> (String, String) {
        let (id, secret) = self.client(partner, scopes).await;
        let token = self.token_for(&id, &secret).await;
        (id, token)
    }

    /// Like [`TokenService::token`], once the service signs with `kid`.
    pub async fn token_signed_by(
        &self,
        partner: &str,
        scopes: &str,
        kid: &str,
    ) -> (String, String) {
        let (id, secret) = self.client(partner, scopes).await;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let token = self.token_for(&id, &secret).await;
            if kid_of(&token) == kid {
                return (id, token);
            }
            assert!(
                Instant::now() < deadline,
                "the token service never signed with {kid}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Two forced rotations: the key that signs afterwards was made after any JWKS fetched
    /// before this call. Returns its kid.
    pub async fn rotate(&self) -> String {
        let master = keys::MasterKey::load(&self.dir.path().join("master.key")).unwrap();
        let policy = self.state.config.key_policy();
        let mut active = String::new();
        for _ in 0..2 {
            active = auth_server::signing::rotate_key(
                &self.state.db,
                &master,
                &policy,
                Some(keys::Algorithm::ES256),
                true,
            )
            .await
            .unwrap()
            .active;
        }
        active
    }

    /// The active signing key, opened with the master key: only an insider can sign with it.
    pub async fn signing_key(&self) -> (String, EcdsaKeyPair) {
        let master = keys::MasterKey::load(&self.dir.path().join("master.key")).unwrap();
        let row = self
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
                .expect("the default signing key is ES256");
        (row.kid, pair)
    }
}

fn kid_of(token: &str) -> String {
    use base64::Engine;
    let header = token.split('.').next().unwrap();
    let header: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(header)
            .unwrap(),
    )
    .unwrap();
    header["kid"].as_str().unwrap().to_owned()
}

/// The binary's one HTTP client (building one loads the root certificates), keeping no idle
/// connections, as the other test binaries' clients.
fn http() -> reqwest::Client {
    static CLIENT: std::sync::LazyLock<reqwest::Client> = std::sync::LazyLock::new(|| {
        edge::http_client(Duration::from_secs(10), Duration::from_secs(10))
            .pool_max_idle_per_host(0)
            .build()
            .unwrap()
    });
    CLIENT.clone()
}

/// The token service's JWKS, served with the given `max-age`, each fetch recorded.
pub struct JwksServer {
    addr: std::net::SocketAddr,
    fetches: Arc<Mutex<Vec<Instant>>>,
    _task: tokio::task::JoinHandle<()>,
}

#[derive(Clone)]
struct Proxy {
    upstream: String,
    max_age: u64,
    fetches: Arc<Mutex<Vec<Instant>>>,
    http: reqwest::Client,
}

async fn forward(State(proxy): State<Proxy>) -> axum::response::Response {
    proxy.fetches.lock().unwrap().push(Instant::now());
    let body = proxy
        .http
        .get(&proxy.upstream)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    (
        [
            ("content-type", "application/json".to_owned()),
            (
                "cache-control",
                format!("public, max-age={}", proxy.max_age),
            ),
        ],
        body,
    )
        .into_response()
}

impl JwksServer {
    pub async fn start(auth: &TokenService, max_age: u64) -> JwksServer {
        let fetches = Arc::new(Mutex::new(Vec::new()));
        let proxy = Proxy {
            upstream: format!("{}/.well-known/jwks.json", auth.base_url),
            max_age,
            fetches: fetches.clone(),
            http: http(),
        };
        let app = axum::Router::new()
            .route("/jwks.json", axum::routing::get(forward))
            .with_state(proxy);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        JwksServer {
            addr,
            fetches,
            _task: task,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/jwks.json", self.addr)
    }

    pub fn fetches(&self) -> Vec<Instant> {
        self.fetches.lock().unwrap().clone()
    }
}
