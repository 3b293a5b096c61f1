//! Real partner clients against the live token service, as partners will run them: the `curl`
//! binary with a client certificate at the mutual-TLS listener (`tls_client_auth` and
//! `self_signed_tls_client_auth`), and a Python script using authlib's `private_key_jwt`
//! (`tests/clients/private_key_jwt.py`). The commands here are the ones the README's partner
//! onboarding quotes.
//!
//! The tools come from outside the workspace (`.ci/run` installs them: curl from Debian, authlib
//! from PyPI). Under `CI=true` a missing tool fails the test, naming it; elsewhere the test is
//! skipped with a note, as the PostgreSQL tests are without a server.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use auth_server::admin::{ClientAuth, TlsIdentity, certs_from_pem};
use auth_server::store::KeySourceUpdate;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{Backend, ISSUER, TestAuth, claims_of, spawn_auth_with, test_db};
use serde_json::{Value, json};
use tempfile::TempDir;
use test_support::pki::{Ca, Leaf, Subject, self_signed};
use tokio::process::Command;

/// A partner's token request with its client certificate, as the README gives it: run by `sh`
/// in a folder holding the three files it names, with `CLIENT_ID` and `AUTH_MTLS` (the origin
/// of the mutual-TLS listener) in the environment.
const CURL_WITH_CERTIFICATE: &str = "curl --silent --show-error --fail-with-body \
     --cacert server-ca.pem --cert client.pem --key client.key \
     -d grant_type=client_credentials -d client_id=\"$CLIENT_ID\" \
     \"$AUTH_MTLS/oauth2/token\"";

/// The same request without the certificate.
const CURL_WITHOUT_CERTIFICATE: &str = "curl --silent --show-error --fail-with-body \
     --cacert server-ca.pem \
     -d grant_type=client_credentials -d client_id=\"$CLIENT_ID\" \
     \"$AUTH_MTLS/oauth2/token\"";

/// The Python client, from the workspace root.
const PYTHON_CLIENT: &str = "tests/clients/private_key_jwt.py";

/// A client program, or why it is not here: under `CI=true` that fails the test, naming the
/// tool; elsewhere it skips the test with a note.
fn missing<T>(tool: &str, why: &str, install: &str) -> Option<T> {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{tool} is required under CI=true but {why}; {install}");
    }
    eprintln!("\n*** SKIPPING a real-client test: {tool} {why}; {install}. ***\n");
    None
}

/// Runs `command`, failing the test when it does not finish within a minute (a hung client must
/// not hang the suite).
async fn run(command: &mut Command) -> std::io::Result<Output> {
    let output = command.kill_on_drop(true).output();
    tokio::time::timeout(Duration::from_secs(60), output)
        .await
        .expect("the client finished within a minute")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `curl --version`'s first line, when curl is here.
async fn curl_version() -> Option<String> {
    match run(Command::new("curl").arg("--version")).await {
        Ok(output) if output.status.success() => {
            let version = text(&output.stdout).lines().next().unwrap_or("").to_owned();
            eprintln!("real_clients: {version}");
            Some(version)
        }
        Ok(output) => missing(
            "curl",
            &format!("does not run ({}): {}", output.status, text(&output.stderr)),
            "install it with `apt-get install curl` (.ci/run does)",
        ),
        Err(err) => missing(
            "curl",
            &format!("is not installed ({err})"),
            "install it with `apt-get install curl` (.ci/run does)",
        ),
    }
}

/// authlib's version, when `python3` can import authlib and requests.
async fn authlib_version() -> Option<String> {
    const INSTALL: &str = "install it from PyPI with `pip install authlib requests` (.ci/run does)";
    let probe = run(Command::new("python3").args([
        "-c",
        "import authlib, requests, sys; print(authlib.__version__, requests.__version__, sys.version.split()[0])",
    ]))
    .await;
    match probe {
        Ok(output) if output.status.success() => {
            let versions = text(&output.stdout);
            let mut versions = versions.split_whitespace();
            let (authlib, requests, python) = (
                versions.next().unwrap_or("?").to_owned(),
                versions.next().unwrap_or("?"),
                versions.next().unwrap_or("?"),
            );
            eprintln!("real_clients: authlib {authlib}, requests {requests}, Python {python}");
            Some(authlib)
        }
        Ok(output) => {
            let stderr = text(&output.stderr);
            let error = stderr.trim().lines().last().unwrap_or("").to_owned();
            missing(
                "authlib",
                &format!("cannot be imported by python3 ({error})"),
                INSTALL,
            )
        }
        Err(err) => missing(
            "python3",
            &format!("is not installed ({err})"),
            "install Python 3 and pip (Debian: `apt-get install python3 python3-pip`)",
        ),
    }
}

/// The token service speaking TLS with a certificate from `server_ca` on both listeners, its
/// mutual-TLS listener trusting `client_ca` for `tls_client_auth`; and a partner's folder
/// holding `server-ca.pem`, the CA a partner is told to trust.
struct TlsTokenService {
    auth: TestAuth,
    client_ca: Ca,
    partner: TempDir,
}

async fn tls_token_service() -> TlsTokenService {
    let db = test_db(Backend::Sqlite).await.expect("a SQLite database");
    let server_ca = Ca::new("Test Server CA");
    let client_ca = Ca::new("Partner CA");
    let server = server_ca.server();
    let dir = db.dir.path().to_owned();
    let (cert, key) = (dir.join("server.pem"), dir.join("server.key"));
    std::fs::write(&cert, &server.cert_pem).unwrap();
    std::fs::write(&key, &server.key_pem).unwrap();

    let mut settings = TestAuth::settings(&db);
    settings.transport = edge::Transport::new(Some(cert), Some(key), vec![], "AUTH").unwrap();
    settings.transport.client_cas = Some(edge::ClientCas::from_pem(&client_ca.cert_pem()).unwrap());
    settings.mtls_bind = Some("127.0.0.1:0".parse().unwrap());
    let auth = spawn_auth_with(db, settings).await;

    let partner = tempfile::tempdir().unwrap();
    std::fs::write(partner.path().join("server-ca.pem"), server_ca.cert_pem()).unwrap();
    TlsTokenService {
        auth,
        client_ca,
        partner,
    }
}

impl TlsTokenService {
    /// `https://…` of the listener that serves the plain token endpoint over TLS.
    fn https_base(&self) -> String {
        self.auth.base_url.replace("http://", "https://")
    }

    /// Writes `cert` as the partner's `client.pem` and `client.key`.
    fn hand_certificate_to_partner(&self, cert: &Leaf) {
        let dir = self.partner.path();
        std::fs::write(dir.join("client.pem"), &cert.cert_pem).unwrap();
        std::fs::write(dir.join("client.key"), &cert.key_pem).unwrap();
    }

    /// Runs `command` (one of the curl commands above) with `sh` in the partner's folder.
    async fn curl(&self, command: &str, client_id: &str) -> Output {
        run(Command::new("sh")
            .args(["-c", command])
            .current_dir(self.partner.path())
            .env("CLIENT_ID", client_id)
            .env("AUTH_MTLS", self.auth.mtls_base_url.as_ref().unwrap()))
        .await
        .expect("sh runs curl")
    }

    /// The access token curl got with the partner's certificate, checking that the answer is a
    /// success.
    async fn curl_token(&self, client_id: &str) -> Value {
        let output = self.curl(CURL_WITH_CERTIFICATE, client_id).await;
        assert!(
            output.status.success(),
            "curl with the certificate failed ({}): {}{}",
            output.status,
            text(&output.stdout),
            text(&output.stderr)
        );
        let body: Value = serde_json::from_slice(&output.stdout).expect("a JSON answer");
        assert_eq!(body["token_type"], "Bearer", "{body}");
        claims_of(body["access_token"].as_str().expect("an access token"))
    }

    /// curl without a certificate: `--fail-with-body` makes curl exit 22 on the 401 and still
    /// print the error JSON.
    async fn curl_without_certificate_is_refused(&self, client_id: &str) {
        let output = self.curl(CURL_WITHOUT_CERTIFICATE, client_id).await;
        assert_eq!(
            output.status.code(),
            Some(22),
            "curl exits 22 for an HTTP error: {}",
            text(&output.stderr)
        );
        assert!(
            text(&output.stderr).contains("401"),
            "a 401: {}",
            text(&output.stderr)
        );
        let body: Value = serde_json::from_slice(&output.stdout).expect("a JSON error");
        assert_eq!(body["error"], "invalid_client", "{body}");
    }

    async fn stop(self) {
        self.auth.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_with_a_ca_issued_certificate_gets_a_token_bound_to_it() {
    if curl_version().await.is_none() {
        return;
    }
    let service = tls_token_service().await;
    let client = service
        .auth
        .client_authenticating(
            "acme",
            "orders:read",
            ClientAuth::Tls(TlsIdentity::Subject(
                "CN=acme-client,O=Acme Corp,C=DE".into(),
            )),
        )
        .await;
    let cert = service.client_ca.client(&Subject {
        common_name: "acme-client",
        organization: Some("Acme Corp"),
        country: Some("DE"),
        sans: &[],
    });
    service.hand_certificate_to_partner(&cert);

    let claims = service.curl_token(client.client_id.as_str()).await;
    assert_eq!(claims["client_id"], client.client_id.as_str());
    assert_eq!(claims["cnf"]["x5t#S256"], cert.x5t_s256(), "{claims}");
    service
        .curl_without_certificate_is_refused(client.client_id.as_str())
        .await;
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_with_a_registered_self_signed_certificate_gets_a_token_bound_to_it() {
    if curl_version().await.is_none() {
        return;
    }
    let service = tls_token_service().await;
    let cert = self_signed(&Subject::cn("acme-2026"), false);
    let client = service
        .auth
        .client_authenticating(
            "acme",
            "orders:read",
            ClientAuth::SelfSignedTls(certs_from_pem(&cert.cert_pem).unwrap()),
        )
        .await;
    service.hand_certificate_to_partner(&cert);

    let claims = service.curl_token(client.client_id.as_str()).await;
    assert_eq!(claims["client_id"], client.client_id.as_str());
    assert_eq!(claims["cnf"]["x5t#S256"], cert.x5t_s256(), "{claims}");
    service
        .curl_without_certificate_is_refused(client.client_id.as_str())
        .await;
    service.stop().await;
}

/// A partner's EC P-256 key: written as a PKCS#8 PEM for the Python client, and registered as
/// the public JWK with `kid`.
fn partner_key(dir: &Path, kid: &str) -> (PathBuf, String) {
    let key = rcgen::KeyPair::generate().expect("a P-256 key");
    let point = key.public_key_raw();
    assert_eq!(point.len(), 65, "an uncompressed P-256 point");
    let jwk = json!({
        "kty": "EC", "crv": "P-256", "kid": kid, "use": "sig", "alg": "ES256",
        "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
        "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
    });
    let path = dir.join("partner-key.pem");
    std::fs::write(&path, key.serialize_pem()).unwrap();
    (path, json!({ "keys": [jwk] }).to_string())
}

/// Runs the Python client with `args`, its settings in the environment as a partner would set
/// them, trusting the test's server CA.
async fn python_client(
    service: &TlsTokenService,
    client_id: &str,
    key: &Path,
    args: &[&str],
) -> Output {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join(PYTHON_CLIENT);
    run(Command::new("python3")
        .arg(&script)
        .args(args)
        .current_dir(service.partner.path())
        .env(
            "TOKEN_ENDPOINT",
            format!("{}/oauth2/token", service.https_base()),
        )
        .env("ISSUER", ISSUER)
        .env("CLIENT_ID", client_id)
        .env("PRIVATE_KEY_FILE", key)
        .env("KEY_ID", "acme-2026")
        // requests trusts this CA bundle instead of the system's.
        .env(
            "REQUESTS_CA_BUNDLE",
            service.partner.path().join("server-ca.pem"),
        ))
    .await
    .expect("python3 runs")
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authlib_private_key_jwt_gets_a_token_with_the_issuer_as_audience_and_not_without() {
    if authlib_version().await.is_none() {
        return;
    }
    let service = tls_token_service().await;
    let (key, jwks) = partner_key(service.partner.path(), "acme-2026");
    let client = service
        .auth
        .client_authenticating(
            "acme",
            "orders:read",
            ClientAuth::PrivateKeyJwt(KeySourceUpdate::Document(jwks)),
        )
        .await;
    let client_id = client.client_id.as_str();

    // Twice: each assertion is single use, and the client makes a fresh one per request.
    for _ in 0..2 {
        let output = python_client(&service, client_id, &key, &[]).await;
        assert!(
            output.status.success(),
            "the Python client failed ({}): {}{}",
            output.status,
            text(&output.stdout),
            text(&output.stderr)
        );
        let body: Value = serde_json::from_slice(&output.stdout).expect("a JSON answer");
        assert_eq!(body["token_type"], "Bearer", "{body}");
        let claims = claims_of(body["access_token"].as_str().expect("an access token"));
        assert_eq!(claims["client_id"], client_id);
        assert!(claims.get("cnf").is_none(), "no certificate, no binding");
    }
    assert!(audit_reasons(&service.auth, client_id).await.is_empty());

    // authlib's own audience, the token endpoint URL, is refused, and for that reason alone.
    let output = python_client(&service, client_id, &key, &["--default-audience"]).await;
    assert_eq!(
        output.status.code(),
        Some(1),
        "refused: {}{}",
        text(&output.stdout),
        text(&output.stderr)
    );
    let body: Value = serde_json::from_slice(&output.stdout).expect("a JSON error");
    assert_eq!(body["http_status"], 401, "{body}");
    assert_eq!(body["error"], "invalid_client", "{body}");
    assert_eq!(
        audit_reasons(&service.auth, client_id).await,
        ["assertion_audience"]
    );
    service.stop().await;
}
