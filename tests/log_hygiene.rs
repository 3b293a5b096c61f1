//! With every log level switched on, a full flow leaves no secret, token or key material in the logs.
//! (Its own test binary, so the global log subscriber captures this flow only.)

// The end-to-end helpers of tests/e2e. This binary uses a few of them, so the module is `pub`
// here (a test crate's public items are not dead code); tests/e2e declares it private, so there
// an unused helper is still reported.
#[path = "e2e/common/mod.rs"]
pub mod common;

use common::system;

use std::io::Write;
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use common::{Backend, ClientAuth, http, spawn_auth_server};
use edge::logging::LogFormat;
use keys::{Algorithm, MasterKey};
use serde_json::Value;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_flow_at_trace_level_logs_no_secret_token_or_key() {
    // Both formats an operator can choose (LOG_FORMAT), each into its own capture, built by
    // the same function the binaries use.
    let capture = Capture::default();
    let json_capture = Capture::default();
    tracing_subscriber::registry()
        .with(
            edge::logging::layer(LogFormat::Text, capture.clone(), false)
                .with_filter(LevelFilter::TRACE),
        )
        .with(
            edge::logging::layer(LogFormat::Json, json_capture.clone(), false)
                .with_filter(LevelFilter::TRACE),
        )
        .init();

    let app = spawn_auth_server(Backend::Sqlite).await.unwrap();
    let (client, secret) = app.client("acme", "orders:read catalog:read").await;
    let id = client.client_id.as_str();
    let mut tokens = Vec::new();
    let mut refresh_tokens = Vec::new();
    for method in [ClientAuth::Basic, ClientAuth::Post] {
        let response = common::token_response_as(
            &app,
            method,
            id,
            secret.expose(),
            common::CLIENT_CREDENTIALS,
        )
        .await;
        let body: Value = response.json().await.unwrap();
        tokens.push(body["access_token"].as_str().unwrap().to_owned());
        refresh_tokens.push(body["refresh_token"].as_str().unwrap().to_owned());
    }
    // Refresh, reuse (which revokes the family), revocation and introspection.
    let refresh = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_tokens[0].as_str()),
    ];
    let response = common::token_response(&app, id, secret.expose(), &refresh).await;
    let refreshed: Value = response.json().await.unwrap();
    refresh_tokens.push(refreshed["refresh_token"].as_str().unwrap().to_owned());
    tokens.push(refreshed["access_token"].as_str().unwrap().to_owned());
    for (path, form) in [
        (
            "/oauth2/token",
            vec![
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_tokens[0].as_str()),
            ],
        ),
        (
            "/oauth2/revoke",
            vec![("token", refresh_tokens[1].as_str())],
        ),
        ("/oauth2/revoke", vec![("token", tokens[1].as_str())]),
        ("/oauth2/introspect", vec![("token", tokens[0].as_str())]),
    ] {
        http()
            .post(app.url(path))
            .basic_auth(id, Some(secret.expose()))
            .form(&form)
            .send()
            .await
            .unwrap();
    }
    // The partner API sees the tokens too: accepted, refused for scope, and tampered with. Its
    // Redis URL carries a password the machine's Redis does not expect, so the connection fails
    // and that failure is logged.
    let redis_password = "redis-password-that-must-not-be-logged";
    let redis_url =
        common::redis::redis_url().replacen("://", &format!("://:{redis_password}@"), 1);
    // API keys too: the partner API resolves them at the token service's introspection
    // endpoint as its introspection client.
    let (key_client, api_key) = app.api_key_client("acme", "orders:read").await;
    let (introspector, introspector_secret) = app
        .client_with("platform", "introspect", |c| c.introspect_allowed = true)
        .await;
    let introspection_url = app.url("/oauth2/introspect");
    let api = system::spawn_resource_api(Backend::Sqlite, &app, |s| {
        s.redis = Some(shared_limits::RedisSettings::new(redis_url.clone()));
        s.api_keys = Some(resource_api::config::ApiKeySettings {
            url: introspection_url,
            client_id: introspector.client_id.to_string(),
            client_secret: zeroize::Zeroizing::new(introspector_secret.expose().to_owned()),
            cache: std::time::Duration::from_secs(30),
        });
    })
    .await
    .unwrap();
    api.wait_ready().await;
    let wrong_key = format!("pak_{}", "W".repeat(43));
    for key in [api_key.as_str(), wrong_key.as_str()] {
        http()
            .get(api.url("/v1/me"))
            .header("x-api-key", key)
            .send()
            .await
            .unwrap();
        common::get(&api, "/v1/me", key).await;
    }
    // The key at the token endpoint (refused: keys get no token).
    let refused = common::token_response(
        &app,
        key_client.client_id.as_str(),
        &api_key,
        common::CLIENT_CREDENTIALS,
    )
    .await;
    assert_eq!(refused.status(), 400);
    for token in &tokens {
        for path in ["/v1/me", "/v1/orders", "/v1/invoices"] {
            common::get(&api, path, token).await;
        }
        let tampered = format!("{}x", &token[..token.len() - 1]);
        let refused = common::get(&api, "/v1/me", &tampered).await;
        assert_eq!(refused.status(), 401);
    }
    api.stop().await;
    let wrong = "pcs_this-is-a-wrong-secret-that-must-not-be-logged";
    let refused = common::token_response(&app, id, wrong, common::CLIENT_CREDENTIALS).await;
    assert_eq!(refused.status(), 401);
    let master = MasterKey::load(&app.db.master_key_path()).unwrap();
    common::force_rotate(&app, Algorithm::EdDSA).await;
    let rows = app.state.db.list_signing_keys().await.unwrap();
    let db = app.stop().await;

    let mut forbidden: Vec<(String, &str)> = vec![
        (secret.expose().to_owned(), "client secret"),
        (secret.expose()[4..].to_owned(), "client secret body"),
        (wrong.to_owned(), "wrong secret"),
        (api_key.clone(), "API key"),
        (api_key[4..].to_owned(), "API key body"),
        (wrong_key.clone(), "wrong API key"),
        (
            introspector_secret.expose().to_owned(),
            "introspection client secret",
        ),
        (redis_password.to_owned(), "Redis password"),
        (
            STANDARD.encode(format!("{id}:{}", secret.expose())),
            "Basic credentials",
        ),
        (
            std::fs::read_to_string(db.master_key_path())
                .unwrap()
                .trim()
                .to_owned(),
            "master key",
        ),
    ];
    for token in &refresh_tokens {
        forbidden.push((token.clone(), "refresh token"));
        forbidden.push((token[4..].to_owned(), "refresh token body"));
    }
    for token in &tokens {
        forbidden.push((token.clone(), "access token"));
        forbidden.push((
            token.rsplit('.').next().unwrap().to_owned(),
            "token signature",
        ));
    }
    for row in &rows {
        let der = keys::dangerous::reveal_pkcs8(&row.sealed(), &master).unwrap();
        forbidden.push((STANDARD.encode(&*der), "private key (base64)"));
        forbidden.push((URL_SAFE_NO_PAD.encode(&*der), "private key (base64url)"));
        forbidden.push((format!("{:?}", &*der), "private key (debug bytes)"));
    }

    let text_logs = String::from_utf8_lossy(&capture.0.lock().unwrap()).into_owned();
    let json_logs = String::from_utf8_lossy(&json_capture.0.lock().unwrap()).into_owned();
    check_json_lines(&json_logs, id);
    for (format, logs) in [("text", text_logs), ("json", json_logs)] {
        assert!(
            logs.contains("client authentication failed"),
            "the {format} capture sees the server's logs"
        );
        assert!(
            logs.contains("/oauth2/token"),
            "requests are logged ({format})"
        );
        assert!(
            logs.contains("bearer token refused"),
            "the partner API's logs are captured ({format})"
        );
        assert!(
            logs.contains("API key refused"),
            "the partner API's refusal of a wrong key is captured ({format})"
        );
        assert!(
            logs.contains("Redis is not answering"),
            "the refused Redis connection is logged ({format})"
        );
        for (needle, what) in &forbidden {
            assert!(
                !logs.contains(needle.as_str()),
                "{what} appears in the {format} logs"
            );
        }
    }
}

/// Every line of the JSON format is one JSON object, and each answered request left one
/// `access` line carrying its request id, matched route, status, duration and (once
/// authenticated) client id.
fn check_json_lines(logs: &str, client_id: &str) {
    let lines: Vec<Value> = logs
        .lines()
        .map(|line| {
            serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not one JSON object per line ({e}): {line}"))
        })
        .collect();
    let access = |route: &str| {
        lines
            .iter()
            .filter(|l| l["target"] == "access" && l["span"]["route"] == route)
            .collect::<Vec<_>>()
    };
    let orders = access("/v1/orders");
    assert!(
        !orders.is_empty(),
        "the partner API's requests have access lines"
    );
    for line in &orders {
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["status"], 200, "{line}");
        assert!(
            line["duration_ms"].as_f64().is_some_and(|ms| ms >= 0.0),
            "{line}"
        );
        assert_eq!(line["span"]["client_id"], client_id, "{line}");
        assert_eq!(line["span"]["method"], "GET");
        assert_eq!(line["span"]["path"], "/v1/orders");
        let request_id = line["span"]["request_id"].as_str().unwrap();
        assert!(uuid::Uuid::parse_str(request_id).is_ok(), "{line}");
    }
    let token = access("/oauth2/token");
    assert!(
        token
            .iter()
            .any(|l| l["status"] == 200 && l["span"]["client_id"] == client_id),
        "an issued token's access line names its client"
    );
    // A refused client authentication names no client: the id was only claimed.
    assert!(
        token
            .iter()
            .any(|l| l["status"] == 401 && l["span"].get("client_id").is_none()),
        "a failed authentication's access line has no client id"
    );
    let unmatched = access("unmatched");
    assert!(
        unmatched
            .iter()
            .all(|l| l["status"] == 404 || l["status"] == 405)
    );
}
