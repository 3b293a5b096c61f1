//! `resource-api authorize` as an API Gateway Lambda authorizer: the real binary, started with
//! `AWS_LAMBDA_RUNTIME_API` pointing at a fake Runtime API served by the test, answering REST
//! `TOKEN`, REST `REQUEST` and HTTP API (payload 2.0) authorizer events shaped like AWS's
//! examples, for real tokens of a token service running in-process (its JWKS, its clients).
//!
//! A REST answer is judged as API Gateway judges an IAM policy: a Deny that matches the method
//! ARN wins (403), then an Allow that matches it (the call goes through), else 403; `*` in a
//! resource matches any characters. The same judgement applied to other ARNs is what API Gateway
//! does with a policy it cached for the token.

use std::process::{Command, Stdio};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::EcdsaKeyPair;
use serde_json::{Value, json};
use test_support::lambda::events::{self, HttpRequest};
use test_support::lambda::{FakeRuntime, LambdaProcess, Outcome};

use crate::BINARY;
use crate::support::{ISSUER, TokenService};
const ROUTES: &str = "GET /v1/me=,GET /v1/orders=orders:read,GET /v1/orders/{id}=orders:read,\
                      GET /v1/invoices=invoices:read,GET /v1/invoices/{id}=invoices:read";

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn part(token: &str, index: usize) -> Value {
    let text = token.split('.').nth(index).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(text).unwrap()).unwrap()
}

/// `token` with its claims changed by `change`, signed again by `key` (an insider's forgery), or
/// with the old signature kept when `key` is `None` (a tampered token).
fn reworked(token: &str, change: impl Fn(&mut Value), key: Option<&EcdsaKeyPair>) -> String {
    let header = token.split('.').next().unwrap();
    let mut claims = part(token, 1);
    change(&mut claims);
    let input = format!("{header}.{}", b64(claims.to_string()));
    let signature = match key {
        Some(pair) => b64(pair.sign(&SystemRandom::new(), input.as_bytes()).unwrap()),
        None => token.split('.').nth(2).unwrap().to_owned(),
    };
    format!("{input}.{signature}")
}

/// The authorizer as a Lambda function against `runtime`, trusting `auth`'s tokens. Its database
/// URL points nowhere: the authorizer must not need one.
fn authorizer(
    runtime: &FakeRuntime,
    auth: &TokenService,
    extra: &[(&str, String)],
) -> LambdaProcess {
    let mut env = vec![
        ("RESOURCE_ISSUER", ISSUER.to_owned()),
        (
            "RESOURCE_JWKS_URL",
            format!("{}/.well-known/jwks.json", auth.base_url),
        ),
        ("RESOURCE_AUDIENCE", "partner-api".to_owned()),
        ("RESOURCE_AUTHORIZER_ROUTES", ROUTES.to_owned()),
        // As Lambda starts it: `bootstrap` without arguments, the handler setting naming the
        // command.
        ("_HANDLER", "authorize".to_owned()),
        (
            "RESOURCE_DATABASE_URL",
            "sqlite:///nonexistent/authorizer/resource.db".to_owned(),
        ),
    ];
    env.extend(extra.iter().cloned());
    LambdaProcess::start(BINARY, &[], &runtime.runtime_api(), &env)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EventKind {
    RestToken,
    RestRequest,
    HttpApi,
}

const KINDS: [EventKind; 3] = [
    EventKind::RestToken,
    EventKind::RestRequest,
    EventKind::HttpApi,
];

/// The event of `kind` for `method path` with `authorization` (as the header would carry it).
fn event(kind: EventKind, method: &str, path: &str, authorization: Option<&str>) -> Value {
    let mut request = HttpRequest::new(method, path).stage("prod");
    if let Some(value) = authorization {
        request = request.header("Authorization", value);
    }
    match kind {
        EventKind::RestToken => events::token_authorizer(
            authorization.unwrap_or(""),
            &events::method_arn("prod", method, path),
        ),
        EventKind::RestRequest => events::rest_request_authorizer(&request),
        EventKind::HttpApi => events::http_api_authorizer(&request),
    }
}

/// What API Gateway makes of an answer for the call `arn`.
#[derive(Debug, Clone, PartialEq)]
enum Seen {
    /// The call goes through, with this context.
    Allowed(Value),
    /// 403.
    Forbidden,
    /// 401 (the invocation failed with exactly `Unauthorized`).
    Unauthorized,
}

/// IAM's resource match: `*` is any run of characters, `?` one character.
fn iam_match(pattern: &str, text: &str) -> bool {
    fn go(p: &[u8], t: &[u8]) -> bool {
        match p.split_first() {
            None => t.is_empty(),
            Some((b'*', rest)) => (0..=t.len()).any(|i| go(rest, &t[i..])),
            Some((b'?', rest)) => !t.is_empty() && go(rest, &t[1..]),
            Some((c, rest)) => t.first() == Some(c) && go(rest, &t[1..]),
        }
    }
    go(pattern.as_bytes(), text.as_bytes())
}

/// The resources of the policy's statements with `effect`.
fn resources(answer: &Value, effect: &str) -> Vec<String> {
    answer["policyDocument"]["Statement"]
        .as_array()
        .expect("a policy")
        .iter()
        .filter(|s| s["Effect"] == effect)
        .flat_map(|s| {
            assert_eq!(s["Action"], json!(["execute-api:Invoke"]));
            s["Resource"].as_array().unwrap().clone()
        })
        .map(|r| r.as_str().unwrap().to_owned())
        .collect()
}

/// API Gateway's evaluation of a policy for the call `arn`.
fn judge_policy(answer: &Value, arn: &str) -> Seen {
    assert_eq!(answer["policyDocument"]["Version"], "2012-10-17");
    if resources(answer, "Deny").iter().any(|r| iam_match(r, arn)) {
        return Seen::Forbidden;
    }
    if resources(answer, "Allow").iter().any(|r| iam_match(r, arn)) {
        return Seen::Allowed(answer["context"].clone());
    }
    Seen::Forbidden
}

fn judge(kind: EventKind, method: &str, path: &str, outcome: Outcome) -> Seen {
    match outcome {
        Outcome::Error(error) => {
            assert_eq!(error["errorMessage"], "Unauthorized", "{kind:?}: {error}");
            Seen::Unauthorized
        }
        Outcome::Response(answer) => match kind {
            EventKind::HttpApi => {
                if answer["isAuthorized"] == json!(true) {
                    Seen::Allowed(answer["context"].clone())
                } else {
                    assert_eq!(answer["isAuthorized"], json!(false), "{answer}");
                    Seen::Forbidden
                }
            }
            _ => judge_policy(&answer, &events::method_arn("prod", method, path)),
        },
    }
}

async fn call(
    runtime: &FakeRuntime,
    kind: EventKind,
    method: &str,
    path: &str,
    authorization: Option<&str>,
) -> Seen {
    let outcome = runtime
        .invoke(event(kind, method, path, authorization))
        .await;
    judge(kind, method, path, outcome)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_kind_of_event_is_allowed_denied_or_unauthorized_as_documented() {
    let auth = TokenService::start().await;
    let (id, secret) = auth.client("acme", "orders:read catalog:read").await;
    let token = auth.token_for(&id, &secret).await;
    let (_, key) = auth.signing_key().await;
    let now = chrono::Utc::now().timestamp();
    let expired = reworked(
        &token,
        |c| {
            c["exp"] = json!(now - 3600);
            c["iat"] = json!(now - 4200);
            c["nbf"] = json!(now - 4200);
        },
        Some(&key),
    );
    let tampered = reworked(
        &token,
        |c| c["scope"] = json!("catalog:read invoices:read orders:read"),
        None,
    );
    // The forgery is perfect but for `exp`: the same claims with a fresh `exp` are accepted.
    let resigned = reworked(&token, |c| c["jti"] = json!("resigned"), Some(&key));

    let runtime = FakeRuntime::start().await;
    let _function = authorizer(&runtime, &auth, &[]);
    let bearer = format!("Bearer {token}");
    let context =
        json!({ "client_id": id, "partner_id": "acme", "scope": "catalog:read orders:read" });

    for kind in KINDS {
        for (method, path) in [
            ("GET", "/v1/me"),
            ("GET", "/v1/orders"),
            ("GET", "/v1/orders/ord_1"),
        ] {
            assert_eq!(
                call(&runtime, kind, method, path, Some(&bearer)).await,
                Seen::Allowed(context.clone()),
                "{kind:?} {method} {path}"
            );
        }
        let lower = format!("bearer {token}");
        assert!(matches!(
            call(&runtime, kind, "GET", "/v1/me", Some(&lower)).await,
            Seen::Allowed(_)
        ));
        assert!(matches!(
            call(
                &runtime,
                kind,
                "GET",
                "/v1/me",
                Some(&format!("Bearer {resigned}"))
            )
            .await,
            Seen::Allowed(_)
        ));
        // A valid token without the route's scope, and routes that are not listed: 403.
        for (method, path) in [
            ("GET", "/v1/invoices"),
            ("GET", "/v1/invoices/inv_1"),
            ("GET", "/v1/products"),
            ("DELETE", "/v1/orders/ord_1"),
            ("GET", "/v1/orders/ord_1/lines"),
            ("GET", "/v1/me/"),
        ] {
            assert_eq!(
                call(&runtime, kind, method, path, Some(&bearer)).await,
                Seen::Forbidden,
                "{kind:?} {method} {path}"
            );
        }
        // No token, another scheme, a broken, expired or tampered token: 401.
        for (what, authorization) in [
            ("missing", None),
            ("empty bearer", Some("Bearer ".to_owned())),
            (
                "basic",
                Some(format!("Basic {}", b64(format!("{id}:{secret}")))),
            ),
            ("bare token", Some(token.clone())),
            ("garbage", Some("Bearer not-a-token".to_owned())),
            ("expired", Some(format!("Bearer {expired}"))),
            ("tampered", Some(format!("Bearer {tampered}"))),
        ] {
            assert_eq!(
                call(&runtime, kind, "GET", "/v1/me", authorization.as_deref()).await,
                Seen::Unauthorized,
                "{kind:?}: {what}"
            );
        }
    }

    // The principal is the client, and a REST answer names the call's own API and stage.
    let answer = runtime
        .invoke(event(
            EventKind::RestToken,
            "GET",
            "/v1/orders",
            Some(&bearer),
        ))
        .await
        .response();
    assert_eq!(answer["principalId"], json!(id));
    assert!(
        resources(&answer, "Allow")
            .iter()
            .all(|r| r.starts_with(&format!(
                "arn:aws:execute-api:{}:{}:{}/prod/GET/",
                events::REGION,
                events::ACCOUNT,
                events::API_ID
            ))),
        "{answer}"
    );
    // An event that is no authorizer event is an error, not a 401.
    let Outcome::Error(error) = runtime.invoke(HttpRequest::get("/v1/me").http_api()).await else {
        panic!("an HTTP event is refused");
    };
    assert_ne!(error["errorMessage"], "Unauthorized");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_rest_policy_allows_exactly_the_routes_of_the_tokens_scopes() {
    let auth = TokenService::start().await;
    let (id, secret) = auth.client("acme", "orders:read").await;
    let bearer = format!("Bearer {}", auth.token_for(&id, &secret).await);
    let runtime = FakeRuntime::start().await;
    let _function = authorizer(&runtime, &auth, &[]);
    let arn = |method: &str, path: &str| events::method_arn("prod", method, path);

    for kind in [EventKind::RestToken, EventKind::RestRequest] {
        // The policy answered for one call, then cached per token and applied by API Gateway to
        // the token's next calls on other routes: first after an allowed call, then after a
        // refused one.
        for (first, allowed) in [("/v1/orders", true), ("/v1/invoices/inv_1", false)] {
            let policy = runtime
                .invoke(event(kind, "GET", first, Some(&bearer)))
                .await
                .response();
            let context = json!({ "client_id": id, "partner_id": "acme", "scope": "orders:read" });
            let expected_first = if allowed {
                Seen::Allowed(context.clone())
            } else {
                Seen::Forbidden
            };
            assert_eq!(judge_policy(&policy, &arn("GET", first)), expected_first);
            for path in [
                "/v1/me",
                "/v1/orders",
                "/v1/orders/ord_1",
                "/v1/orders/ord_2",
            ] {
                assert_eq!(
                    judge_policy(&policy, &arn("GET", path)),
                    Seen::Allowed(context.clone()),
                    "{kind:?}, cached after {first}: {path}"
                );
            }
            for (method, path) in [
                ("GET", "/v1/invoices"),
                ("GET", "/v1/invoices/inv_2"),
                ("GET", "/v1/products"),
                ("POST", "/v1/orders"),
            ] {
                assert_eq!(
                    judge_policy(&policy, &arn(method, path)),
                    Seen::Forbidden,
                    "{kind:?}, cached after {first}: {method} {path}"
                );
            }
            let mut allowed_resources = resources(&policy, "Allow");
            allowed_resources.sort();
            assert_eq!(
                allowed_resources,
                [
                    arn("GET", "/v1/me"),
                    arn("GET", "/v1/orders"),
                    arn("GET", "/v1/orders/*"),
                ],
                "{kind:?}: every route orders:read allows, each as its own method ARN"
            );
            assert!(
                !allowed_resources.iter().any(|r| r.contains("invoices")),
                "{kind:?}: no invoices route is allowed"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_over_its_rate_limit_is_denied() {
    let auth = TokenService::start().await;
    let (id, secret) = auth.client("acme", "orders:read").await;
    let bearer = format!("Bearer {}", auth.token_for(&id, &secret).await);
    let runtime = FakeRuntime::start().await;
    let _function = authorizer(
        &runtime,
        &auth,
        &[
            ("RESOURCE_RATE_LIMIT_PER_SECOND", "1".to_owned()),
            ("RESOURCE_RATE_LIMIT_BURST", "1".to_owned()),
        ],
    );
    for kind in KINDS {
        // A second apart, each kind starts with a fresh budget; calls without a pause run out.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let mut seen = Vec::new();
        for _ in 0..10 {
            let outcome = runtime
                .invoke(event(kind, "GET", "/v1/orders", Some(&bearer)))
                .await;
            if let (EventKind::RestToken | EventKind::RestRequest, Outcome::Response(answer)) =
                (kind, &outcome)
                && judge_policy(answer, &events::method_arn("prod", "GET", "/v1/orders"))
                    == Seen::Forbidden
            {
                // Denied for the rate, not the route: nothing is allowed, the call is denied.
                assert!(resources(answer, "Allow").is_empty(), "{answer}");
            }
            seen.push(judge(kind, "GET", "/v1/orders", outcome));
        }
        assert!(matches!(seen[0], Seen::Allowed(_)), "{kind:?}: {seen:?}");
        assert!(seen.contains(&Seen::Forbidden), "{kind:?}: {seen:?}");
        assert!(!seen.contains(&Seen::Unauthorized), "{kind:?}: {seen:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_authorizer_starts_only_under_lambda_and_with_a_usable_route_table() {
    let run = |env: &[(&str, &str)]| {
        let mut command = Command::new(BINARY);
        command
            .arg("authorize")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .stdin(Stdio::null());
        for (name, value) in env {
            command.env(name, value);
        }
        command.output().expect("run resource-api authorize")
    };
    let outside = run(&[("RESOURCE_AUTHORIZER_ROUTES", ROUTES)]);
    assert!(!outside.status.success());
    let stderr = String::from_utf8_lossy(&outside.stderr);
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("only runs as an AWS Lambda function"),
        "{stderr}"
    );

    let runtime = FakeRuntime::start().await;
    let api = runtime.runtime_api();
    for (routes, named) in [
        (
            "GET /v1/me=,GET v1/orders=orders:read",
            "\"GET v1/orders=orders:read\"",
        ),
        ("GET /v1/me=,GET /v1/orders", "\"GET /v1/orders\""),
        ("", "RESOURCE_AUTHORIZER_ROUTES is empty"),
        (
            "GET /v1/orders/{id}=orders:read,GET /v1/orders/{id}/invoices=invoices:read",
            "\"GET /v1/orders/{id}=orders:read\"",
        ),
    ] {
        let refused = run(&[
            ("AWS_LAMBDA_RUNTIME_API", api.as_str()),
            ("RESOURCE_AUTHORIZER_ROUTES", routes),
        ]);
        assert!(!refused.status.success(), "{routes}");
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(stderr.contains(named), "{routes}: {stderr}");
    }
}

/// A certificate-bound token at the authorizer: allowed from a REQUEST authorizer event whose
/// request context holds its certificate; refused (`Unauthorized`) with another certificate,
/// without one, and always from a TOKEN authorizer, whose event carries no certificate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bound_token_is_authorized_only_with_its_certificate() {
    use test_support::pki::{Subject, self_signed};
    let auth = TokenService::start().await;
    let cert = self_signed(&Subject::cn("acme"), false);
    let token = auth.bound_token("acme", "orders:read", &cert).await;
    let runtime = FakeRuntime::start().await;
    let _function = authorizer(&runtime, &auth, &[]);
    let bearer = format!("Bearer {token}");
    let request = |pem: Option<&str>| {
        let request = HttpRequest::new("GET", "/v1/orders")
            .stage("prod")
            .header("Authorization", &bearer);
        match pem {
            Some(pem) => request.client_cert(pem),
            None => request,
        }
    };
    for (kind, event_of) in [
        (
            EventKind::RestRequest,
            events::rest_request_authorizer as fn(&HttpRequest) -> Value,
        ),
        (EventKind::HttpApi, events::http_api_authorizer),
    ] {
        let outcome = runtime
            .invoke(event_of(&request(Some(&cert.cert_pem))))
            .await;
        assert!(
            matches!(judge(kind, "GET", "/v1/orders", outcome), Seen::Allowed(_)),
            "{kind:?} with the certificate"
        );
        let other = self_signed(&Subject::cn("acme"), false);
        for pem in [None, Some(other.cert_pem.as_str())] {
            let outcome = runtime.invoke(event_of(&request(pem))).await;
            assert_eq!(
                judge(kind, "GET", "/v1/orders", outcome),
                Seen::Unauthorized,
                "{kind:?} {}",
                if pem.is_some() {
                    "another certificate"
                } else {
                    "no certificate"
                }
            );
        }
    }
    assert_eq!(
        call(
            &runtime,
            EventKind::RestToken,
            "GET",
            "/v1/orders",
            Some(&bearer)
        )
        .await,
        Seen::Unauthorized,
        "a TOKEN authorizer cannot see the certificate"
    );
}

/// The event of `kind` for `GET path` with `headers` (a TOKEN event carries the `Authorization`
/// value only).
fn event_with(kind: EventKind, path: &str, headers: &[(&str, &str)]) -> Value {
    let mut request = HttpRequest::new("GET", path).stage("prod");
    for (name, value) in headers {
        request = request.header(name, value);
    }
    match kind {
        EventKind::RestToken => {
            let authorization = headers
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case("authorization"))
                .map_or("", |(_, value)| *value);
            events::token_authorizer(authorization, &events::method_arn("prod", "GET", path))
        }
        EventKind::RestRequest => events::rest_request_authorizer(&request),
        EventKind::HttpApi => events::http_api_authorizer(&request),
    }
}

/// API keys at the authorizer (`RESOURCE_API_KEYS=true`), resolved at an introspection stub in
/// this process: allowed with the client's context from `Authorization: Bearer pak_…` (every
/// kind) or `X-API-Key` (REQUEST kinds), through one cache across invocations; refused like a
/// wrong token when wrong, malformed or beside another credential; and, when the token service
/// cannot be asked, an invocation error other than `Unauthorized` (API Gateway answers 500),
/// while a key already resolved keeps working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_are_authorized_like_tokens_and_an_outage_is_no_unauthorized() {
    use crate::introspection_stub::{CLIENT_ID, CLIENT_SECRET, IntrospectionStub};
    let auth = TokenService::start().await;
    let (id, secret) = auth.client("acme", "orders:read").await;
    let token = format!("Bearer {}", auth.token_for(&id, &secret).await);
    let stub = IntrospectionStub::start().await;
    let key = IntrospectionStub::new_key();
    stub.activate(&key, "cl_acme_key", "acme", "orders:read catalog:read");
    let runtime = FakeRuntime::start().await;
    let _function = authorizer(
        &runtime,
        &auth,
        &[
            ("RESOURCE_API_KEYS", "true".to_owned()),
            ("RESOURCE_INTROSPECTION_URL", stub.url.clone()),
            ("RESOURCE_INTROSPECTION_CLIENT_ID", CLIENT_ID.to_owned()),
            (
                "RESOURCE_INTROSPECTION_CLIENT_SECRET",
                CLIENT_SECRET.to_owned(),
            ),
        ],
    );
    let context = json!({ "client_id": "cl_acme_key", "partner_id": "acme", "scope": "catalog:read orders:read" });
    let invoke = |kind: EventKind, path: &'static str, headers: Vec<(&'static str, String)>| {
        let runtime = &runtime;
        async move {
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
            runtime.invoke(event_with(kind, path, &headers)).await
        }
    };
    let as_bearer = format!("Bearer {key}");
    for kind in KINDS {
        let mut forms = vec![vec![("Authorization", as_bearer.clone())]];
        if kind != EventKind::RestToken {
            forms.push(vec![("X-API-Key", key.clone())]);
        }
        for headers in forms {
            let outcome = invoke(kind, "/v1/orders", headers.clone()).await;
            assert_eq!(
                judge(kind, "GET", "/v1/orders", outcome),
                Seen::Allowed(context.clone()),
                "{kind:?} {headers:?}"
            );
            let outcome = invoke(kind, "/v1/invoices", headers.clone()).await;
            assert_eq!(
                judge(kind, "GET", "/v1/invoices", outcome),
                Seen::Forbidden,
                "{kind:?}: the key's client lacks invoices:read"
            );
        }
        // Tokens still work beside keys being on.
        let outcome = invoke(kind, "/v1/orders", vec![("Authorization", token.clone())]).await;
        assert!(matches!(
            judge(kind, "GET", "/v1/orders", outcome),
            Seen::Allowed(_)
        ));

        let wrong = format!("Bearer {}", IntrospectionStub::new_key());
        let mut refused = vec![
            ("wrong key", vec![("Authorization", wrong)]),
            (
                "malformed key",
                vec![("Authorization", "Bearer pak_x".to_owned())],
            ),
        ];
        if kind != EventKind::RestToken {
            refused.extend([
                (
                    "wrong X-API-Key",
                    vec![("X-API-Key", IntrospectionStub::new_key())],
                ),
                (
                    "a token and a key",
                    vec![("Authorization", token.clone()), ("X-API-Key", key.clone())],
                ),
                (
                    "a key in both headers",
                    vec![
                        ("Authorization", as_bearer.clone()),
                        ("X-API-Key", key.clone()),
                    ],
                ),
            ]);
        }
        if kind == EventKind::RestRequest {
            refused.push((
                "two X-API-Key fields",
                vec![("X-API-Key", key.clone()), ("X-API-Key", key.clone())],
            ));
        }
        for (what, headers) in refused {
            let outcome = invoke(kind, "/v1/orders", headers).await;
            assert_eq!(
                judge(kind, "GET", "/v1/orders", outcome),
                Seen::Unauthorized,
                "{kind:?}: {what}"
            );
        }
    }
    // One wrong bearer key per kind, one wrong X-API-Key per REQUEST kind; malformed: none.
    let wrong_keys = 3 + 2;
    assert_eq!(
        stub.calls(),
        1 + wrong_keys,
        "the valid key resolved once across every invocation, each wrong key once"
    );

    stub.fail(true);
    for kind in KINDS {
        let unknown = format!("Bearer {}", IntrospectionStub::new_key());
        let Outcome::Error(error) =
            invoke(kind, "/v1/orders", vec![("Authorization", unknown)]).await
        else {
            panic!("{kind:?}: an outage must fail the invocation");
        };
        assert_ne!(error["errorMessage"], "Unauthorized", "{kind:?}: {error}");
        assert_eq!(
            error["errorType"], "KeyLookupUnavailable",
            "{kind:?}: {error}"
        );
        let outcome = invoke(
            kind,
            "/v1/orders",
            vec![("Authorization", as_bearer.clone())],
        )
        .await;
        assert_eq!(
            judge(kind, "GET", "/v1/orders", outcome),
            Seen::Allowed(context.clone()),
            "{kind:?}: a resolved key keeps working"
        );
    }
}

/// With keys off (the default), a `pak_` bearer is refused as any bad token without a lookup,
/// and `X-API-Key` is not read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_keys_off_the_authorizer_refuses_keys_without_asking() {
    use crate::introspection_stub::{CLIENT_ID, CLIENT_SECRET, IntrospectionStub};
    let auth = TokenService::start().await;
    let stub = IntrospectionStub::start().await;
    let key = IntrospectionStub::new_key();
    stub.activate(&key, "cl_acme_key", "acme", "orders:read");
    let runtime = FakeRuntime::start().await;
    let _function = authorizer(
        &runtime,
        &auth,
        &[
            ("RESOURCE_INTROSPECTION_URL", stub.url.clone()),
            ("RESOURCE_INTROSPECTION_CLIENT_ID", CLIENT_ID.to_owned()),
            (
                "RESOURCE_INTROSPECTION_CLIENT_SECRET",
                CLIENT_SECRET.to_owned(),
            ),
        ],
    );
    let as_bearer = format!("Bearer {key}");
    for kind in KINDS {
        let outcome = runtime
            .invoke(event_with(
                kind,
                "/v1/orders",
                &[("Authorization", &as_bearer)],
            ))
            .await;
        assert_eq!(
            judge(kind, "GET", "/v1/orders", outcome),
            Seen::Unauthorized,
            "{kind:?}"
        );
        if kind != EventKind::RestToken {
            let outcome = runtime
                .invoke(event_with(kind, "/v1/orders", &[("X-API-Key", &key)]))
                .await;
            assert_eq!(
                judge(kind, "GET", "/v1/orders", outcome),
                Seen::Unauthorized,
                "{kind:?}"
            );
        }
    }
    assert_eq!(stub.calls(), 0);
}

/// The key settings' bad values stop the binary at start, from the environment, in one line
/// naming the setting (or the missing ones).
#[test]
fn bad_api_key_settings_stop_the_binary_with_a_one_line_error() {
    for (env, named) in [
        (
            vec![("RESOURCE_API_KEYS", "true")],
            "RESOURCE_INTROSPECTION_CLIENT_ID and RESOURCE_INTROSPECTION_CLIENT_SECRET",
        ),
        (
            vec![
                ("RESOURCE_API_KEYS", "true"),
                ("RESOURCE_INTROSPECTION_CLIENT_ID", "cl_api"),
            ],
            "needs RESOURCE_INTROSPECTION_CLIENT_SECRET",
        ),
        (vec![("RESOURCE_API_KEYS", "maybe")], "maybe"),
        (vec![("RESOURCE_API_KEY_CACHE", "0")], "1..=3600"),
        (vec![("RESOURCE_API_KEY_CACHE", "3601")], "1..=3600"),
    ] {
        let mut command = Command::new(BINARY);
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RESOURCE_BIND", "127.0.0.1:0")
            .env(
                "RESOURCE_DATABASE_URL",
                "sqlite:///nonexistent/dir/resource.db",
            )
            .stdin(Stdio::null());
        for (name, value) in &env {
            command.env(name, value);
        }
        let output = command.output().expect("run resource-api");
        assert!(!output.status.success(), "{env:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(named), "{env:?}: {stderr}");
        // The error is its first line (clap adds a pointer to `--help`).
        let first = stderr.lines().next().unwrap_or_default();
        assert!(first.contains(named), "{env:?}: {stderr}");
        if env.iter().any(|(name, _)| *name == "RESOURCE_API_KEYS")
            && output.status.code() == Some(1)
        {
            assert_eq!(stderr.trim_end().lines().count(), 1, "{env:?}: {stderr}");
        }
    }
}
