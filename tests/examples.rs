//! The partner examples (`examples/`) run as a partner runs them: `examples/run LANG` for each
//! language, as a subprocess, with the four `PARTNER_*` variables, against both services running
//! in-process on loopback. Each must print the partner's first page of orders exactly as the API
//! answers it, and handle the errors a partner meets: a wrong secret, a missing scope, a token
//! the API refuses (its signing key revoked: one renewal and one retry), and 429 with
//! `Retry-After`.
//!
//! A test binary of its own, so the Rust example's build (`cargo run` under `examples/run`, in
//! the same target directory: cargo releases its lock once the test binaries are built) does
//! not compete with the end-to-end tests for the CPU. What `examples/run` installs when it is
//! missing (`jq`, `requests`, `node`), `.ci/run` installs beforehand; a tool that is missing and
//! cannot be installed fails the test with `examples/run`'s message naming it.

#[allow(dead_code, unused_imports, unused_macros)]
#[path = "e2e/common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use axum::response::Response;
use common::system::{TestApi, spawn_resource_api};
use common::{Backend, TestAuth, kid_of};
use futures::future::BoxFuture;
use reqwest::StatusCode;
use serde_json::Value;
use tokio::process::Command;

const LANGS: [&str; 4] = ["curl", "python", "node", "rust"];

/// The header the partner API reads an API key from.
const X_API_KEY: &str = "x-api-key";

/// Bounds on one run: the Rust one may have to build the example first. A hung example fails
/// the test instead of hanging the suite.
fn time_limit(lang: &str) -> Duration {
    if lang == "rust" {
        Duration::from_secs(20 * 60)
    } else {
        Duration::from_secs(2 * 60)
    }
}

/// The variables cargo sets for a test binary (besides `CARGO_PKG_*`).
const CARGO_TEST_VARS: &[&str] = &[
    "CARGO",
    "CARGO_MANIFEST_DIR",
    "CARGO_MANIFEST_PATH",
    "CARGO_CRATE_NAME",
    "CARGO_BIN_NAME",
    "CARGO_PRIMARY_PACKAGE",
    "CARGO_TARGET_TMPDIR",
    "OUT_DIR",
];

struct Run {
    success: bool,
    stdout: String,
    stderr: String,
}

impl Run {
    /// The printed JSON, failing the test (with the example's stderr) when the run failed.
    fn json(&self, lang: &str) -> Value {
        assert!(self.success, "examples/run {lang} failed:\n{}", self.stderr);
        serde_json::from_str(&self.stdout).unwrap_or_else(|err| {
            panic!(
                "examples/run {lang} printed no JSON ({err}):\n{}",
                self.stdout
            )
        })
    }
}

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `examples/run LANG` with the partner's settings; the curl example's token cache goes to
/// `cache`.
async fn run_example(
    lang: &str,
    token_url: &str,
    api_url: &str,
    id: &str,
    secret: &str,
    cache: &Path,
) -> Run {
    let settings = [
        ("PARTNER_TOKEN_URL", token_url),
        ("PARTNER_API_URL", api_url),
        ("PARTNER_CLIENT_ID", id),
        ("PARTNER_CLIENT_SECRET", secret),
    ];
    run_with(lang, &settings, cache).await
}

/// Runs `examples/run LANG` with exactly the `PARTNER_*` variables in `settings`.
async fn run_with(lang: &str, settings: &[(&str, &str)], cache: &Path) -> Run {
    let mut command = Command::new(workspace().join("examples/run"));
    command
        .arg(lang)
        .current_dir(workspace())
        .env_remove("PARTNER_TOKEN_URL")
        .env_remove("PARTNER_API_URL")
        .env_remove("PARTNER_CLIENT_ID")
        .env_remove("PARTNER_CLIENT_SECRET")
        // `examples/run` runs the API-key variant when this one is set.
        .env_remove("PARTNER_API_KEY")
        .envs(settings.iter().copied())
        .env("PARTNER_TOKEN_CACHE_DIR", cache)
        .kill_on_drop(true);
    // What cargo sets for this test binary is not the partner's environment, and some build
    // scripts (ring's) rebuild when it changes: the nested `cargo run` would rebuild half the
    // workspace's dependencies, and the next `cargo test` rebuild them back.
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if CARGO_TEST_VARS.contains(&name.as_ref()) || name.starts_with("CARGO_PKG_") {
            command.env_remove(name.as_ref());
        }
    }
    let output = tokio::time::timeout(time_limit(lang), command.output())
        .await
        .unwrap_or_else(|_| {
            panic!(
                "examples/run {lang} did not finish within {:?}",
                time_limit(lang)
            )
        })
        .unwrap_or_else(|err| panic!("examples/run {lang} did not start: {err}"));
    let run = Run {
        success: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    eprintln!(
        "examples/run {lang}: {}\n{}",
        output.status,
        run.stderr.trim_end()
    );
    run
}

/// How many tokens the token service has issued to `id`.
async fn issued(auth: &TestAuth, id: &str) -> usize {
    // Audit events are written in batches; this waits for those queued so far.
    auth.state.audit.flush().await;
    let trail = auth.state.db.list_audit(Some(id), 10_000).await.unwrap();
    trail.iter().filter(|e| e.action == "token.issue").count()
}

/// The API's first page of orders for the client, as the API answers it.
async fn orders_of(auth: &TestAuth, api: &TestApi, id: &str, secret: &str) -> Value {
    let token = common::token(auth, id, secret).await;
    let response = common::get(api, "/v1/orders", &token).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

async fn system(adjust: impl FnOnce(&mut resource_api::Settings)) -> (TestAuth, TestApi) {
    let db = common::test_db(Backend::Sqlite).await.unwrap();
    let mut settings = TestAuth::settings(&db);
    // Keys reach the API within a second (for the revocation test).
    settings.jwks_max_age = 1;
    let auth = common::spawn_auth_with(db, settings).await;
    let api = spawn_resource_api(Backend::Sqlite, &auth, adjust)
        .await
        .unwrap();
    api.wait_ready().await;
    (auth, api)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_example_prints_the_partners_first_page_of_orders() {
    let (auth, api) = system(|_| {}).await;
    let (client, secret) = auth.client("globex", "orders:read").await;
    let (id, secret) = (client.client_id.as_str(), secret.expose());
    let expected = orders_of(&auth, &api, id, secret).await;
    let items = expected["items"].as_array().unwrap();
    assert!(!items.is_empty());
    assert!(items.iter().all(|order| order["partner_id"] == "globex"));
    let cache = tempfile::tempdir().unwrap();
    let token_url = auth.url("/oauth2/token");

    for lang in LANGS {
        let before = issued(&auth, id).await;
        let run = run_example(lang, &token_url, &api.base_url, id, secret, cache.path()).await;
        assert_eq!(run.json(lang), expected, "{lang}");
        assert_eq!(
            issued(&auth, id).await,
            before + 1,
            "{lang}: one token request"
        );
    }
    // The shell example keeps its token in a file: a second run asks for none.
    let before = issued(&auth, id).await;
    let run = run_example("curl", &token_url, &api.base_url, id, secret, cache.path()).await;
    assert_eq!(run.json("curl"), expected);
    assert_eq!(issued(&auth, id).await, before, "the cached token was used");
    // A damaged cache file is replaced by a new token.
    for file in std::fs::read_dir(cache.path()).unwrap() {
        std::fs::write(file.unwrap().path(), "{\"renew_at\": \"soon\"").unwrap();
    }
    let run = run_example("curl", &token_url, &api.base_url, id, secret, cache.path()).await;
    assert_eq!(run.json("curl"), expected);
    assert_eq!(issued(&auth, id).await, before + 1, "a new token");
    api.stop().await;
    auth.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_example_reports_a_wrong_secret_and_a_missing_scope_without_showing_the_secret() {
    let (auth, api) = system(|_| {}).await;
    let (client, secret) = auth.client("acme", "orders:read").await;
    let (unscoped, unscoped_secret) = auth.client("acme", "catalog:read").await;
    let wrong = format!("{}x", secret.expose());
    let cache = tempfile::tempdir().unwrap();
    let token_url = auth.url("/oauth2/token");
    for lang in LANGS {
        let run = run_example(
            lang,
            &token_url,
            &api.base_url,
            client.client_id.as_str(),
            &wrong,
            cache.path(),
        )
        .await;
        assert!(!run.success, "{lang} succeeded with a wrong secret");
        assert!(run.stdout.is_empty(), "{lang} printed {}", run.stdout);
        assert!(
            run.stderr.contains("invalid_client"),
            "{lang}: {}",
            run.stderr
        );
        assert!(
            !run.stderr.contains(&wrong) && !run.stderr.contains(secret.expose()),
            "{lang} showed the secret"
        );

        let run = run_example(
            lang,
            &token_url,
            &api.base_url,
            unscoped.client_id.as_str(),
            unscoped_secret.expose(),
            cache.path(),
        )
        .await;
        assert!(!run.success, "{lang} succeeded without the scope");
        assert!(run.stdout.is_empty(), "{lang} printed {}", run.stdout);
        assert!(
            run.stderr.contains("insufficient_scope"),
            "{lang}: {}",
            run.stderr
        );
        assert!(run.stderr.contains("orders:read"), "{lang}: {}", run.stderr);
        assert!(
            !run.stderr.contains(unscoped_secret.expose()),
            "{lang} showed the secret"
        );
    }
    api.stop().await;
    auth.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_example_names_a_missing_setting_and_reports_an_unreachable_api() {
    let (auth, api) = system(|_| {}).await;
    let (client, secret) = auth.client("acme", "orders:read").await;
    let (id, secret) = (client.client_id.as_str(), secret.expose());
    let token_url = auth.url("/oauth2/token");
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let cache = tempfile::tempdir().unwrap();
    let all = [
        ("PARTNER_TOKEN_URL", token_url.as_str()),
        ("PARTNER_API_URL", api.base_url.as_str()),
        ("PARTNER_CLIENT_ID", id),
        ("PARTNER_CLIENT_SECRET", secret),
    ];
    for lang in LANGS {
        for (missing, _) in all {
            let settings: Vec<_> = all
                .into_iter()
                .filter(|(name, _)| *name != missing)
                .collect();
            let run = run_with(lang, &settings, cache.path()).await;
            assert!(
                !run.success && run.stdout.is_empty(),
                "{lang} without {missing}"
            );
            assert!(
                run.stderr.contains(missing),
                "{lang} does not name {missing}: {}",
                run.stderr
            );
        }
        let run = run_example(lang, &token_url, &closed, id, secret, cache.path()).await;
        assert!(!run.success && run.stdout.is_empty(), "{lang} with no API");
        assert!(
            run.stderr.starts_with("error") || run.stderr.contains("\nerror"),
            "{lang}: {}",
            run.stderr
        );
        assert!(!run.stderr.contains(secret), "{lang} showed the secret");
    }
    let run = run_example("cobol", &token_url, &api.base_url, id, secret, cache.path()).await;
    assert!(
        !run.success
            && run
                .stderr
                .contains("usage: examples/run curl|python|node|rust")
    );
    api.stop().await;
    auth.stop().await;
}

/// Something that happens on the API's side just before the first request reaches it; it gets
/// that request's `Authorization` header (empty for a request with an API key).
type Twist = Box<dyn FnOnce(String) -> BoxFuture<'static, ()> + Send>;

/// A pass-through proxy in front of the partner API that lets the test make something happen
/// at the real services at the moment an example's first request arrives (its key revoked, its
/// rate limit spent), so that the real API answers it with the error under test, however long
/// the example took to start.
struct Proxy {
    url: String,
    twist: Arc<Mutex<Option<Twist>>>,
}

#[derive(Clone)]
struct Upstream {
    api: String,
    twist: Arc<Mutex<Option<Twist>>>,
}

async fn spawn_proxy(api: &TestApi) -> Proxy {
    let twist = Arc::new(Mutex::new(None));
    let upstream = Upstream {
        api: api.base_url.clone(),
        twist: twist.clone(),
    };
    let router = axum::Router::new().fallback(forward).with_state(upstream);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    Proxy { url, twist }
}

impl Proxy {
    fn before_next_request(&self, twist: Twist) {
        *self.twist.lock().unwrap() = Some(twist);
    }
}

async fn forward(State(upstream): State<Upstream>, request: Request) -> Response {
    let authorization = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let api_key = request.headers().get(X_API_KEY).cloned();
    let twist = upstream.twist.lock().unwrap().take();
    if let Some(twist) = twist {
        twist(authorization.clone()).await;
    }
    let path = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let mut forwarded = common::http()
        .get(format!("{}{path}", upstream.api))
        .header(ACCEPT, "application/json");
    if !authorization.is_empty() {
        forwarded = forwarded.header(AUTHORIZATION, &authorization);
    }
    if let Some(api_key) = api_key {
        forwarded = forwarded.header(X_API_KEY, api_key);
    }
    let answer = forwarded.send().await.expect("the partner API answers");
    let mut response = Response::builder().status(answer.status().as_u16());
    for name in [CONTENT_TYPE, WWW_AUTHENTICATE, RETRY_AFTER] {
        if let Some(value) = answer.headers().get(name.as_str()) {
            response = response.header(name, value.as_bytes());
        }
    }
    response
        .body(Body::from(answer.bytes().await.unwrap()))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_example_renews_a_token_the_api_refuses_and_retries_once() {
    let (auth, api) = system(|_| {}).await;
    let proxy = spawn_proxy(&api).await;
    let (client, secret) = auth.client("initech", "orders:read").await;
    let (id, secret) = (client.client_id.as_str(), secret.expose());
    let expected = orders_of(&auth, &api, id, secret).await;
    let cache = tempfile::tempdir().unwrap();
    let token_url = auth.url("/oauth2/token");
    for lang in LANGS {
        // When the example's first request arrives, the key that signed its token is revoked,
        // and the request goes on once the token service signs with the promoted key and the
        // API refuses the old one: the example meets a real 401 invalid_token.
        let (state, master, jwks) = (
            auth.state.clone(),
            auth.db.master_key_path(),
            api.state.verifier.jwks().clone(),
        );
        let me_url = format!("{}/v1/me", api.base_url);
        proxy.before_next_request(Box::new(move |authorization: String| {
            Box::pin(async move {
                let token = authorization.trim_start_matches("Bearer ").to_owned();
                let master = keys::MasterKey::load(&master).unwrap();
                let promoted =
                    auth_server::signing::revoke_key(&state.db, &master, &kid_of(&token))
                        .await
                        .unwrap()
                        .active
                        .unwrap();
                common::eventually(
                    Duration::from_secs(30),
                    "the promoted key signs and is known",
                    || async {
                        let signs = state.keys.get().active()?.kid() == promoted;
                        (signs && jwks.contains(&promoted)).then_some(())
                    },
                )
                .await;
                common::eventually(
                    Duration::from_secs(30),
                    "the API refuses the old token",
                    || async {
                        let status = common::http()
                            .get(&me_url)
                            .bearer_auth(&token)
                            .send()
                            .await
                            .ok()?
                            .status();
                        (status == StatusCode::UNAUTHORIZED).then_some(())
                    },
                )
                .await;
            })
        }));
        let before = issued(&auth, id).await;
        let run = run_example(lang, &token_url, &proxy.url, id, secret, cache.path()).await;
        assert_eq!(run.json(lang), expected, "{lang}");
        assert_eq!(
            issued(&auth, id).await,
            before + 2,
            "{lang}: one token, then one renewal"
        );
    }
    api.stop().await;
    auth.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_example_waits_out_a_429_as_retry_after_asks_and_then_succeeds() {
    // One request a second per client, no burst.
    let (auth, api) = system(|settings| {
        let one = std::num::NonZeroU32::new(1).unwrap();
        settings.rate_limit_per_second = one;
        settings.rate_limit_burst = one;
    })
    .await;
    let proxy = spawn_proxy(&api).await;
    let (client, secret) = auth.client("acme", "orders:read").await;
    let (id, secret) = (client.client_id.as_str(), secret.expose());
    let expected = orders_of(&auth, &api, id, secret).await;
    let cache = tempfile::tempdir().unwrap();
    let token_url = auth.url("/oauth2/token");
    for lang in LANGS {
        // The example's first request arrives just after one of the same client's: the API
        // answers it 429 with Retry-After.
        let me_url = format!("{}/v1/me", api.base_url);
        proxy.before_next_request(Box::new(move |authorization: String| {
            Box::pin(async move {
                common::http()
                    .get(&me_url)
                    .header(AUTHORIZATION, authorization)
                    .send()
                    .await
                    .unwrap();
            })
        }));
        let run = run_example(lang, &token_url, &proxy.url, id, secret, cache.path()).await;
        assert_eq!(run.json(lang), expected, "{lang}");
        assert!(
            run.stderr.contains("rate limited"),
            "{lang} met no 429: {}",
            run.stderr
        );
    }
    api.stop().await;
    auth.stop().await;
}

// ---- The API-key variant of every example, through `examples/run LANG` with
// `PARTNER_API_KEY` set ----

/// Both services, with API keys on at the partner API (its introspection client created on the
/// token service), after `adjust`ing the partner API's settings.
async fn keyed_system(adjust: impl FnOnce(&mut resource_api::Settings)) -> (TestAuth, TestApi) {
    let db = common::test_db(Backend::Sqlite).await.unwrap();
    let settings = TestAuth::settings(&db);
    let auth = common::spawn_auth_with(db, settings).await;
    let (introspector, secret) = auth
        .client_with("platform", "introspect", |c| c.introspect_allowed = true)
        .await;
    let url = auth.url("/oauth2/introspect");
    let api = spawn_resource_api(Backend::Sqlite, &auth, |settings| {
        settings.api_keys = Some(resource_api::config::ApiKeySettings {
            url,
            client_id: introspector.client_id.to_string(),
            client_secret: zeroize::Zeroizing::new(secret.expose().to_owned()),
            cache: Duration::from_secs(30),
        });
        adjust(settings);
    })
    .await
    .unwrap();
    api.wait_ready().await;
    (auth, api)
}

/// Runs `examples/run LANG` with only the API-key variant's two variables.
async fn run_api_key_example(lang: &str, api_url: &str, key: &str, cache: &Path) -> Run {
    let settings = [("PARTNER_API_URL", api_url), ("PARTNER_API_KEY", key)];
    run_with(lang, &settings, cache).await
}

/// The API's first page of orders for the key, as the API answers it.
async fn orders_with_key(api: &TestApi, key: &str) -> Value {
    let response = common::http()
        .get(api.url("/v1/orders"))
        .header(X_API_KEY, key)
        .send()
        .await
        .expect("partner API request");
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_api_key_example_prints_the_partners_first_page_of_orders_and_asks_for_no_token() {
    let (auth, api) = keyed_system(|_| {}).await;
    let (client, key) = auth.api_key_client("globex", "orders:read").await;
    let expected = orders_with_key(&api, &key).await;
    let items = expected["items"].as_array().unwrap();
    assert!(!items.is_empty());
    assert!(items.iter().all(|order| order["partner_id"] == "globex"));
    // A token client of another partner, whose settings are also in the environment of the
    // second run: with PARTNER_API_KEY set, `examples/run` must use the key and ignore them.
    let (other, other_secret) = auth.client("acme", "orders:read").await;
    let token_url = auth.url("/oauth2/token");
    let cache = tempfile::tempdir().unwrap();

    for lang in LANGS {
        let run = run_api_key_example(lang, &api.base_url, &key, cache.path()).await;
        assert_eq!(run.json(lang), expected, "{lang}");
        assert!(!run.stderr.contains(&key), "{lang} showed the key");

        let everything = [
            ("PARTNER_TOKEN_URL", token_url.as_str()),
            ("PARTNER_API_URL", api.base_url.as_str()),
            ("PARTNER_CLIENT_ID", other.client_id.as_str()),
            ("PARTNER_CLIENT_SECRET", other_secret.expose()),
            ("PARTNER_API_KEY", key.as_str()),
        ];
        let run = run_with(lang, &everything, cache.path()).await;
        assert_eq!(
            run.json(lang),
            expected,
            "{lang} with the token settings too"
        );
    }
    assert_eq!(
        issued(&auth, client.client_id.as_str()).await,
        0,
        "no token for the key's client"
    );
    assert_eq!(
        issued(&auth, other.client_id.as_str()).await,
        0,
        "the token variant did not run"
    );
    assert_eq!(
        std::fs::read_dir(cache.path()).unwrap().count(),
        0,
        "the shell example cached no token"
    );
    api.stop().await;
    auth.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_api_key_example_reports_a_wrong_key_and_a_missing_scope_without_showing_the_key() {
    let (auth, api) = keyed_system(|_| {}).await;
    let (_, key) = auth.api_key_client("acme", "orders:read").await;
    let (_, unscoped_key) = auth.api_key_client("acme", "catalog:read").await;
    let wrong = format!("{key}x");
    let cache = tempfile::tempdir().unwrap();
    for lang in LANGS {
        let run = run_api_key_example(lang, &api.base_url, &wrong, cache.path()).await;
        assert!(!run.success, "{lang} succeeded with a wrong key");
        assert!(run.stdout.is_empty(), "{lang} printed {}", run.stdout);
        assert!(
            run.stderr.contains("invalid_token"),
            "{lang}: {}",
            run.stderr
        );
        assert!(
            run.stderr.contains("PARTNER_API_KEY"),
            "{lang} does not say what to check: {}",
            run.stderr
        );
        assert!(
            !run.stderr.contains(&wrong) && !run.stderr.contains(&key),
            "{lang} showed the key"
        );

        let run = run_api_key_example(lang, &api.base_url, &unscoped_key, cache.path()).await;
        assert!(!run.success, "{lang} succeeded without the scope");
        assert!(run.stdout.is_empty(), "{lang} printed {}", run.stdout);
        assert!(
            run.stderr.contains("insufficient_scope"),
            "{lang}: {}",
            run.stderr
        );
        assert!(run.stderr.contains("orders:read"), "{lang}: {}", run.stderr);
        assert!(!run.stderr.contains(&unscoped_key), "{lang} showed the key");
    }
    api.stop().await;
    auth.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_api_key_example_names_a_missing_url_and_reports_an_unreachable_api() {
    let (auth, api) = keyed_system(|_| {}).await;
    let (_, key) = auth.api_key_client("acme", "orders:read").await;
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let cache = tempfile::tempdir().unwrap();
    for lang in LANGS {
        let run = run_with(lang, &[("PARTNER_API_KEY", key.as_str())], cache.path()).await;
        assert!(
            !run.success && run.stdout.is_empty(),
            "{lang} without PARTNER_API_URL"
        );
        assert!(
            run.stderr.contains("PARTNER_API_URL"),
            "{lang} does not name PARTNER_API_URL: {}",
            run.stderr
        );

        let run = run_api_key_example(lang, &closed, &key, cache.path()).await;
        assert!(!run.success && run.stdout.is_empty(), "{lang} with no API");
        assert!(
            run.stderr.starts_with("error") || run.stderr.contains("\nerror"),
            "{lang}: {}",
            run.stderr
        );
        assert!(!run.stderr.contains(&key), "{lang} showed the key");
    }
    api.stop().await;
    auth.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_api_key_example_waits_out_a_429_as_retry_after_asks_and_then_succeeds() {
    // One request a second per client, no burst.
    let (auth, api) = keyed_system(|settings| {
        let one = std::num::NonZeroU32::new(1).unwrap();
        settings.rate_limit_per_second = one;
        settings.rate_limit_burst = one;
    })
    .await;
    let proxy = spawn_proxy(&api).await;
    let (_, key) = auth.api_key_client("acme", "orders:read").await;
    let expected = orders_with_key(&api, &key).await;
    let cache = tempfile::tempdir().unwrap();
    for lang in LANGS {
        // The example's first request arrives just after one with the same key: the API
        // answers it 429 with Retry-After.
        let me_url = format!("{}/v1/me", api.base_url);
        let spender = key.clone();
        proxy.before_next_request(Box::new(move |_authorization: String| {
            Box::pin(async move {
                common::http()
                    .get(&me_url)
                    .header(X_API_KEY, spender)
                    .send()
                    .await
                    .unwrap();
            })
        }));
        let run = run_api_key_example(lang, &proxy.url, &key, cache.path()).await;
        assert_eq!(run.json(lang), expected, "{lang}");
        assert!(
            run.stderr.contains("rate limited"),
            "{lang} met no 429: {}",
            run.stderr
        );
        assert!(!run.stderr.contains(&key), "{lang} showed the key");
    }
    api.stop().await;
    auth.stop().await;
}
