//! The OpenAPI descriptions (`GET /openapi.json`) and their pages (`GET /docs`) on both services:
//! the description documents exactly the routes each router serves and, for `/v1`, exactly the
//! scope of each route; the page renders the operations in a real browser (Chromium driven by
//! `playwright-core`, `tests/browser/`); and Schemathesis, fed the descriptions, finds no answer
//! of either running service that breaks them (`tests/schemathesis/`).
//!
//! The browser and Schemathesis come from outside the workspace (`.ci/run` installs Debian's
//! `chromium`, `npm ci` in `tests/browser/`, and Schemathesis from PyPI). A missing one fails the
//! test, naming it.

use crate::common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use common::system::spawn_system;
use common::{Backend, TestAuth, get, get_json, http, status_and_json, token};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio::process::Command;

/// Every method a route could serve, but HEAD: a router serving GET serves HEAD with it (RFC 9110
/// §9.3.2), and descriptions list GET alone.
const METHODS: [&str; 7] = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"];

/// The paths the README promises (its endpoint and route tables), which each service must serve
/// and document whatever its description says; with the description's own paths, the paths
/// probed.
const AUTH_CONTRACT: [&str; 8] = [
    "/oauth2/token",
    "/oauth2/revoke",
    "/oauth2/introspect",
    "/.well-known/jwks.json",
    "/.well-known/oauth-authorization-server",
    "/.well-known/openid-configuration",
    "/healthz",
    "/readyz",
];
const API_CONTRACT: [&str; 10] = [
    "/v1/me",
    "/v1/products",
    "/v1/products/{id}",
    "/v1/inventory",
    "/v1/orders",
    "/v1/orders/{id}",
    "/v1/invoices",
    "/v1/invoices/{id}",
    "/healthz",
    "/readyz",
];

/// The description's (method, path) pairs.
fn documented(description: &Value) -> BTreeSet<(String, String)> {
    let mut pairs = BTreeSet::new();
    for (path, item) in description["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("a path item").keys() {
            if METHODS.contains(&method.to_uppercase().as_str()) {
                pairs.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    pairs
}

/// Every scope a `/v1` route requires.
const ALL_SCOPES: &str = "catalog:read inventory:read orders:read invoices:read";

/// The (method, path) pairs of `paths` that the server at `base` serves: a request is answered
/// by something other than the router's 404 (no route) or 405 (no such method on this route).
/// With `bearer` (a token with every scope), an item's path gets the id of the first item of its
/// list, so that the handler's own 404 (no such item) cannot be taken for the router's; and the
/// `/v1` routes, which authenticate before the router looks at the method, get as far as it.
async fn served(
    base: &str,
    paths: &BTreeSet<String>,
    bearer: Option<&str>,
) -> BTreeSet<(String, String)> {
    let send = |method: &str, url: String| {
        let request = http().request(Method::from_bytes(method.as_bytes()).unwrap(), url);
        match bearer {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    };
    let mut pairs = BTreeSet::new();
    for path in paths {
        let concrete = match path.strip_suffix("/{id}") {
            Some(list) => {
                let page: Value = send("GET", format!("{base}{list}"))
                    .send()
                    .await
                    .expect("a list")
                    .json()
                    .await
                    .expect("a JSON list");
                let id = page["items"][0]["id"].as_str().expect("a listed item");
                format!("{list}/{id}")
            }
            None => path.clone(),
        };
        for method in METHODS {
            let response = send(method, format!("{base}{concrete}"))
                .send()
                .await
                .expect("a request");
            let status = response.status();
            if status != StatusCode::NOT_FOUND && status != StatusCode::METHOD_NOT_ALLOWED {
                pairs.insert((method.to_owned(), path.clone()));
            }
        }
    }
    pairs
}

/// Asserts that the server at `base` serves exactly what its description documents, over the
/// description's paths and those of the contract.
async fn assert_serves_what_it_documents(
    base: &str,
    contract: &[&str],
    bearer: Option<&str>,
) -> Value {
    let description: Value = get_json(format!("{base}/openapi.json")).await;
    assert_eq!(description["openapi"], "3.1.0", "{base}");
    let documented = documented(&description);
    let mut paths: BTreeSet<String> = documented.iter().map(|(_, p)| p.clone()).collect();
    paths.extend(contract.iter().map(|p| p.to_string()));
    let served = served(base, &paths, bearer).await;
    assert_eq!(
        served,
        documented,
        "{base}: served but not documented: {:?}; documented but not served: {:?}",
        served.difference(&documented).collect::<Vec<_>>(),
        documented.difference(&served).collect::<Vec<_>>(),
    );
    description
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_description_documents_exactly_the_routes_its_service_serves() {
    let (auth, api) = spawn_system(Backend::Sqlite).await.expect("SQLite");
    let (client, secret) = auth.client("acme", ALL_SCOPES).await;
    let bearer = token(&auth, client.client_id.as_str(), secret.expose()).await;
    let token_service = assert_serves_what_it_documents(&auth.base_url, &AUTH_CONTRACT, None).await;
    assert_serves_what_it_documents(&api.base_url, &API_CONTRACT, Some(&bearer)).await;
    // The OAuth endpoints take forms, and authenticate their clients by Basic or in the form.
    for path in ["/oauth2/token", "/oauth2/revoke", "/oauth2/introspect"] {
        let operation = &token_service["paths"][path]["post"];
        assert!(
            operation["requestBody"]["content"]["application/x-www-form-urlencoded"].is_object(),
            "{path}: {operation}"
        );
        let security = operation["security"].as_array().expect("security");
        assert!(
            security
                .iter()
                .any(|s| s.get("client_secret_basic").is_some()),
            "{path}: {security:?}"
        );
        for status in ["400", "401", "429"] {
            assert!(
                operation["responses"][status]["content"]["application/json"].is_object(),
                "{path} documents its RFC 6749 error {status}"
            );
        }
    }
    api.stop().await;
    auth.stop().await;
}

/// A tool from outside the workspace that did not run: fails the test, naming it and how to get
/// it.
fn missing(tool: &str, why: &str, install: &str) -> ! {
    panic!("{tool} is required by this test but {why}; {install}")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs `command` (with its output captured), failing the test when it does not finish within
/// `limit`: a hung tool must not hang the suite.
async fn run(command: &mut Command, limit: Duration) -> std::io::Result<Output> {
    let output = command.kill_on_drop(true).output();
    tokio::time::timeout(limit, output)
        .await
        .unwrap_or_else(|_| panic!("{command:?} did not finish within {limit:?}"))
}

/// Schemathesis's pinned version (`.ci/run` installs the same).
const SCHEMATHESIS: &str = "4.32.5";

/// Schemathesis, or the test fails naming it.
async fn schemathesis_version() -> String {
    const INSTALL: &str =
        "install it from PyPI with `pip install schemathesis==4.32.5` (.ci/run does)";
    match run(Command::new("st").arg("--version"), Duration::from_secs(60)).await {
        Ok(output) if output.status.success() => {
            let version = text(&output.stdout).trim().to_owned();
            eprintln!("api_docs: {version}");
            assert!(
                version.ends_with(SCHEMATHESIS),
                "Schemathesis {SCHEMATHESIS} is pinned, found {version}; {INSTALL}"
            );
            version
        }
        Ok(output) => missing(
            "Schemathesis (st)",
            &format!("does not run ({}): {}", output.status, text(&output.stderr)),
            INSTALL,
        ),
        Err(err) => missing(
            "Schemathesis (st)",
            &format!("is not installed ({err})"),
            INSTALL,
        ),
    }
}

/// `st run` of the description at `base` against `base`, with every check Schemathesis has, the
/// configuration `tests/schemathesis/{config}` if any, and `auth` (its arguments: a header or
/// Basic credentials). Bounded examples per operation keep the run to about a minute; the seed
/// makes a failure repeatable.
async fn schemathesis(base: &str, config: Option<&str>, auth: &[&str]) -> Output {
    let mut command = Command::new("st");
    if let Some(config) = config {
        let config = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/schemathesis")
            .join(config);
        command.arg("--config-file").arg(&config);
    }
    command
        .arg("run")
        .arg(format!("{base}/openapi.json"))
        .args(["--url", base])
        .args(["--checks", "all"])
        .args(["--phases", "examples,coverage,fuzzing"])
        .args(["--max-examples", "25"])
        .args(["--seed", "20261202"])
        .args(["--workers", "2"])
        .args(["--no-color"])
        .args(auth)
        // Schemathesis keeps its examples database beside the working directory otherwise.
        .current_dir(std::env::temp_dir());
    run(&mut command, Duration::from_secs(600))
        .await
        .expect("st run started")
}

fn assert_schemathesis_passed(what: &str, output: &Output) {
    let stdout = text(&output.stdout);
    eprintln!("{stdout}");
    assert!(
        output.status.success(),
        "Schemathesis found answers of {what} that break its description:\n{stdout}\n{}",
        text(&output.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_answer_that_breaks_either_description() {
    schemathesis_version().await;
    let db = common::test_db(Backend::Sqlite).await.expect("SQLite");
    let mut settings = TestAuth::settings(&db);
    // Schemathesis authenticates wrongly on purpose, thousands of times from one address: the
    // lockouts would soon answer every request 429 (documented, but then nothing else is tested).
    settings.lockout = shared_limits::LockoutPolicy {
        per_source_burst: 1_000_000,
        per_source_refill: Duration::from_millis(1),
        per_client_burst: 1_000_000,
        per_client_refill: Duration::from_millis(1),
    };
    let auth = common::spawn_auth_with(db, settings).await;
    // A demo partner's client with every scope; it may introspect, so that introspection is
    // tested beyond its 403.
    let (client, secret) = auth
        .client_with("acme", ALL_SCOPES, |spec| spec.introspect_allowed = true)
        .await;
    let api = common::system::spawn_resource_api(Backend::Sqlite, &auth, |_| {})
        .await
        .expect("SQLite");
    api.wait_ready().await;
    let bearer = token(&auth, client.client_id.as_str(), secret.expose()).await;

    let basic = format!("{}:{}", client.client_id.as_str(), secret.expose());
    let output = schemathesis(
        &auth.base_url,
        Some("token-service.toml"),
        &["--auth", &basic],
    )
    .await;
    assert_schemathesis_passed("the token service", &output);
    let header = format!("Authorization: Bearer {bearer}");
    let output = schemathesis(&api.base_url, None, &["--header", &header]).await;
    assert_schemathesis_passed("the partner API", &output);
    api.stop().await;
    auth.stop().await;
}

/// The browser test's folder: `package.json`, its lockfile and `docs_page.js`.
fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

/// Chromium's path: `CHROMIUM`, or Debian's.
fn chromium() -> String {
    std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into())
}

/// node, playwright-core (from `npm ci` in tests/browser) and Chromium, or the test fails
/// naming the one that is missing.
async fn browser_tools() {
    match run(
        Command::new("node").arg("--version"),
        Duration::from_secs(60),
    )
    .await
    {
        Ok(output) if output.status.success() => {
            eprintln!("api_docs: node {}", text(&output.stdout).trim());
        }
        Ok(output) => missing(
            "node",
            &format!("does not run: {}", text(&output.stderr)),
            "install Node.js (Debian: `apt-get install nodejs npm`)",
        ),
        Err(err) => missing(
            "node",
            &format!("is not installed ({err})"),
            "install Node.js (Debian: `apt-get install nodejs npm`)",
        ),
    }
    if !browser_dir()
        .join("node_modules/playwright-core/package.json")
        .exists()
    {
        missing(
            "playwright-core",
            "is not installed in tests/browser/node_modules",
            "run `npm ci` in tests/browser (.ci/run does)",
        );
    }
    let chromium = chromium();
    match run(
        Command::new(&chromium).arg("--version"),
        Duration::from_secs(60),
    )
    .await
    {
        Ok(output) if output.status.success() => {
            eprintln!("api_docs: {}", text(&output.stdout).trim());
        }
        Ok(output) => missing(
            "chromium",
            &format!("at {chromium} does not run: {}", text(&output.stderr)),
            "install Debian's with `apt-get install chromium` (.ci/run does)",
        ),
        Err(err) => missing(
            "chromium",
            &format!("is not at {chromium} ({err})"),
            "install Debian's with `apt-get install chromium` (.ci/run does)",
        ),
    }
}

/// Opens `base`'s `/docs` in headless Chromium and returns the operations Swagger UI rendered
/// ("METHOD /path"), failing when any of `expect` is not among them, when the page loaded
/// anything from elsewhere, or when its content-security policy refused anything.
async fn rendered_operations(base: &str, expect: &[&str]) -> Vec<String> {
    let mut command = Command::new("node");
    command
        .arg(browser_dir().join("docs_page.js"))
        .env("DOCS_URL", format!("{base}/docs/"))
        .env("EXPECT", serde_json::to_string(expect).unwrap())
        .env("CHROMIUM", chromium())
        .current_dir(browser_dir());
    let output = run(&mut command, Duration::from_secs(120))
        .await
        .expect("node started");
    assert!(
        output.status.success(),
        "the docs page of {base} did not render as expected:\n{}\n{}",
        text(&output.stdout),
        text(&output.stderr)
    );
    let page: Value = serde_json::from_slice(&output.stdout).expect("one JSON line");
    page["operations"]
        .as_array()
        .expect("operations")
        .iter()
        .map(|op| op.as_str().expect("text").to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_docs_page_renders_every_operation_in_a_real_browser() {
    browser_tools().await;
    let (auth, api) = spawn_system(Backend::Sqlite).await.expect("SQLite");
    for (service, base) in [
        ("token service", &auth.base_url),
        ("partner API", &api.base_url),
    ] {
        // The page's relaxed policy is the page's alone: the description keeps the strict one.
        let page = http().get(format!("{base}/docs/")).send().await.unwrap();
        assert_eq!(page.status(), StatusCode::OK, "{service}");
        let csp = page.headers()["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("script-src 'self'"), "{service}: {csp}");
        let description = http()
            .get(format!("{base}/openapi.json"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            description.headers()["content-security-policy"],
            "default-src 'none'; frame-ancestors 'none'",
            "{service}"
        );
        // Every documented operation is on the page, as Swagger UI drew it.
        let expected: Vec<String> = documented(&description.json().await.unwrap())
            .into_iter()
            .map(|(method, path)| format!("{method} {path}"))
            .collect();
        let expected: Vec<&str> = expected.iter().map(String::as_str).collect();
        let rendered = rendered_operations(base, &expected).await;
        assert_eq!(rendered.len(), expected.len(), "{service}: {rendered:?}");
    }
    let rendered = rendered_operations(&api.base_url, &["GET /v1/orders/{id}"]).await;
    assert!(rendered.contains(&"GET /v1/orders/{id}".to_owned()));
    let rendered = rendered_operations(&auth.base_url, &["POST /oauth2/token"]).await;
    assert!(rendered.contains(&"POST /oauth2/token".to_owned()));
    api.stop().await;
    auth.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_v1_operation_requires_the_scope_of_its_route_and_nothing_else() {
    let (auth, api) = spawn_system(Backend::Sqlite).await.expect("SQLite");
    let description: Value = get_json(api.url("/openapi.json")).await;
    let table: Vec<(String, Option<String>)> = resource_api::routes::v1()
        .declared()
        .map(|(path, access)| {
            let scope = match access {
                resource_api::auth::Access::AnyValidToken => None,
                resource_api::auth::Access::Scope(scope) => Some(scope.to_owned()),
            };
            (path.to_owned(), scope)
        })
        .collect();
    let mut tokens = std::collections::HashMap::new();
    for (path, scope) in &table {
        let security = &description["paths"][path]["get"]["security"];
        let documented: Vec<&str> = security[0]["partner_token"]
            .as_array()
            .unwrap_or_else(|| panic!("{path}: {security}"))
            .iter()
            .map(|s| s.as_str().unwrap())
            .collect();
        assert_eq!(security.as_array().unwrap().len(), 1, "{path}: {security}");
        assert_eq!(
            documented,
            scope.iter().map(String::as_str).collect::<Vec<_>>(),
            "{path}"
        );
        // And the API does as documented: the scope alone is enough, every other scope is not.
        let concrete = path.replace("{id}", "x");
        if let Some(scope) = scope {
            let others: Vec<&str> = ALL_SCOPES.split(' ').filter(|s| s != scope).collect();
            for (scopes, allowed) in [(scope.clone(), true), (others.join(" "), false)] {
                if !tokens.contains_key(&scopes) {
                    let (client, secret) = auth.client("acme", &scopes).await;
                    let bearer = token(&auth, client.client_id.as_str(), secret.expose()).await;
                    tokens.insert(scopes.clone(), bearer);
                }
                let response = get(&api, &concrete, &tokens[&scopes]).await;
                let challenge = response
                    .headers()
                    .get("www-authenticate")
                    .map(|v| v.to_str().unwrap().to_owned());
                let (status, body) = status_and_json(response).await;
                if allowed {
                    assert_ne!(
                        status,
                        StatusCode::FORBIDDEN,
                        "{path} with {scopes}: {body}"
                    );
                } else {
                    assert_eq!(
                        status,
                        StatusCode::FORBIDDEN,
                        "{path} with {scopes}: {body}"
                    );
                    let challenge = challenge.expect("a challenge");
                    assert!(
                        challenge.contains(&format!("scope=\"{scope}\"")),
                        "{path}: {challenge}"
                    );
                }
            }
        }
    }
    // The security scheme offers exactly the scopes the table requires.
    let offered: BTreeSet<&str> =
        description["components"]["securitySchemes"]["partner_token"]["flows"]["clientCredentials"]
            ["scopes"]
            .as_object()
            .expect("scopes")
            .keys()
            .map(String::as_str)
            .collect();
    let required: BTreeSet<&str> = table.iter().filter_map(|(_, s)| s.as_deref()).collect();
    assert_eq!(offered, required);
    api.stop().await;
    auth.stop().await;
}
