//! Refresh tokens, revocation (RFC 7009), introspection (RFC 7662) and client-secret rotation,
//! over real HTTP on SQLite and PostgreSQL.

use crate::common;

use std::time::Duration;

use common::{Backend, TestAuth, http, spawn_auth_server, spawn_auth_with, test_db};
use reqwest::StatusCode;
use serde_json::Value;

on_both_backends!(
    refresh_tokens_rotate_on_every_use,
    reusing_a_spent_refresh_token_kills_the_whole_family,
    refresh_may_narrow_the_scope_but_never_widen_it,
    refresh_tokens_are_bound_to_their_client,
    refresh_errors_are_rfc_6749_errors,
    revocation_of_each_kind_of_token,
    introspection_answers,
    disabling_a_client_or_revoking_its_tokens_cuts_its_refresh_tokens,
    a_rotated_secret_keeps_working_for_its_grace_period_only,
    fifty_concurrent_refreshes_of_one_token_give_exactly_one_success,
    expired_refresh_tokens_are_refused_and_purged,
);

async fn refresh(
    auth: &TestAuth,
    id: &str,
    secret: &str,
    token: &str,
    scope: Option<&str>,
) -> (StatusCode, Value) {
    let mut form = vec![("grant_type", "refresh_token"), ("refresh_token", token)];
    if let Some(scope) = scope {
        form.push(("scope", scope));
    }
    common::status_and_json(common::token_response(auth, id, secret, &form).await).await
}

fn refresh_token_of(body: &Value) -> String {
    body["refresh_token"]
        .as_str()
        .expect("a refresh token")
        .to_owned()
}

async fn refresh_tokens_rotate_on_every_use(backend: Backend) {
    let Some(auth) = spawn_auth_server(backend).await else {
        return;
    };
    let (client, secret) = auth.client("acme", "orders:read catalog:read").await;
    let (id, s) = (client.client_id.as_str(), secret.expose());
    let first = common::token_grant(&auth, id, s).await;
    let r1 = refresh_token_of(&first);
    assert!(r1.starts_with("pcr_") && r1.len() >= 47);
    let (status, second) = refresh(&auth, id, s, &r1, None).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    let r2 = refresh_token_of(&second);
    assert_ne!(r1, r2);
    assert_ne!(first["access_token"], second["access_token"]);
    assert_eq!(second["scope"], "catalog:read orders:read");
    assert_eq!(second["token_type"], "Bearer");
    let (status, third) = refresh(&auth, id, s, &r2, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_ne!(refresh_token_of(&third), r2);
    auth.stop().await;
}

async fn reusing_a_spent_refresh_token_kills_the_whole_family(backend: Backend) {
    let Some(auth) = spawn_auth_server(backend).await else {
        return;
    };
    let (client, secret) = auth.client("acme", "orders:read").await;
    let (id, s) = (client.client_id.as_str(), secret.expose());
    let r1 = refresh_token_of(&common::token_grant(&auth, id, s).await);
    let (_, body) = refresh(&auth, id, s, &r1, None).await;
    let r2 = refresh_token_of(&body);
    // Another family of the same client is not affected.
    let other_family = refresh_token_of(&common::token_grant(&auth, id, s).await);

    let (status, body) = refresh(&auth, id, s, &r1, None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");
    let (status, body) = refresh(&auth, id, s, &r2, None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant")),
        "the newest token died too"
    );
    let (status, _) = refresh(&auth, id, s, &other_family, None).await;
    assert_eq!(status, StatusCode::OK);
    let trail = auth.state.db.list_audit(Some(id), 50).await.unwrap();
    assert!(trail.iter().any(|r| r.action == "refresh.reuse_detected"));
    auth.stop().await;
}

async fn refresh_may_narrow_the_scope_but_never_widen_it(backend: Backend) {
    let Some(auth) = spawn_auth_server(backend).await else {
        return;
    };
    let (client, secret) = auth
        .client("globex", "orders:read catalog:read invoices:read")
        .await;
    let (id, s) = (client.client_id.as_str(), secret.expose());
    let (_, body) = common::status_and_json(
        common::token_response(
            &auth,
            id,
            s,
            &[
                ("grant_type", "client_credentials"),
                ("scope", "orders:read catalog:read"),
            ],
        )
        .await,
    )
    .await;
    let r1 = refresh_token_of(&body);
    let (status, body) = refresh(&auth, id, s, &r1, Some("invoices:read")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_scope")),
        "widening is refused"
    );
    // The refused request spent nothing: the token still works, narrowed.
    let (status, body) = refresh(&auth, id, s, &r1, Some("orders:read")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["scope"], "orders:read");
    // The family keeps its granted scope: the next refresh without scope gets all of it again.
    let (_, body) = refresh(&auth, id, s, &refresh_token_of(&body), None).await;
    assert_eq!(body["scope"], "catalog:read orders:read");
    auth.stop().await;
}

async fn refresh_tokens_are_bound_to_their_client(backend: Backend) {
    let Some(auth) = spawn_auth_server(backend).await else {
        return;
    };
    let (a, a_secret) = auth.client("acme", "orders:read").await;
    let (b, b_secret) = auth.client("globex", "orders:read").await;
    let r = refresh_token_of(
        &common::token_grant(&auth, a.client_id.as_str(), a_secret.expose()).await,
    );
    let (status, body) = refresh(&auth, b.client_id.as_str(), b_secret.expose(), &r, None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    // The owner is not punished for someone else presenting its token.
    let (status, _) = refresh(&auth, a.client_id.as_str(), a_secret.expose(), &r, None).await;
    assert_eq!(status, StatusCode::OK);
    // And refreshing needs the client's secret: the token alone is not enough.
    let (status, body) = refresh(&auth, a.client_id.as_str(), "pcs_wrong", &r, None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client"))
    );
    auth.stop().await;
}

async fn refresh_errors_are_rfc_6749_errors(backend: Backend) {
    let Some(auth) = spawn_auth_server(backend).await else {
        return;
    };
    let (client, secret) = auth.client("acme", "orders:read").await;
    let (id, s) = (client.client_id.as_str(), secret.expose());
    let (status, body) = common::status_and_json(
        common::token_response(&auth, id, s, &[("grant_type", "refresh_token")]).await,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request"))
    );
    let (status, body) = refresh(&auth, id, s, "pcr_made-up", None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    let (status, body) = refresh(&auth, id, s, &"x".repeat(5000), None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    let r = refresh_token_of(&common::token_grant(&auth, id, s).await);
    let (status, body) = refresh(&auth, id, s, &r, Some("orders:read  x")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_scope"))
    );

    // A client without refresh tokens gets none, and may not use the grant.
    let (plain, plain_secret) = auth
        .client_with("initech", "orders:read", |c| c.refresh_enabled = false)
        .await;
    let body = common::token_grant(&auth, plain.client_id.as_str(), plain_secret.expose()).await;
    assert!(body.get("refresh_token").is_none());
    let (status, body) = refresh(
        &auth,
        plain.client_id.as_str(),
        plain_secret.expose(),
        &r,
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("unauthorized_client"))
    );
    auth.stop().await;
}

async fn post_form(
    auth: &TestAuth,
    path: &str,
    id: &str,
    secret: &str,
    form: &[(&str, &str)],
) -> (StatusCode, Value, reqwest::header::HeaderMap) {
    let response = http()
        .post(auth.url(path))
        .basic_auth(id, Some(secret))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    (
        status,
        response.json().await.unwrap_or(Value::Null),
        headers,
    )
}

async fn introspect(auth: &TestAuth, id: &str, secret: &str, token: &str) -> Value {
    let (status, body, headers) =
        post_form(auth, "/oauth2/introspect", id, secret, &[("token", token)]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(headers["cache-control"], "no-store");
    body
}

async fn revocation_of_each_kind_of_token(backend: Backend) {
    let Some(auth) = spawn_auth_server(backend).await else {
        return;
    };
    let (client, secret) = auth.client("acme", "orders:read").await;
    let (id, s) = (client.client_id.as_str(), secret.expose());
    let (rs, rs_secret) = auth
        .client_with("acme", "introspect:self", |c| c.introspect_allowed = true)
        .await;
    let (rs_id, rs_s) = (rs.client_id.as_str(), rs_secret.expose());

    // Refresh token (with its hint): its family is gone, successor included.
    let r1 = refresh_token_of(&common::token_grant(&auth, id, s).await);
    let (_, body) = refresh(&auth, id, s, &r1, None).await;
    let r2 = refresh_token_of(&body);
    let (status, _, headers) = post_form(
        &auth,
        "/oauth2/revoke",
        id,
        s,
        &[("token", &r2), ("token_type_hint", "refresh_token")],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(
        refresh(&auth, id, s, &r2, None).await.0,
        StatusCode::BAD_REQUEST
    );

    // Access token (with and without a hint): its jti is recorded, introspection says inactive.
    for hint in [Some("access_token"), None, Some("unknown_hint")] {
        let access = common::token_grant(&auth, id, s).await["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(
            introspect(&auth, rs_id, rs_s, &access).await["active"],
            true
        );
        let mut form = vec![("token", access.as_str())];
        if let Some(hint) = hint {
            form.push(("token_type_hint", hint));
        }
        assert_eq!(
            post_form(&auth, "/oauth2/revoke", id, s, &form).await.0,
            StatusCode::OK
        );
        assert_eq!(
            introspect(&auth, rs_id, rs_s, &access).await["active"],
            false,
            "hint {hint:?}"
        );
    }

    // Unknown tokens and other clients' tokens: 200, no effect.
    assert_eq!(
        post_form(&auth, "/oauth2/revoke", id, s, &[("token", "nonsense")])
            .await
            .0,
        StatusCode::OK
    );
    let (other, other_secret) = auth.client("globex", "orders:read").await;
    let theirs = common::token_grant(&auth, other.client_id.as_str(), other_secret.expose()).await;
    let their_refresh = refresh_token_of(&theirs);
    let their_access = theirs["access_token"].as_str().unwrap();
    for token in [their_refresh.as_str(), their_access] {
        assert_eq!(
            post_form(&auth, "/oauth2/revoke", id, s, &[("token", token)])
                .await
                .0,
            StatusCode::OK
        );
    }
    assert_eq!(
        introspect(&auth, rs_id, rs_s, their_access).await["active"],
        true
    );
    assert_eq!(
        refresh(
            &auth,
            other.client_id.as_str(),
            other_secret.expose(),
            &their_refresh,
            None
        )
        .await
        .0,
        StatusCode::OK
    );

    // The endpoint needs client authentication and a token.
    let (status, body, headers) =
        post_form(&auth, "/oauth2/revoke", id, "pcs_wrong", &[("token", "x")]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client"))
    );
    assert!(
        headers["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic")
    );
    let (status, body, _) = post_form(
        &auth,
        "/oauth2/revoke",
        id,
        s,
        &[("token_type_hint", "access_token")],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request"))
    );
    auth.stop().await;
}

async fn introspection_answers(backend: Backend) {
    let Some(db) = test_db(backend).await else {
        return;
    };
    let mut settings = TestAuth::settings(&db);
    settings.jwks_max_age = 1;
    let auth = spawn_auth_with(db, settings).await;
    let (client, secret) = auth.client("acme", "orders:read catalog:read").await;
    let (id, s) = (client.client_id.as_str(), secret.expose());
    let (rs, rs_secret) = auth
        .client_with("acme", "none:none", |c| c.introspect_allowed = true)
        .await;
    let (rs_id, rs_s) = (rs.client_id.as_str(), rs_secret.expose());
    let body = common::token_grant(&auth, id, s).await;
    let access = body["access_token"].as_str().unwrap().to_owned();

    // A client without the permission is refused.
    let (status, answer, _) =
        post_form(&auth, "/oauth2/introspect", id, s, &[("token", &access)]).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("unauthorized_client"))
    );
    let (status, _, _) = post_form(
        &auth,
        "/oauth2/introspect",
        rs_id,
        "pcs_wrong",
        &[("token", &access)],
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let active = introspect(&auth, rs_id, rs_s, &access).await;
    assert_eq!(active["active"], true);
    assert_eq!(active["client_id"], id);
    assert_eq!(active["scope"], "catalog:read orders:read");
    assert_eq!(active["partner_id"], "acme");
    assert_eq!(active["token_type"], "Bearer");
    assert!(active["exp"].as_i64().unwrap() > auth_server::now());
    // A refresh token is described to its own client only.
    let own = refresh_token_of(&body);
    assert_eq!(introspect(&auth, rs_id, rs_s, &own).await["active"], false);
    for garbage in ["", "nonsense", "a.b.c", &access[..access.len() - 4]] {
        if garbage.is_empty() {
            continue;
        }
        assert_eq!(
            introspect(&auth, rs_id, rs_s, garbage).await["active"],
            false,
            "{garbage}"
        );
    }

    // Expired: a client whose tokens live one second.
    let (short, short_secret) = auth
        .client_with("acme", "orders:read", |c| c.access_token_ttl = Some(1))
        .await;
    let brief = common::token_grant(&auth, short.client_id.as_str(), short_secret.expose()).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(
        introspect(&auth, rs_id, rs_s, &brief).await["active"],
        false,
        "expired"
    );

    // Addressed to another audience than the asking resource server's.
    let (foreign, foreign_secret) = auth
        .client_with("acme", "orders:read", |c| {
            c.audiences = vec!["reports-api".into()]
        })
        .await;
    let elsewhere = common::token_grant(&auth, foreign.client_id.as_str(), foreign_secret.expose())
        .await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        introspect(&auth, rs_id, rs_s, &elsewhere).await["active"],
        false,
        "foreign audience"
    );

    // The owning client is disabled.
    auth_server::admin::set_disabled(&auth.state.db, id, true)
        .await
        .unwrap();
    auth.sync_clients().await;
    assert_eq!(
        introspect(&auth, rs_id, rs_s, &access).await["active"],
        false,
        "disabled client"
    );
    auth_server::admin::set_disabled(&auth.state.db, id, false)
        .await
        .unwrap();
    assert_eq!(
        introspect(&auth, rs_id, rs_s, &access).await["active"],
        true
    );

    // The signing key is revoked: its tokens are inactive as soon as the server reloads its keys.
    let master = keys::MasterKey::load(&auth.db.master_key_path()).unwrap();
    let kid = auth.state.keys.get().active().unwrap().kid().to_owned();
    auth_server::signing::revoke_key(&auth.state.db, &master, &kid)
        .await
        .unwrap();
    let mut inactive = false;
    for _ in 0..50 {
        if introspect(&auth, rs_id, rs_s, &access).await["active"] == false {
            inactive = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(inactive, "tokens of a revoked key are inactive");
    auth.stop().await;
}

async fn disabling_a_client_or_revoking_its_tokens_cuts_its_refresh_tokens(backend: Backend) {
    let Some(auth) = spawn_auth_server(backend).await else {
        return;
    };
    let (client, secret) = auth.client("acme", "orders:read").await;
    let (id, s) = (client.client_id.as_str(), secret.expose());
    let r = refresh_token_of(&common::token_grant(&auth, id, s).await);
    auth_server::admin::set_disabled(&auth.state.db, id, true)
        .await
        .unwrap();
    auth.sync_clients().await;
    assert_eq!(
        refresh(&auth, id, s, &r, None).await.0,
        StatusCode::UNAUTHORIZED,
        "a disabled client cannot authenticate"
    );
    auth_server::admin::set_disabled(&auth.state.db, id, false)
        .await
        .unwrap();
    let (status, body) = refresh(&auth, id, s, &r, None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant")),
        "disabling revoked it"
    );

    // `tokens revoke --client` revokes without disabling.
    let r = refresh_token_of(&common::token_grant(&auth, id, s).await);
    let count = auth_server::admin::revoke_client_tokens(&auth.state.db, id)
        .await
        .unwrap();
    assert_eq!(count, 1);
    assert_eq!(
        refresh(&auth, id, s, &r, None).await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        common::token_grant(&auth, id, s).await["token_type"],
        "Bearer",
        "the client itself still works"
    );

    // Deleting a client deletes its refresh tokens with it.
    let before = auth.state.db.count_refresh_tokens().await.unwrap();
    auth_server::admin::delete_client(&auth.state.db, id)
        .await
        .unwrap();
    auth.sync_clients().await;
    assert!(auth.state.db.count_refresh_tokens().await.unwrap() < before);
    auth.stop().await;
}

async fn a_rotated_secret_keeps_working_for_its_grace_period_only(backend: Backend) {
    let Some(auth) = spawn_auth_server(backend).await else {
        return;
    };
    let (client, old) = auth.client("acme", "orders:read").await;
    let id = client.client_id.as_str();
    let status = |secret: String| {
        let auth = &auth;
        async move {
            common::status_and_json(
                common::token_response(auth, id, &secret, common::CLIENT_CREDENTIALS).await,
            )
            .await
            .0
        }
    };
    // Judged by the clock, not by how many requests fit in the grace period: the old secret's
    // answer must arrive before the grace ends, and the refusal is asked a second after it.
    let (new, grace_until) = auth_server::admin::rotate_secret(&auth.state.db, id, 5, None)
        .await
        .unwrap();
    let inside = status(old.expose().to_owned()).await;
    assert!(
        common::unix_time() < grace_until as f64,
        "one request took longer than the 5 s grace period"
    );
    assert_eq!(inside, StatusCode::OK, "inside the grace period");
    assert_ne!(new.expose(), old.expose());
    assert_eq!(status(new.expose().to_owned()).await, StatusCode::OK);
    common::sleep_until_unix(grace_until as f64 + 1.0).await;
    assert_eq!(
        status(old.expose().to_owned()).await,
        StatusCode::UNAUTHORIZED,
        "after the grace period"
    );
    assert_eq!(status(new.expose().to_owned()).await, StatusCode::OK);

    // Grace 0 (a leaked secret): the previous secret stops within the reload interval.
    let (newer, _) = auth_server::admin::rotate_secret(&auth.state.db, id, 0, None)
        .await
        .unwrap();
    auth.sync_clients().await;
    assert_eq!(
        status(new.expose().to_owned()).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(status(newer.expose().to_owned()).await, StatusCode::OK);
    let trail = auth.state.db.list_audit(Some(id), 20).await.unwrap();
    assert_eq!(
        trail
            .iter()
            .filter(|r| r.action == "client.rotate_secret")
            .count(),
        2
    );
    assert!(
        auth_server::admin::rotate_secret(&auth.state.db, "cl_nobody", 0, None)
            .await
            .is_err()
    );
    auth.stop().await;
}

async fn fifty_concurrent_refreshes_of_one_token_give_exactly_one_success(backend: Backend) {
    // On PostgreSQL, two token-service instances share the database and split the requests.
    let Some(db) = test_db(backend).await else {
        return;
    };
    let settings = TestAuth::settings(&db);
    let a = spawn_auth_with(db, settings).await;
    let b = if backend == Backend::Postgres {
        let shared = common::TestDb::sharing(&a.db);
        let settings = TestAuth::settings(&shared);
        Some(spawn_auth_with(shared, settings).await)
    } else {
        None
    };
    let (client, secret) = a.client("acme", "orders:read").await;
    let (id, s) = (client.client_id.to_string(), secret.expose().to_owned());
    let token = refresh_token_of(&common::token_grant(&a, &id, &s).await);
    let urls: Vec<String> = (0..50)
        .map(|i| match (&b, i % 2) {
            (Some(b), 1) => b.url("/oauth2/token"),
            _ => a.url("/oauth2/token"),
        })
        .collect();
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(50));
    let mut tasks = Vec::new();
    for url in urls {
        let (id, s, token, barrier) = (id.clone(), s.clone(), token.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            let request = http().post(url).basic_auth(&id, Some(&s)).form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", token.as_str()),
            ]);
            barrier.wait().await;
            let response = request.send().await.unwrap();
            let status = response.status();
            let body: Value = response.json().await.unwrap();
            (status, body)
        }));
    }
    let mut ok = 0;
    for task in tasks {
        let (status, body) = task.await.unwrap();
        match status {
            StatusCode::OK => ok += 1,
            StatusCode::BAD_REQUEST => assert_eq!(body["error"], "invalid_grant"),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(ok, 1, "exactly one of 50 concurrent refreshes succeeds");
    if let Some(b) = b {
        b.stop().await;
    }
    a.stop().await;
}

async fn expired_refresh_tokens_are_refused_and_purged(backend: Backend) {
    let Some(db) = test_db(backend).await else {
        return;
    };
    let mut settings = TestAuth::settings(&db);
    settings.refresh_token_ttl = 1;
    let auth = spawn_auth_with(db, settings).await;
    let (client, secret) = auth.client("acme", "orders:read").await;
    let (id, s) = (client.client_id.as_str(), secret.expose());
    let r = refresh_token_of(&common::token_grant(&auth, id, s).await);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (status, body) = refresh(&auth, id, s, &r, None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    assert_eq!(auth.state.db.count_refresh_tokens().await.unwrap(), 1);
    let (purged, _) = auth
        .state
        .db
        .purge_expired_tokens(auth_server::now())
        .await
        .unwrap();
    assert_eq!(purged, 1);
    assert_eq!(
        auth.state.db.count_refresh_tokens().await.unwrap(),
        0,
        "the table does not keep expired tokens"
    );
    auth.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_tokens_are_not_stored_in_plaintext() {
    let auth = spawn_auth_server(Backend::Sqlite).await.unwrap();
    let (client, secret) = auth.client("acme", "orders:read").await;
    let (id, s) = (client.client_id.as_str(), secret.expose());
    let r1 = refresh_token_of(&common::token_grant(&auth, id, s).await);
    let (_, body) = refresh(&auth, id, s, &r1, None).await;
    let r2 = refresh_token_of(&body);
    let db = auth.stop().await;
    let path = db.sqlite_path().unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    if let Ok(wal) = std::fs::read(format!("{}-wal", path.display())) {
        bytes.extend(wal);
    }
    for token in [&r1, &r2] {
        assert!(
            !bytes.windows(token.len()).any(|w| w == token.as_bytes()),
            "refresh token in plaintext"
        );
        let body = &token.as_bytes()[4..];
        assert!(!bytes.windows(body.len()).any(|w| w == body));
        let hash = auth_server::secret::hash_secret(token.as_bytes());
        assert!(bytes.windows(32).any(|w| w == hash), "its hash is stored");
    }
}
