//! Metrics for operators: each service's Prometheus text on a listener of its own
//! (`AUTH_METRICS_BIND`, `RESOURCE_METRICS_BIND`), counting exactly its own traffic, with labels
//! from fixed sets (route templates, never paths; never a client id a caller made up).

use std::collections::{BTreeMap, HashMap};

use reqwest::StatusCode;

use crate::common::system::{TestApi, resource_settings, spawn_resource_api, spawn_resource_with};
use crate::common::{
    self, Backend, CLIENT_CREDENTIALS, TestAuth, http, spawn_auth_server, spawn_auth_with, test_db,
};

/// Both services with their metrics listeners on loopback port 0, the API's keys loaded.
async fn spawn_with_metrics() -> (TestAuth, TestApi) {
    let db = test_db(Backend::Sqlite).await.expect("a SQLite database");
    let mut settings = TestAuth::settings(&db);
    settings.metrics_bind = Some("127.0.0.1:0".parse().unwrap());
    let auth = spawn_auth_with(db, settings).await;
    let api = spawn_resource_api(Backend::Sqlite, &auth, |settings| {
        settings.metrics_bind = Some("127.0.0.1:0".parse().unwrap());
    })
    .await
    .expect("a SQLite database");
    api.wait_ready().await;
    (auth, api)
}

/// A series: its name and labels.
type SeriesKey = (String, BTreeMap<String, String>);

/// One scrape of a `/metrics` endpoint: every series by its name and labels.
struct Scrape {
    text: String,
    series: HashMap<SeriesKey, f64>,
}

impl Scrape {
    async fn of(base_url: &Option<String>) -> Scrape {
        let base_url = base_url.as_deref().expect("a metrics listener");
        let response = http()
            .get(format!("{base_url}/metrics"))
            .send()
            .await
            .expect("scrape");
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()["content-type"],
            "text/plain; version=0.0.4; charset=utf-8"
        );
        let text = response.text().await.expect("a text body");
        let series = text
            .lines()
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .map(|line| parse_sample(line).unwrap_or_else(|| panic!("not a sample: {line}")))
            .collect();
        Scrape { text, series }
    }

    /// The value of `name{labels}` (besides `service`); 0 for a series not there (yet).
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.series
            .iter()
            .find(|((metric, have), _)| {
                metric == name
                    && have.len() == labels.len() + 1
                    && labels
                        .iter()
                        .all(|(k, v)| have.get(*k).map(String::as_str) == Some(*v))
            })
            .map_or(0.0, |(_, value)| *value)
    }

    /// Every series of `name`, by labels.
    fn all(&self, name: &str) -> Vec<(&BTreeMap<String, String>, f64)> {
        self.series
            .iter()
            .filter(|((metric, _), _)| metric == name)
            .map(|((_, labels), value)| (labels, *value))
            .collect()
    }

    fn total(&self, name: &str) -> f64 {
        self.all(name).iter().map(|(_, value)| value).sum()
    }
}

/// One sample line of the Prometheus text format: `name{label="value",...} value`, label
/// values with their `\\`, `\"` and `\n` escapes. (The prometheus-parse crate cuts label values
/// at the first `}`, which every route template such as `/v1/orders/{id}` holds.)
fn parse_sample(line: &str) -> Option<(SeriesKey, f64)> {
    let name_end = line.find(['{', ' '])?;
    let (name, mut rest) = line.split_at(name_end);
    let mut labels = BTreeMap::new();
    if let Some(inside) = rest.strip_prefix('{') {
        rest = inside;
        loop {
            if let Some(after) = rest.strip_prefix('}') {
                rest = after;
                break;
            }
            let (key, after) = rest.split_once("=\"")?;
            let mut value = String::new();
            let mut chars = after.char_indices();
            let end = loop {
                match chars.next()? {
                    (i, '"') => break i,
                    (_, '\\') => match chars.next()?.1 {
                        'n' => value.push('\n'),
                        other => value.push(other),
                    },
                    (_, c) => value.push(c),
                }
            };
            labels.insert(key.to_owned(), value);
            rest = &after[end + 1..];
            rest = rest.strip_prefix(',').unwrap_or(rest);
        }
    }
    let value = rest.trim().parse().ok()?;
    Some(((name.to_owned(), labels), value))
}

/// How much each series moved between two scrapes.
fn delta(before: &Scrape, after: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    after.value(name, labels) - before.value(name, labels)
}

const UNKNOWN_ID: &str = "cl_madeupbyattacker";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_counter_moves_by_exactly_the_traffic_sent() {
    let (auth, api) = spawn_with_metrics().await;
    let (client, secret) = auth.client("acme", "orders:read").await;
    let (narrow, narrow_secret) = auth.client("acme", "catalog:read").await;
    let id = client.client_id.as_str();
    let auth_before = Scrape::of(&auth.metrics_base_url).await;
    let api_before = Scrape::of(&api.metrics_base_url).await;

    // The token service: three tokens issued (two by client credentials, one by refresh), a
    // wrong secret, an unknown client id, an unsupported grant and a request without a grant.
    let first = common::token_grant(&auth, id, secret.expose()).await;
    let token = first["access_token"].as_str().unwrap().to_owned();
    common::token(&auth, id, secret.expose()).await;
    let refresh = first["refresh_token"].as_str().expect("a refresh token");
    let refreshed = common::token_response(
        &auth,
        id,
        secret.expose(),
        &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
    )
    .await;
    assert_eq!(refreshed.status(), StatusCode::OK);
    let statuses = [
        common::token_response(&auth, id, "pcs_wrong", CLIENT_CREDENTIALS).await,
        common::token_response(&auth, UNKNOWN_ID, "pcs_guess", CLIENT_CREDENTIALS).await,
        common::token_response(&auth, id, secret.expose(), &[("grant_type", "password")]).await,
        common::token_response(&auth, id, secret.expose(), &[("scope", "orders:read")]).await,
    ]
    .map(|response| response.status());
    assert_eq!(
        statuses,
        [
            StatusCode::UNAUTHORIZED,
            StatusCode::UNAUTHORIZED,
            StatusCode::BAD_REQUEST,
            StatusCode::BAD_REQUEST
        ]
    );

    // The partner API: 200, 401 without a token, 401 with a malformed one, 403 without the
    // scope, 404 for an unknown order and 404 for a route that does not exist.
    let narrow_token =
        common::token(&auth, narrow.client_id.as_str(), narrow_secret.expose()).await;
    let answers = [
        common::get(&api, "/v1/orders/ord_00001", &token)
            .await
            .status(),
        http()
            .get(api.url("/v1/orders"))
            .send()
            .await
            .unwrap()
            .status(),
        common::get(&api, "/v1/orders", "not-a-jwt").await.status(),
        common::get(&api, "/v1/orders", &narrow_token)
            .await
            .status(),
        common::get(&api, "/v1/orders/ord_99999", &token)
            .await
            .status(),
        common::get(&api, "/v1/no/such/route", &token)
            .await
            .status(),
    ];
    assert_eq!(answers.map(|s| s.as_u16()), [200, 401, 401, 403, 404, 404]);

    let auth_after = Scrape::of(&auth.metrics_base_url).await;
    let api_after = Scrape::of(&api.metrics_base_url).await;

    let requests = |grant: &str, outcome: &str| {
        delta(
            &auth_before,
            &auth_after,
            "auth_token_requests_total",
            &[("grant_type", grant), ("outcome", outcome)],
        )
    };
    // The narrow client's token is the fourth issued by client credentials.
    assert_eq!(
        requests("client_credentials", "issued"),
        3.0,
        "{}",
        auth_after.text
    );
    assert_eq!(requests("refresh_token", "issued"), 1.0);
    assert_eq!(requests("client_credentials", "invalid_client"), 2.0);
    assert_eq!(requests("other", "unsupported_grant_type"), 1.0);
    assert_eq!(requests("other", "invalid_request"), 1.0);
    let moved = auth_after.total("auth_token_requests_total")
        - auth_before.total("auth_token_requests_total");
    assert_eq!(moved, 8.0, "no other token request was counted");
    let failures = |reason: &str| {
        delta(
            &auth_before,
            &auth_after,
            "auth_client_auth_failures_total",
            &[("reason", reason)],
        )
    };
    assert_eq!(failures("wrong_secret"), 1.0, "{}", auth_after.text);
    assert_eq!(failures("unknown_client"), 1.0, "{}", auth_after.text);
    assert!(
        !auth_after.text.contains(UNKNOWN_ID) && !auth_after.text.contains(id),
        "no client id is ever a label: {}",
        auth_after.text
    );
    let token_durations = |status: &str| {
        delta(
            &auth_before,
            &auth_after,
            "http_request_duration_seconds_count",
            &[
                ("route", "/oauth2/token"),
                ("method", "POST"),
                ("status", status),
            ],
        )
    };
    assert_eq!(token_durations("200"), 4.0, "{}", auth_after.text);
    assert_eq!(token_durations("401"), 2.0);
    assert_eq!(token_durations("400"), 2.0);

    let api_requests = |route: &str, status: &str| {
        delta(
            &api_before,
            &api_after,
            "resource_requests_total",
            &[("route", route), ("status", status)],
        )
    };
    assert_eq!(
        api_requests("/v1/orders/{id}", "200"),
        1.0,
        "{}",
        api_after.text
    );
    assert_eq!(api_requests("/v1/orders/{id}", "404"), 1.0);
    assert_eq!(api_requests("/v1/orders", "401"), 2.0);
    assert_eq!(api_requests("/v1/orders", "403"), 1.0);
    assert_eq!(api_requests("unmatched", "404"), 1.0);
    assert!(
        !api_after.text.contains("ord_0") && !api_after.text.contains("/v1/no/such"),
        "routes are templates, never paths: {}",
        api_after.text
    );
    let rejections = |reason: &str| {
        delta(
            &api_before,
            &api_after,
            "resource_token_rejections_total",
            &[("reason", reason)],
        )
    };
    assert_eq!(rejections("missing"), 1.0, "{}", api_after.text);
    assert_eq!(rejections("malformed"), 1.0);
    assert_eq!(rejections("insufficient_scope"), 1.0);
    for (labels, value) in api_after.all("resource_token_rejections_total") {
        let reason = labels["reason"].as_str();
        if !["missing", "malformed", "insufficient_scope"].contains(&reason) {
            assert_eq!(
                value,
                api_before.value("resource_token_rejections_total", &[("reason", reason)]),
                "{reason}"
            );
        }
    }
    assert_eq!(
        delta(
            &api_before,
            &api_after,
            "http_request_duration_seconds_count",
            &[
                ("route", "/v1/orders/{id}"),
                ("method", "GET"),
                ("status", "200")
            ],
        ),
        1.0
    );
    // A histogram with buckets (not a summary): its +Inf bucket holds every observation.
    assert_eq!(
        api_after.value(
            "http_request_duration_seconds_bucket",
            &[
                ("route", "/v1/orders/{id}"),
                ("method", "GET"),
                ("status", "200"),
                ("le", "+Inf")
            ],
        ),
        1.0,
        "{}",
        api_after.text
    );
    assert!(
        api_after
            .all("http_request_duration_seconds_bucket")
            .iter()
            .filter(|(labels, _)| labels["route"] == "/v1/orders/{id}" && labels["status"] == "200")
            .count()
            > 10
    );
    // The API loaded the keys once at start and needed no other fetch.
    let fetched =
        |outcome: &str| api_after.value("resource_jwks_fetches_total", &[("outcome", outcome)]);
    assert_eq!(fetched("ok"), 1.0, "{}", api_after.text);
    assert_eq!(
        api_after.total("resource_jwks_fetches_total"),
        api.jwks_fetches() as f64
    );

    // Two services in one process, each with only its own series.
    for (scrape, service, foreign) in [
        (&auth_after, "auth", "resource_"),
        (&api_after, "resource", "auth_"),
    ] {
        assert!(
            scrape
                .series
                .keys()
                .all(|(_, labels)| labels.get("service").map(String::as_str) == Some(service)),
            "{}",
            scrape.text
        );
        assert!(!scrape.text.contains(foreign), "{}", scrape.text);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_served_only_on_their_own_listener() {
    let (auth, api) = spawn_with_metrics().await;
    for service in [auth.base_url.as_str(), api.base_url.as_str()] {
        let response = http()
            .get(format!("{service}/metrics"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{service}");
    }
    for listener in [&auth.metrics_base_url, &api.metrics_base_url] {
        let listener = listener.as_deref().unwrap();
        assert_ne!(listener, auth.base_url);
        assert_ne!(listener, api.base_url);
        for path in ["/", "/metrics/", "/oauth2/token", "/v1/orders"] {
            let response = http()
                .get(format!("{listener}{path}"))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        }
        let response = http()
            .post(format!("{listener}/metrics"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_metrics_bind_there_is_no_listener_and_nothing_is_kept() {
    let auth = spawn_auth_server(Backend::Sqlite).await.expect("SQLite");
    let api = spawn_resource_api(Backend::Sqlite, &auth, |_| {})
        .await
        .expect("SQLite");
    api.wait_ready().await;
    assert!(auth.metrics_base_url.is_none() && api.metrics_base_url.is_none());
    let (client, secret) = auth.client("acme", "orders:read").await;
    let token = common::token(&auth, client.client_id.as_str(), secret.expose()).await;
    assert_eq!(common::get(&api, "/v1/orders", &token).await.status(), 200);
    assert!(!auth.state.metrics.registry().is_on());
    assert_eq!(auth.state.metrics.registry().render(), "");
    assert_eq!(api.state.metrics.registry().render(), "");
    for service in [auth.url("/metrics"), api.url("/metrics")] {
        assert_eq!(common::get_status(&service).await, StatusCode::NOT_FOUND);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_metrics_bind_equal_to_a_service_bind_is_refused_at_start() {
    // A port that is free now; the refusal comes before anything binds it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let same: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();

    let db = test_db(Backend::Sqlite).await.expect("SQLite");
    let mut settings = TestAuth::settings(&db);
    settings.bind = same;
    settings.metrics_bind = Some(same);
    let err = auth_server::Application::build(settings)
        .await
        .err()
        .expect("refused")
        .to_string();
    assert!(
        err.contains("AUTH_METRICS_BIND") && err.contains("partner-facing"),
        "{err}"
    );

    let auth = spawn_auth_server(Backend::Sqlite).await.expect("SQLite");
    let db = test_db(Backend::Sqlite).await.expect("SQLite");
    let mut settings = resource_settings(&auth, &db);
    settings.bind = same;
    // Port 0 is any free port: never the service's.
    settings.metrics_bind = Some("127.0.0.1:0".parse().unwrap());
    let started = spawn_resource_with(db, settings.clone()).await;
    assert!(started.metrics_base_url.is_some());
    let _db = started.stop().await;
    settings.metrics_bind = Some(format!("0.0.0.0:{port}").parse().unwrap());
    let err = resource_api::Application::build(settings)
        .await
        .err()
        .expect("refused")
        .to_string();
    assert!(
        err.contains("RESOURCE_METRICS_BIND") && err.contains("partner-facing"),
        "{err}"
    );
}

#[test]
fn the_sample_reader_reads_braces_and_escapes_in_label_values() {
    let ((name, labels), value) =
        parse_sample(r#"m_total{route="/v1/orders/{id}",odd="a\"b\\c\nd"} 12"#).unwrap();
    assert_eq!(name, "m_total");
    assert_eq!(labels["route"], "/v1/orders/{id}");
    assert_eq!(labels["odd"], "a\"b\\c\nd");
    assert_eq!(value, 12.0);
    let ((name, labels), value) = parse_sample("up 1").unwrap();
    assert_eq!((name.as_str(), labels.len(), value), ("up", 0, 1.0));
    assert!(parse_sample(r#"m{route="unterminated} 1"#).is_none());
}
