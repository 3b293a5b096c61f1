//! `auth-server serve` as an AWS Lambda function: the real binary, started with
//! `AWS_LAMBDA_RUNTIME_API` pointing at a fake Runtime API served by the test, answering events
//! shaped like AWS's documented examples (HTTP API 2.0, REST API 1.0, Application Load Balancer,
//! function URL, EventBridge schedule), on a PostgreSQL database of its own.

use std::time::Duration;

use auth_server::admin::{self, ClientSpec};
use auth_server::store::Store;
use serde_json::Value;
use shared_claims::{PartnerId, ScopeSet};
use test_support::db::{Backend, TestDb, test_db};
use test_support::lambda::events::{self, HttpAnswer, HttpRequest};
use test_support::lambda::{FakeRuntime, LambdaProcess, Outcome};

const BINARY: &str = env!("CARGO_BIN_EXE_auth-server");

/// A master key as the text of a key file, for `AUTH_MASTER_KEY`.
fn master_key_text(db: &TestDb) -> String {
    keys::MasterKey::load_or_create(&db.master_key_path()).expect("master key file");
    std::fs::read_to_string(db.master_key_path()).unwrap()
}

/// The token service as a function on `db`, answering `runtime`'s invocations.
fn function(runtime: &FakeRuntime, db: &TestDb, extra: &[(&str, String)]) -> LambdaProcess {
    let mut env = vec![
        ("AUTH_DATABASE_URL", db.url.clone()),
        ("AUTH_MASTER_KEY", master_key_text(db)),
        ("AUTH_ISSUER", "https://auth.example".to_owned()),
    ];
    env.extend(extra.iter().cloned());
    // No arguments, as Lambda starts `bootstrap`.
    LambdaProcess::start(BINARY, &[], &runtime.runtime_api(), &env)
}

/// A client with a secret, created in the function's database as the CLI would.
async fn client(db: &TestDb) -> (String, String) {
    let store = Store::connect(&db.url).await.unwrap();
    store.migrate().await.unwrap();
    let (client, secret) = admin::create_client(
        &store,
        ClientSpec {
            name: "Acme ERP".into(),
            partner_id: PartnerId::parse("acme").unwrap(),
            scopes: ScopeSet::parse("orders:read catalog:read").unwrap(),
            audiences: vec!["partner-api".into()],
            access_token_ttl: None,
            refresh_enabled: true,
            introspect_allowed: false,
        },
    )
    .await
    .unwrap();
    store.close().await;
    (
        client.client_id.as_str().to_owned(),
        secret.expose().to_owned(),
    )
}

/// The four ways an HTTP request reaches a function.
fn event_kinds(request: &HttpRequest) -> [(&'static str, Value); 4] {
    [
        ("HTTP API", request.http_api()),
        (
            "REST API, stage prod",
            request.clone().stage("prod").rest_api(),
        ),
        ("ALB", request.alb()),
        ("function URL", request.function_url()),
    ]
}

async fn answer(runtime: &FakeRuntime, event: Value) -> HttpAnswer {
    HttpAnswer::from_response(&runtime.invoke(event).await.response())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_and_every_oauth_error_through_each_kind_of_event() {
    let Some(db) = test_db(Backend::Postgres).await else {
        return;
    };
    let (id, secret) = client(&db).await;
    // Under a path, as local emulators serve the Runtime API.
    let runtime = FakeRuntime::start_under("/emulator").await;
    let _function = function(&runtime, &db, &[]);

    let grant = [("grant_type", "client_credentials")];
    for base64 in [false, true] {
        let mut request = HttpRequest::post_form("/oauth2/token", &grant).basic(&id, &secret);
        if base64 {
            request = request.base64();
        }
        for (kind, event) in event_kinds(&request) {
            let answer = answer(&runtime, event).await;
            assert_eq!(
                answer.status,
                200,
                "{kind}: {}",
                String::from_utf8_lossy(&answer.body)
            );
            assert_eq!(answer.header("cache-control"), Some("no-store"), "{kind}");
            let body = answer.json();
            assert_eq!(body["token_type"], "Bearer", "{kind}");
            assert!(
                body["access_token"]
                    .as_str()
                    .is_some_and(|t| t.split('.').count() == 3)
            );
            assert!(body["refresh_token"].is_string(), "{kind}");
        }
    }

    let cases: Vec<(HttpRequest, u16, &str)> = vec![
        (
            HttpRequest::post_form("/oauth2/token", &grant).basic(&id, "pcs_wrong"),
            401,
            "invalid_client",
        ),
        (
            HttpRequest::post_form("/oauth2/token", &[("grant_type", "password")])
                .basic(&id, &secret),
            400,
            "unsupported_grant_type",
        ),
        (
            HttpRequest::post_form("/oauth2/token", &[("scope", "orders:read")])
                .basic(&id, &secret),
            400,
            "invalid_request",
        ),
        (
            HttpRequest::post_form(
                "/oauth2/token",
                &[
                    ("grant_type", "client_credentials"),
                    ("scope", "invoices:read"),
                ],
            )
            .basic(&id, &secret),
            400,
            "invalid_scope",
        ),
        (
            HttpRequest::post_form(
                "/oauth2/token",
                &[
                    ("grant_type", "client_credentials"),
                    ("resource", "https://elsewhere.example"),
                ],
            )
            .basic(&id, &secret),
            400,
            "invalid_target",
        ),
        (
            HttpRequest::post_form(
                "/oauth2/token",
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", "prt_unknown"),
                ],
            )
            .basic(&id, &secret),
            400,
            "invalid_grant",
        ),
    ];
    for (request, status, error) in cases {
        for (kind, event) in event_kinds(&request) {
            let answer = answer(&runtime, event).await;
            assert_eq!(answer.status, status, "{kind}, {error}");
            assert_eq!(answer.json()["error"], error, "{kind}");
            assert_eq!(answer.header("cache-control"), Some("no-store"), "{kind}");
            if status == 401 {
                assert!(
                    answer
                        .header("www-authenticate")
                        .is_some_and(|v| v.starts_with("Basic")),
                    "{kind}: RFC 6749 §5.2 asks for a Basic challenge"
                );
            }
        }
    }

    // The stage is not part of the route, and unknown routes are RFC 9457 problems.
    let jwks = answer(
        &runtime,
        HttpRequest::get("/.well-known/jwks.json")
            .stage("prod")
            .rest_api(),
    )
    .await;
    assert_eq!(jwks.status, 200);
    assert!(
        jwks.json()["keys"]
            .as_array()
            .is_some_and(|k| !k.is_empty())
    );
    // The envelope's refusals at an OAuth endpoint are RFC 6749 errors there too.
    for request in [
        HttpRequest::get("/oauth2/token"),
        HttpRequest::post_form("/oauth2/token", &grant).header("x-pad", &"a".repeat(17 * 1024)),
    ] {
        for (kind, event) in event_kinds(&request) {
            let refused = answer(&runtime, event).await;
            assert!(
                [405, 431].contains(&refused.status),
                "{kind}: {}",
                refused.status
            );
            assert_eq!(refused.json()["error"], "invalid_request", "{kind}");
            assert_eq!(refused.header("cache-control"), Some("no-store"), "{kind}");
        }
    }
    let missing = answer(&runtime, HttpRequest::get("/nowhere").http_api()).await;
    assert_eq!(missing.status, 404);
    assert_eq!(
        missing.header("content-type"),
        Some("application/problem+json")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_audit_event_is_stored_before_its_invocation_is_answered() {
    let Some(db) = test_db(Backend::Postgres).await else {
        return;
    };
    let (id, secret) = client(&db).await;
    let runtime = FakeRuntime::start().await;
    let _function = function(&runtime, &db, &[]);
    let store = Store::connect(&db.url).await.unwrap();
    let grant = [("grant_type", "client_credentials")];
    for i in 0..20 {
        let event = HttpRequest::post_form("/oauth2/token", &grant)
            .basic(&id, &secret)
            .http_api();
        let token = answer(&runtime, event).await.json()["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        // Read the moment the response was posted: nothing may still be on its way.
        let jti = claims(&token)["jti"].as_str().unwrap().to_owned();
        let trail = store.list_audit(Some(&id), 100).await.unwrap();
        assert!(
            trail
                .iter()
                .any(|r| r.action == "token.issue" && r.detail.contains(&jti)),
            "issue {i}: the token.issue event of {jti} is stored"
        );
        // A failed authentication is audited before its answer too (from addresses of their own,
        // so the lockout does not stop the loop).
        let wrong = HttpRequest::post_form("/oauth2/token", &grant)
            .basic(&id, &format!("pcs_wrong_{i}"))
            .from_ip(&format!("203.0.113.{}", i + 1))
            .http_api();
        assert_eq!(answer(&runtime, wrong).await.status, 401);
        let failures = store
            .list_audit(Some(&id), 100)
            .await
            .unwrap()
            .iter()
            .filter(|r| r.action == "client.auth_failed")
            .count();
        assert_eq!(failures, i + 1);
    }
    store.close().await;
}

fn claims(token: &str) -> Value {
    claims_at(token, 1)
}

/// The JSON of a token's header (0) or claims (1).
fn claims_at(token: &str, part: usize) -> Value {
    use base64::Engine;
    let payload = token.split('.').nth(part).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_database_is_refused_at_start_with_a_message_that_names_it() {
    let db = test_db(Backend::Sqlite).await.unwrap();
    let runtime = FakeRuntime::start().await;
    let output = tokio::task::spawn_blocking({
        let url = db.url.clone();
        let api = runtime.runtime_api();
        move || {
            std::process::Command::new(BINARY)
                .arg("serve")
                .env_clear()
                .env("AWS_LAMBDA_RUNTIME_API", api)
                .env("AWS_LAMBDA_FUNCTION_NAME", "test")
                .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
                .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
                .env("AUTH_DATABASE_URL", url)
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("SQLite"), "{stderr}");
    assert!(
        db.sqlite_path().is_some_and(|p| !p.exists()),
        "nothing was created"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_event_at_two_instances_rotates_once_and_both_succeed() {
    let Some(db) = test_db(Backend::Postgres).await else {
        return;
    };
    let runtime = FakeRuntime::start().await;
    let settings = [
        ("AUTH_KEY_ROTATION_INTERVAL", "1".to_owned()),
        ("AUTH_JWKS_MAX_AGE", "0".to_owned()),
        ("AUTH_KEY_RELOAD_INTERVAL", "1".to_owned()),
    ];
    let _a = function(&runtime, &db, &settings);
    let _b = function(&runtime, &db, &settings);
    // Both are up (each answered a request), with the first keys made by one of them.
    for _ in 0..2 {
        assert_eq!(
            answer(&runtime, HttpRequest::get("/healthz").http_api())
                .await
                .status,
            200
        );
    }
    let store = Store::connect(&db.url).await.unwrap();
    let policy = auth_server::signing::KeyPolicy {
        jwks_max_age: 0,
        jwks_cache_horizon: 0,
        reload_interval: Duration::from_secs(1),
        access_token_ttl: 600,
    };
    // Wait until a rotation is due and safe: the active key older than the interval, the pending
    // key published long enough.
    let rows = store.list_signing_keys().await.unwrap();
    let pending = rows
        .iter()
        .find(|r| r.state == keys::KeyState::Pending)
        .expect("a pending key");
    let active = rows
        .iter()
        .find(|r| r.state == keys::KeyState::Active)
        .expect("an active key");
    let safe_at = policy
        .rotation_safe_at(pending.created_at)
        .max(active.activated_at.unwrap_or(active.created_at) + 1);
    while auth_server::now() <= safe_at {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let (one, two) = tokio::join!(
        runtime.invoke(events::scheduled()),
        runtime.invoke(events::scheduled())
    );
    for outcome in [one, two] {
        assert!(matches!(outcome, Outcome::Response(_)), "{outcome:?}");
    }
    let rotations = store
        .list_audit(None, 1000)
        .await
        .unwrap()
        .iter()
        .filter(|r| r.action == "key.rotate")
        .count();
    assert_eq!(rotations, 1, "a due rotation happens exactly once");
    let rows = store.list_signing_keys().await.unwrap();
    let now_active = rows
        .iter()
        .find(|r| r.state == keys::KeyState::Active)
        .unwrap();
    assert_eq!(now_active.kid, pending.kid, "the pending key was promoted");

    // A change made elsewhere (the CLI) reaches idle functions at their next invocation once
    // their keys are older than the reload interval, with no timer having run in between.
    let master = keys::MasterKey::load(&db.master_key_path()).unwrap();
    let rotated = auth_server::signing::rotate_key(&store, &master, &policy, None, true)
        .await
        .unwrap();
    let (id, secret) = client(&db).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for _ in 0..4 {
        let event =
            HttpRequest::post_form("/oauth2/token", &[("grant_type", "client_credentials")])
                .basic(&id, &secret)
                .http_api();
        let token = answer(&runtime, event).await.json()["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        let header = claims_at(&token, 0);
        assert_eq!(
            header["kid"],
            rotated.active.as_str(),
            "signed by the new key"
        );
    }
    store.close().await;
}

/// API Gateway's mutual TLS (a custom domain with a truststore) hands the function the client's
/// certificate in the request context: a `self_signed_tls_client_auth` client gets a token bound
/// to it, through an HTTP API and a REST API event; without it, `invalid_client`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_certificate_from_api_gateway_authenticates_and_binds_the_token() {
    use test_support::pki::{Subject, self_signed};
    let Some(db) = test_db(Backend::Postgres).await else {
        return;
    };
    let cert = self_signed(&Subject::cn("acme"), false);
    let store = Store::connect(&db.url).await.unwrap();
    store.migrate().await.unwrap();
    let (client, _) = admin::register_client(
        &store,
        ClientSpec {
            name: "Acme ERP".into(),
            partner_id: PartnerId::parse("acme").unwrap(),
            scopes: ScopeSet::parse("orders:read").unwrap(),
            audiences: vec!["partner-api".into()],
            access_token_ttl: None,
            refresh_enabled: false,
            introspect_allowed: false,
        },
        admin::ClientAuth::SelfSignedTls(admin::certs_from_pem(&cert.cert_pem).unwrap()),
    )
    .await
    .unwrap();
    store.close().await;
    let runtime = FakeRuntime::start().await;
    let _function = function(&runtime, &db, &[]);

    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", client.client_id.as_str()),
    ];
    let request = HttpRequest::post_form("/oauth2/token", &form).client_cert(&cert.cert_pem);
    for (kind, event) in [
        ("HTTP API", request.http_api()),
        ("REST API", request.clone().stage("prod").rest_api()),
    ] {
        let answer = answer(&runtime, event).await;
        assert_eq!(
            answer.status,
            200,
            "{kind}: {}",
            String::from_utf8_lossy(&answer.body)
        );
        let token = answer.json()["access_token"].as_str().unwrap().to_owned();
        let payload = token.split('.').nth(1).unwrap();
        let claims: Value = serde_json::from_slice(
            &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload)
                .unwrap(),
        )
        .unwrap();
        assert_eq!(claims["cnf"]["x5t#S256"], cert.x5t_s256(), "{kind}");
    }
    // The same request without the certificate, and with another one.
    let other = self_signed(&Subject::cn("acme"), false);
    for request in [
        HttpRequest::post_form("/oauth2/token", &form),
        HttpRequest::post_form("/oauth2/token", &form).client_cert(&other.cert_pem),
    ] {
        let answer = answer(&runtime, request.http_api()).await;
        assert_eq!(answer.status, 401);
        assert_eq!(answer.json()["error"], "invalid_client");
    }
}
