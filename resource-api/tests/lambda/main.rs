//! `resource-api` as AWS Lambda functions, the partner API (here) and the authorizer
//! (`authorizer`): the real binary, started with `AWS_LAMBDA_RUNTIME_API` pointing at a fake
//! Runtime API served by the test, answering events shaped like AWS's documented examples, with
//! real tokens from a token service running in-process (`support`).

mod authorizer;
// Some of its helpers serve only the router tests.
#[allow(dead_code)]
#[path = "../../src/app/introspection_stub.rs"]
mod introspection_stub;
mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::{JwksServer, TokenService};
use test_support::lambda::events::{HttpAnswer, HttpRequest};
use test_support::lambda::{FakeRuntime, LambdaProcess};

const BINARY: &str = env!("CARGO_BIN_EXE_resource-api");

/// A token service, its JWKS behind a counting proxy (served with `max_age`), and the partner
/// API as a function trusting it, answering `runtime`'s invocations.
struct Stack {
    auth: TokenService,
    jwks: JwksServer,
    runtime: FakeRuntime,
    _dir: tempfile::TempDir,
    _function: LambdaProcess,
}

impl Stack {
    async fn start(max_age: u64, extra: &[(&str, String)]) -> Stack {
        let auth = TokenService::start().await;
        let jwks = JwksServer::start(&auth, max_age).await;
        let dir = tempfile::tempdir().unwrap();
        let runtime = FakeRuntime::start().await;
        let mut env = vec![
            ("RESOURCE_ISSUER", support::ISSUER.to_owned()),
            ("RESOURCE_JWKS_URL", jwks.url()),
            (
                "RESOURCE_DATABASE_URL",
                format!("sqlite://{}", dir.path().join("resource.db").display()),
            ),
        ];
        env.extend(extra.iter().cloned());
        // No arguments, as Lambda starts `bootstrap`.
        let function = LambdaProcess::start(BINARY, &[], &runtime.runtime_api(), &env);
        Stack {
            auth,
            jwks,
            runtime,
            _dir: dir,
            _function: function,
        }
    }
}

fn rate_limit(per_second: u32, burst: u32) -> [(&'static str, String); 2] {
    [
        ("RESOURCE_RATE_LIMIT_PER_SECOND", per_second.to_string()),
        ("RESOURCE_RATE_LIMIT_BURST", burst.to_string()),
    ]
}

async fn answer(runtime: &FakeRuntime, event: Value) -> HttpAnswer {
    HttpAnswer::from_response(&runtime.invoke(event).await.response())
}

/// The four ways an HTTP request reaches a function.
fn event_kinds(request: &HttpRequest) -> [(&'static str, Value); 5] {
    [
        ("HTTP API", request.http_api()),
        ("HTTP API, stage v1", request.clone().stage("v1").http_api()),
        (
            "REST API, stage prod",
            request.clone().stage("prod").rest_api(),
        ),
        ("ALB", request.alb()),
        ("function URL", request.function_url()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_partner_api_answers_every_kind_of_event_as_the_server_does() {
    let Stack { auth, runtime, .. } = &Stack::start(300, &rate_limit(1, 1000)).await;
    let (id, token) = auth.token("acme", "orders:read").await;

    for (kind, event) in event_kinds(&HttpRequest::get("/v1/me").bearer(&token)) {
        let answer = answer(runtime, event).await;
        assert_eq!(
            answer.status,
            200,
            "{kind}: {}",
            String::from_utf8_lossy(&answer.body)
        );
        let me = answer.json();
        assert_eq!(me["client_id"], id.as_str(), "{kind}");
        assert_eq!(me["partner_id"], "acme", "{kind}");
        assert!(answer.header("x-ratelimit-remaining").is_some(), "{kind}");
        assert_eq!(answer.header("cache-control"), Some("no-store"), "{kind}");
    }
    for (kind, event) in event_kinds(&HttpRequest::get("/v1/orders?limit=2").bearer(&token)) {
        let answer = answer(runtime, event).await;
        assert_eq!(answer.status, 200, "{kind}");
        assert!(answer.json()["items"].is_array(), "{kind}");
    }
    let tampered = format!("{}x", &token[..token.len() - 1]);
    let cases = [
        (HttpRequest::get("/v1/me"), 401, None),
        (
            HttpRequest::get("/v1/me").bearer(&tampered),
            401,
            Some("error=\"invalid_token\""),
        ),
        (
            HttpRequest::get("/v1/invoices").bearer(&token),
            403,
            Some("error=\"insufficient_scope\""),
        ),
    ];
    for (request, status, challenge) in cases {
        for (kind, event) in event_kinds(&request) {
            let answer = answer(runtime, event).await;
            assert_eq!(answer.status, status, "{kind} {}", request.path);
            let header = answer.header("www-authenticate").unwrap_or_default();
            assert!(header.starts_with("Bearer"), "{kind}: {header}");
            match challenge {
                Some(error) => assert!(header.contains(error), "{kind}: {header}"),
                None => assert!(!header.contains("error="), "{kind}: {header}"),
            }
        }
    }
    for (kind, event) in event_kinds(&HttpRequest::new("POST", "/healthz")) {
        let answer = answer(runtime, event).await;
        assert_eq!(answer.status, 405, "{kind}");
        assert_eq!(
            answer.header("content-type"),
            Some("application/problem+json"),
            "{kind}"
        );
    }
    for (kind, event) in event_kinds(&HttpRequest::get("/v1/nothing-here").bearer(&token)) {
        let answer = answer(runtime, event).await;
        assert_eq!(answer.status, 404, "{kind}");
        assert_eq!(
            answer.header("content-type"),
            Some("application/problem+json"),
            "{kind}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_over_its_rate_limit_gets_429_with_retry_after() {
    let Stack { auth, runtime, .. } = &Stack::start(300, &rate_limit(1, 3)).await;
    let (_, token) = auth.token("acme", "orders:read").await;
    let began = Instant::now();
    let mut statuses = Vec::new();
    for _ in 0..10 {
        let answer = answer(
            runtime,
            HttpRequest::get("/v1/me").bearer(&token).http_api(),
        )
        .await;
        if answer.status == 429 {
            assert!(answer.header("retry-after").is_some());
            assert_eq!(
                answer.header("content-type"),
                Some("application/problem+json")
            );
        }
        statuses.push(answer.status);
    }
    let allowed = statuses.iter().filter(|s| **s == 200).count();
    // The burst of three, and one more per second that passed.
    let most = 3 + began.elapsed().as_secs() as usize + 1;
    assert!((3..=most).contains(&allowed), "{statuses:?}");
    assert!(statuses.contains(&429));
    assert!(statuses.iter().all(|s| *s == 200 || *s == 429));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_jwks_is_fetched_during_initialization_and_refreshed_by_invocations() {
    // max-age 1 s: a later invocation finds the set stale and refreshes it.
    let Stack {
        auth,
        jwks,
        runtime,
        ..
    } = &Stack::start(1, &[]).await;
    let (_, token) = auth.token("acme", "orders:read").await;

    let first = answer(
        runtime,
        HttpRequest::get("/v1/me").bearer(&token).http_api(),
    )
    .await;
    assert_eq!(first.status, 200);
    let fetches = jwks.fetches();
    assert_eq!(fetches.len(), 1, "one fetch for the first request");
    let polled = runtime.first_poll().expect("the function asked for work");
    assert!(
        fetches[0] < polled,
        "the JWKS was fetched during initialization, before the function asked for its first invocation"
    );

    // Past max-age, the next invocation refreshes (one fetch), with no timer having run.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let later = answer(
        runtime,
        HttpRequest::get("/v1/me").bearer(&token).http_api(),
    )
    .await;
    assert_eq!(later.status, 200);
    assert_eq!(jwks.fetches().len(), 2, "refreshed once when stale");

    // A token signed by a key the cached set does not have yet: one refetch on the unknown kid.
    let kid = auth.rotate().await;
    let (_, new_token) = auth.token_signed_by("globex", "orders:read", &kid).await;
    let before = jwks.fetches().len();
    let fresh = answer(
        runtime,
        HttpRequest::get("/v1/me").bearer(&new_token).http_api(),
    )
    .await;
    assert_eq!(
        fresh.status,
        200,
        "{}",
        String::from_utf8_lossy(&fresh.body)
    );
    assert_eq!(jwks.fetches().len(), before + 1);
}

/// A certificate-bound token (RFC 8705) through API Gateway's mutual TLS: accepted with the
/// certificate API Gateway puts in the request context, refused with another one or none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bound_token_needs_its_certificate_in_the_request_context() {
    use test_support::pki::{Subject, self_signed};
    let Stack { auth, runtime, .. } = &Stack::start(300, &rate_limit(1000, 1000)).await;
    let cert = self_signed(&Subject::cn("acme"), false);
    let token = auth.bound_token("acme", "orders:read", &cert).await;
    let with = |pem: Option<&str>| {
        let request = HttpRequest::get("/v1/me").bearer(&token);
        match pem {
            Some(pem) => request.client_cert(pem),
            None => request,
        }
    };
    for (kind, event) in [
        ("HTTP API", with(Some(&cert.cert_pem)).http_api()),
        (
            "REST API",
            with(Some(&cert.cert_pem)).stage("prod").rest_api(),
        ),
    ] {
        let answer = answer(runtime, event).await;
        assert_eq!(
            answer.status,
            200,
            "{kind}: {}",
            String::from_utf8_lossy(&answer.body)
        );
    }
    let other = self_signed(&Subject::cn("acme"), false);
    for (what, request) in [
        ("no certificate", with(None)),
        ("another certificate", with(Some(&other.cert_pem))),
    ] {
        for (kind, event) in [
            ("HTTP API", request.http_api()),
            ("REST API", request.clone().stage("prod").rest_api()),
            ("ALB", request.alb()),
        ] {
            let answer = answer(runtime, event).await;
            assert_eq!(answer.status, 401, "{what}, {kind}");
            let challenge = answer.header("www-authenticate").unwrap_or_default();
            assert!(
                challenge.contains("invalid_token"),
                "{what}, {kind}: {challenge}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_key_is_resolved_once_and_remembered_across_warm_invocations() {
    use introspection_stub::{CLIENT_ID, CLIENT_SECRET, IntrospectionStub};
    let stub = IntrospectionStub::start().await;
    let key = IntrospectionStub::new_key();
    stub.activate(&key, "cl_acme_key", "acme", "orders:read");
    let keys_on = [
        ("RESOURCE_API_KEYS", "true".to_owned()),
        ("RESOURCE_INTROSPECTION_URL", stub.url.clone()),
        ("RESOURCE_INTROSPECTION_CLIENT_ID", CLIENT_ID.to_owned()),
        (
            "RESOURCE_INTROSPECTION_CLIENT_SECRET",
            CLIENT_SECRET.to_owned(),
        ),
    ];
    let Stack { runtime, .. } = &Stack::start(300, &keys_on).await;
    // Every kind of event, with the key in either header: one process, so one cache.
    let as_bearer = format!("Bearer {key}");
    for (header, value) in [("x-api-key", key.as_str()), ("authorization", &as_bearer)] {
        let request = HttpRequest::get("/v1/orders").header(header, value);
        for (kind, event) in event_kinds(&request) {
            let answer = answer(runtime, event).await;
            assert_eq!(
                answer.status,
                200,
                "{kind}, {header}: {}",
                String::from_utf8_lossy(&answer.body)
            );
        }
    }
    assert_eq!(
        stub.calls(),
        1,
        "one introspection call for ten invocations"
    );
    // A wrong key: 401 with the bearer challenge; a key beside a token: 400.
    let wrong = answer(
        runtime,
        HttpRequest::get("/v1/me")
            .header("x-api-key", &IntrospectionStub::new_key())
            .http_api(),
    )
    .await;
    assert_eq!(wrong.status, 401);
    assert!(
        wrong
            .header("www-authenticate")
            .is_some_and(|c| c.contains("invalid_token"))
    );
    let both = answer(
        runtime,
        HttpRequest::get("/v1/me")
            .header("x-api-key", &key)
            .bearer("eyJ.x.y")
            .http_api(),
    )
    .await;
    assert_eq!(both.status, 400);
    // The token service unreachable: the remembered key still works.
    stub.fail(true);
    let remembered = answer(
        runtime,
        HttpRequest::get("/v1/me")
            .header("x-api-key", &key)
            .http_api(),
    )
    .await;
    assert_eq!(remembered.status, 200);
}
