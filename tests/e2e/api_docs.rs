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

use common::system::{TestApi, spawn_system};
use common::{Backend, TestAuth, get, get_json, http, status_and_json, token};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio::process::Command;

/// Every method a route could serve, but HEAD: a router serving GET serves HEAD with it (RFC 9110
/// §9.3.2), and descriptions list GET alone.
const METHODS: [&str; 7] = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"];

/// The paths of the product's contract (PRODUCT.md), which each service must serve and document
/// whatever its description says; with the description's own paths, the paths probed.
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
    let partner_api =
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
    std::fs::write(
        "/tmp/h4-auth.json",
        serde_json::to_string_pretty(&token_service).unwrap(),
    )
    .unwrap();
    std::fs::write(
        "/tmp/h4-api.json",
        serde_json::to_string_pretty(&partner_api).unwrap(),
    )
    .unwrap();
    api.stop().await;
    auth.stop().await;
}
