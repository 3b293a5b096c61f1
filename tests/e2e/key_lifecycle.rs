//! The signing-key lifecycle end to end: routine rotations under load with zero failed requests,
//! several token-service instances on one PostgreSQL database, emergency revocation, purge,
//! master-key rotation, the runbook's recovery from a lost master key, RS256 keys (imported, and
//! generated for verifiers that accept only RSA, such as API Gateway's JWT authorizer), and the
//! JWKS cache horizon.

use crate::common;

use crate::common::system;
use common::kid_of;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::{Backend, TestAuth, force_rotate, http, spawn_auth_with, test_db};
use keys::{Algorithm, MasterKey};
use reqwest::StatusCode;
use serde_json::Value;
use system::spawn_resource_api;

on_both_backends!(a_lost_master_key_is_recovered_as_the_runbook_says);

/// Runs an admin command in-process exactly as `auth-server ARGS` parses and runs it, against
/// the test's database and the master key file at `master_key_file`.
async fn admin_cli(
    auth: &TestAuth,
    master_key_file: &std::path::Path,
    args: &[&str],
) -> anyhow::Result<Value> {
    use clap::Parser;
    let mut argv = vec![
        "auth-server",
        "--json",
        "--auth-database-url",
        &auth.db.url,
        "--auth-master-key-file",
        master_key_file.to_str().unwrap(),
    ];
    argv.extend_from_slice(args);
    let cli = auth_server::cli::Cli::try_parse_from(argv)?;
    let out = auth_server::cli::run_admin(&cli.store, cli.command, cli.json).await?;
    Ok(serde_json::from_str(&out)?)
}

/// docs/RUNBOOK.md, "Lost master key", step by step: the master key file is gone, so no stored
/// private key can be opened. `keys rotate --force` with the file missing creates a new master
/// key and makes a fresh active and pending key under it; running servers pick it up without a
/// restart, partners' new tokens verify at the partner API, tokens signed before keep verifying
/// until they expire, a restart works, and so does a later master-key rotation.
async fn a_lost_master_key_is_recovered_as_the_runbook_says(backend: Backend) {
    let Some(db) = test_db(backend).await else {
        return;
    };
    let settings = TestAuth::settings(&db);
    let auth = spawn_auth_with(db, settings.clone()).await;
    let api = spawn_resource_api(Backend::Sqlite, &auth, |_| {})
        .await
        .unwrap();
    api.wait_ready().await;
    let (client, secret) = auth.client("acme", "orders:read").await;
    let id = client.client_id.as_str();
    let before = common::token(&auth, id, secret.expose()).await;
    let me = async |token: String| common::get(&api, "/v1/me", &token).await.status();
    assert_eq!(me(before.clone()).await, StatusCode::OK);
    // An API key, and the resource server that asks about keys.
    let (key_client, old_key) = auth.api_key_client("acme", "orders:read").await;
    let (introspector, introspector_secret) = auth
        .client_with("platform", "introspect", |c| c.introspect_allowed = true)
        .await;
    let key_active = async |server: &TestAuth, key: &str| -> bool {
        let answer: Value = common::http()
            .post(server.url("/oauth2/introspect"))
            .basic_auth(
                introspector.client_id.as_str(),
                Some(introspector_secret.expose()),
            )
            .form(&[("token", key)])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        answer["active"] == true
    };
    assert!(key_active(&auth, &old_key).await);

    // The master key is lost.
    let path = auth.db.master_key_path();
    std::fs::remove_file(&path).unwrap();
    // Without --force nothing changes, and the error names the missing file.
    let refused = admin_cli(&auth, &path, &["keys", "rotate"])
        .await
        .unwrap_err();
    assert!(
        format!("{refused:#}").contains("does not exist"),
        "{refused:#}"
    );
    assert!(!path.exists());

    // The runbook: `auth-server keys rotate --force`.
    let rotation = admin_cli(&auth, &path, &["keys", "rotate", "--force"])
        .await
        .unwrap();
    let new_active = rotation["active"].as_str().unwrap().to_owned();
    assert_eq!(rotation["retired"].as_str(), Some(kid_of(&before).as_str()));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the new master key file is owner-only");
    }
    let trail = auth.state.db.list_audit(None, 10).await.unwrap();
    assert!(trail.iter().any(|r| r.action == "key.recover"));

    // The API-key hash key was sealed under the lost master key: every key stopped working, and
    // a key issued anew under the new master key works at the running server at once.
    assert!(!key_active(&auth, &old_key).await);
    let reissued = admin_cli(
        &auth,
        &path,
        &[
            "client",
            "rotate-secret",
            key_client.client_id.as_str(),
            "--grace",
            "0",
        ],
    )
    .await
    .unwrap();
    let new_key = reissued["api_key"].as_str().unwrap().to_owned();
    assert!(key_active(&auth, &new_key).await);

    // The running server re-reads the file and signs with the new key, and the partner API
    // accepts its tokens; the token signed before the loss keeps working until it expires.
    let after = common::token_signed_by(&auth, id, secret.expose(), &new_active).await;
    assert_eq!(me(after).await, StatusCode::OK);
    assert_eq!(me(before.clone()).await, StatusCode::OK);

    // Running it again is a routine forced rotation under the new key, not another recovery.
    let again = admin_cli(&auth, &path, &["keys", "rotate", "--force"])
        .await
        .unwrap();
    assert_eq!(again["retired"].as_str(), Some(new_active.as_str()));

    // A restart with the new file works.
    let db = auth.stop().await;
    let restarted = spawn_auth_with(db, settings).await;
    let token = common::token(&restarted, id, secret.expose()).await;
    assert_eq!(me(token).await, StatusCode::OK);
    assert!(key_active(&restarted, &new_key).await);

    // The old keys can never be opened again; a master-key rotation leaves those (retired) as
    // they are and re-seals the others.
    let next = restarted.db.dir.path().join("master-2.key");
    let rewrap = admin_cli(
        &restarted,
        &path,
        &[
            "keys",
            "rewrap",
            "--new-master-key-file",
            next.to_str().unwrap(),
        ],
    )
    .await
    .unwrap();
    assert_eq!(rewrap["rewrapped"], 3, "{rewrap}");
    api.stop().await;
    restarted.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forced_rotation_with_the_wrong_master_key_changes_nothing() {
    let auth = common::spawn_auth_server(Backend::Sqlite).await.unwrap();
    let before = auth.state.db.list_signing_keys().await.unwrap();
    let wrong = auth.db.dir.path().join("someone-elses.key");
    MasterKey::load_or_create(&wrong).unwrap();
    let err = admin_cli(&auth, &wrong, &["keys", "rotate", "--force"])
        .await
        .unwrap_err();
    let err = format!("{err:#}");
    assert!(
        err.contains("cannot open") && err.contains("RUNBOOK"),
        "{err}"
    );
    assert_eq!(auth.state.db.list_signing_keys().await.unwrap(), before);
    auth.stop().await;
}

/// A token service whose keys rotate quickly: JWKS max-age 1 s, key reload every 200 ms.
pub(crate) async fn fast_auth(backend: Backend) -> Option<TestAuth> {
    let db = test_db(backend).await?;
    let mut settings = TestAuth::settings(&db);
    settings.jwks_max_age = 1;
    Some(spawn_auth_with(db, settings).await)
}

/// Rotates as an operator would: `keys rotate`, waiting out a "too early" refusal.
pub(crate) async fn rotate_when_safe(auth: &TestAuth) -> auth_server::signing::Rotation {
    let master = MasterKey::load(&auth.db.master_key_path()).unwrap();
    let policy = auth.state.config.key_policy();
    common::eventually(Duration::from_secs(60), "rotation became safe", || {
        let (master, policy) = (&master, &policy);
        async move {
            let rotation = auth_server::signing::rotate_key(
                &auth.state.db,
                master,
                policy,
                Some(Algorithm::ES256),
                false,
            )
            .await;
            match rotation {
                Ok(rotation) => Some(rotation),
                Err(err) => {
                    assert!(err.to_string().contains("too early"), "{err:#}");
                    None
                }
            }
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_rotations_under_load_fail_no_request() {
    let auth = fast_auth(Backend::Sqlite).await.unwrap();
    let api = spawn_resource_api(Backend::Sqlite, &auth, |_| {})
        .await
        .unwrap();
    api.wait_ready().await;

    let stop = Arc::new(AtomicBool::new(false));
    let api_requests = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let kids = Arc::new(std::sync::Mutex::new(BTreeSet::<String>::new()));
    let mut workers = Vec::new();
    for partner in ["acme", "globex", "initech", "acme"] {
        let (client, secret) = auth.client(partner, "orders:read catalog:read").await;
        let (token_url, api_url) = (auth.url("/oauth2/token"), api.url("/v1/orders?limit=5"));
        let (stop, api_requests, failures, kids) = (
            stop.clone(),
            api_requests.clone(),
            failures.clone(),
            kids.clone(),
        );
        workers.push(tokio::spawn(async move {
            let http = http();
            while !stop.load(Ordering::Relaxed) {
                let response = http
                    .post(&token_url)
                    .basic_auth(client.client_id.as_str(), Some(secret.expose()))
                    .form(common::CLIENT_CREDENTIALS)
                    .send()
                    .await;
                let token = match response {
                    Ok(r) if r.status() == StatusCode::OK => {
                        r.json::<Value>().await.unwrap()["access_token"]
                            .as_str()
                            .unwrap()
                            .to_owned()
                    }
                    Ok(r) => {
                        failures
                            .lock()
                            .unwrap()
                            .push(format!("token: {}", r.status()));
                        continue;
                    }
                    Err(e) => {
                        failures.lock().unwrap().push(format!("token: {e}"));
                        continue;
                    }
                };
                kids.lock().unwrap().insert(kid_of(&token));
                for _ in 0..10 {
                    match http.get(&api_url).bearer_auth(&token).send().await {
                        Ok(r) if r.status() == StatusCode::OK => {}
                        Ok(r) => failures.lock().unwrap().push(format!(
                            "api: {} with kid {}",
                            r.status(),
                            kid_of(&token)
                        )),
                        Err(e) => failures.lock().unwrap().push(format!("api: {e}")),
                    }
                    api_requests.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }

    let mut active = vec![auth.state.keys.get().active().unwrap().kid().to_owned()];
    for _ in 0..3 {
        let rotation = rotate_when_safe(&auth).await;
        assert_eq!(
            rotation.retired.as_deref(),
            active.last().map(String::as_str)
        );
        active.push(rotation.active);
    }
    // Let every instance and cache catch up with the last rotation while requests go on, and
    // make sure the run covers at least 2,000 partner-API requests.
    tokio::time::sleep(Duration::from_secs(2)).await;
    while api_requests.load(Ordering::Relaxed) < 2000 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.await.unwrap();
    }
    let failures = failures.lock().unwrap().clone();
    assert!(
        failures.is_empty(),
        "{} failed requests, first: {:?}",
        failures.len(),
        failures.first()
    );
    let seen = kids.lock().unwrap().clone();
    for kid in &active {
        assert!(seen.contains(kid), "no token was signed by {kid}");
    }
    eprintln!(
        "rotation under load: {} partner-API requests, {} keys in turn, 0 failures",
        api_requests.load(Ordering::Relaxed),
        active.len()
    );
    api.stop().await;
    auth.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emergency_revocation_cuts_the_old_key_and_the_promoted_key_works_at_once() {
    let auth = fast_auth(Backend::Sqlite).await.unwrap();
    let api = spawn_resource_api(Backend::Sqlite, &auth, |_| {})
        .await
        .unwrap();
    api.wait_ready().await;
    let (client, secret) = auth.client("acme", "orders:read").await;
    let id = client.client_id.as_str();
    let old_token = common::token(&auth, id, secret.expose()).await;
    let compromised = kid_of(&old_token);
    assert_eq!(
        common::get(&api, "/v1/me", &old_token).await.status(),
        StatusCode::OK
    );

    let master = MasterKey::load(&auth.db.master_key_path()).unwrap();
    let revocation = auth_server::signing::revoke_key(&auth.state.db, &master, &compromised)
        .await
        .unwrap();
    assert_eq!(revocation.was, keys::KeyState::Active);
    let promoted = revocation.active.clone().unwrap();

    // The token service signs with the promoted key within its reload interval, and the partner
    // API accepts those tokens at once: the promoted key was published (and cached) as pending.
    let token = common::token_signed_by(&auth, id, secret.expose(), &promoted).await;
    assert_eq!(kid_of(&token), promoted);
    // Judged by the cache's content, not by a count of fetches: with max-age 1 s its periodic
    // refresh may run at any moment, and more often on a slow machine.
    assert!(
        api.state.verifier.jwks().contains(&promoted),
        "the promoted key was cached before its first token arrived"
    );
    assert_eq!(
        common::get(&api, "/v1/me", &token).await.status(),
        StatusCode::OK
    );

    // The revoked key is gone from the JWKS at once, and the API refuses its tokens as soon as
    // its cached JWKS (max-age 1 s here) is refreshed.
    let jwks: Value = common::get_json(auth.url("/.well-known/jwks.json")).await;
    assert!(
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["kid"] != compromised.as_str())
    );
    let began = std::time::Instant::now();
    common::eventually(
        Duration::from_secs(30),
        "the revoked key still verifies",
        || {
            let (api, old_token) = (&api, &old_token);
            async move {
                let status = common::get(api, "/v1/me", old_token).await.status();
                (status == StatusCode::UNAUTHORIZED).then_some(())
            }
        },
    )
    .await;
    eprintln!(
        "revoked key refused by the partner API after {:?}",
        began.elapsed()
    );
    api.stop().await;
    auth.stop().await;
}

/// Pretends a retired key was retired long ago (time travel in the test database).
async fn age_retired_keys(auth: &TestAuth, seconds: i64) {
    let url = auth.db.url.clone();
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    sqlx::query("UPDATE signing_keys SET retired_at = retired_at - $1 WHERE state = 'retired'")
        .bind(seconds)
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retired_keys_are_purged_only_after_their_tokens_expire() {
    let auth = common::spawn_auth_server(Backend::Sqlite).await.unwrap();
    let policy = auth.state.config.key_policy();
    let purge = auth_server::signing::purge_keys(&auth.state.db, &policy)
        .await
        .unwrap();
    assert!(
        purge.purged.is_empty() && purge.next_purge_at.is_none(),
        "nothing to purge yet"
    );

    let rotation = force_rotate(&auth, Algorithm::ES256).await;
    let retired = rotation.retired.unwrap();
    let purge = auth_server::signing::purge_keys(&auth.state.db, &policy)
        .await
        .unwrap();
    assert!(purge.purged.is_empty(), "its tokens may still be alive");
    let next = purge.next_purge_at.unwrap();
    assert!(
        next >= auth_server::now() + 600,
        "not before the access-token lifetime has passed"
    );

    // Once the lifetime, the leeway and the cache horizon (the max-age, 300 s, by default) have
    // passed, the server's own maintenance purges it.
    age_retired_keys(&auth, 1000).await;
    common::eventually(
        Duration::from_secs(30),
        "the retired key was not purged",
        || {
            let db = &auth.state.db;
            let retired = &retired;
            async move {
                let states = db.signing_key_states().await.unwrap();
                states.iter().all(|(kid, _)| kid != retired).then_some(())
            }
        },
    )
    .await;
    let trail = auth.state.db.list_audit(None, 20).await.unwrap();
    assert!(
        trail
            .iter()
            .any(|r| r.action == "key.purge" && r.actor == "server" && r.detail.contains(&retired))
    );
    auth.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rewrapped_key_store_opens_only_with_the_new_master_key() {
    let auth = common::spawn_auth_server(Backend::Sqlite).await.unwrap();
    force_rotate(&auth, Algorithm::EdDSA).await;
    let (client, secret) = auth.client("acme", "orders:read").await;
    let old_master = MasterKey::load(&auth.db.master_key_path()).unwrap();
    let new_path = auth.db.dir.path().join("new-master.key");
    let new_master = MasterKey::load_or_create(&new_path).unwrap().key;
    let count = auth_server::signing::rewrap_keys(&auth.state.db, &old_master, &new_master)
        .await
        .unwrap();
    let rows = auth.state.db.list_signing_keys().await.unwrap();
    assert_eq!(count, rows.len());
    assert_eq!(count, 3);
    for row in &rows {
        assert!(
            row.sealed().open(&new_master).is_ok(),
            "{} opens with the new key",
            row.kid
        );
        assert!(
            row.sealed().open(&old_master).is_err(),
            "the old key opens nothing"
        );
    }
    // A rewrap with the wrong current key changes nothing.
    let stranger = MasterKey::generate().unwrap();
    let err = auth_server::signing::rewrap_keys(&auth.state.db, &stranger, &new_master)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("cannot open"), "{err}");

    // The running server goes on signing with the key it opened at start.
    assert!(
        !common::token(&auth, client.client_id.as_str(), secret.expose())
            .await
            .is_empty()
    );
    // Replacing the file in place: the running server re-reads it at the next key change.
    std::fs::copy(&new_path, auth.db.master_key_path()).unwrap();
    let rotation = force_rotate(&auth, Algorithm::ES256).await;
    let token = common::token_signed_by(
        &auth,
        client.client_id.as_str(),
        secret.expose(),
        &rotation.active,
    )
    .await;
    assert_eq!(
        kid_of(&token),
        rotation.active,
        "the running server uses keys sealed under the new file"
    );

    // A restart with the new file works; with the old one it stops with a clear error.
    let settings = TestAuth::settings(&auth.db);
    let db = auth.stop().await;
    std::fs::write(
        db.master_key_path(),
        old_master.to_file_contents().as_bytes(),
    )
    .unwrap();
    let err = match auth_server::Application::build(settings.clone()).await {
        Ok(_) => panic!("started with the old master key"),
        Err(err) => format!("{err:#}"),
    };
    assert!(err.contains("master key cannot open"), "{err}");
    std::fs::copy(&new_path, db.master_key_path()).unwrap();
    let restarted = spawn_auth_with(db, settings).await;
    assert!(
        !common::token(&restarted, client.client_id.as_str(), secret.expose())
            .await
            .is_empty()
    );
    restarted.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_imported_rsa_key_signs_rs256_tokens_the_partner_api_accepts() {
    let auth = common::spawn_auth_server(Backend::Sqlite).await.unwrap();
    let api = spawn_resource_api(Backend::Sqlite, &auth, |_| {})
        .await
        .unwrap();
    api.wait_ready().await;
    let master = MasterKey::load(&auth.db.master_key_path()).unwrap();
    let pem = include_str!("../../testdata/rsa-2048-test-only.pem");
    let kid = auth_server::signing::import_key(&auth.state.db, &master, Algorithm::RS256, pem)
        .await
        .unwrap();
    let rotation = force_rotate(&auth, Algorithm::ES256).await;
    assert_eq!(rotation.active, kid, "the imported key was the pending key");
    let (client, secret) = auth.client("globex", "catalog:read").await;
    let token =
        common::token_signed_by(&auth, client.client_id.as_str(), secret.expose(), &kid).await;
    let header: Value = common::header_of(&token);
    assert_eq!(header["alg"], "RS256");
    assert_eq!(
        common::get(&api, "/v1/products", &token).await.status(),
        StatusCode::OK
    );
    let jwks: Value = common::get_json(auth.url("/.well-known/jwks.json")).await;
    let rsa = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .unwrap()
        .clone();
    assert_eq!(rsa["kty"], "RSA");
    assert!(rsa.get("d").is_none() && rsa.get("p").is_none() && rsa.get("q").is_none());
    // The same key cannot be imported twice, and a garbage PEM is refused.
    assert!(
        auth_server::signing::import_key(&auth.state.db, &master, Algorithm::RS256, pem)
            .await
            .is_err()
    );
    assert!(
        auth_server::signing::import_key(&auth.state.db, &master, Algorithm::RS256, "nope")
            .await
            .is_err()
    );
    api.stop().await;
    auth.stop().await;
}

/// The public RSA modulus of a JWK, in bits (leading zero bits not counted).
fn modulus_bits(jwk: &Value) -> usize {
    use base64::Engine;
    let n = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(jwk["n"].as_str().expect("an RSA JWK has n"))
        .unwrap();
    let first = n.iter().position(|&b| b != 0).unwrap();
    (n.len() - first) * 8 - n[first].leading_zeros() as usize
}

/// What API Gateway's JWT authorizer does with a token, as far as it can be done here: it knows
/// only the issuer, reads `{issuer}/.well-known/openid-configuration` for `jwks_uri`, takes the
/// RSA keys of that set (HTTP APIs accept no other), and checks the signature with the key the
/// token's `kid` names. The issuer's host (`ISSUER`) is not where the test server listens, so the
/// path of each URL is taken to the server.
async fn verify_like_a_gateway(auth: &TestAuth, token: &str) -> Result<(), String> {
    use jsonwebtoken::{DecodingKey, Validation, decode, jwk::JwkSet};
    let discovery: Value = common::get_json(auth.url("/.well-known/openid-configuration")).await;
    assert_eq!(discovery["issuer"], common::ISSUER);
    let jwks_path = discovery["jwks_uri"]
        .as_str()
        .and_then(|uri| uri.strip_prefix(common::ISSUER))
        .expect("jwks_uri under the issuer");
    let set: JwkSet = common::get_json(auth.url(jwks_path)).await;
    let kid = kid_of(token);
    let jwk = set
        .keys
        .iter()
        .filter(|k| matches!(k.algorithm, jsonwebtoken::jwk::AlgorithmParameters::RSA(_)))
        .find(|k| k.common.key_id.as_deref() == Some(kid.as_str()))
        .ok_or_else(|| format!("no RSA key {kid} in the set"))?;
    let key = DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
    let mut validation = Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_issuer(&[common::ISSUER]);
    validation.set_audience(&["partner-api"]);
    decode::<Value>(token, &key, &validation)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// `auth-server keys rotate --alg RS256`, as API Gateway needs it: the server generates the RSA
/// key itself (no PEM), publishes it as pending, the next rotation (without --alg) makes it sign
/// and keeps RS256 for its successor, and its tokens verify at the partner API and with nothing
/// but the issuer's discovery document.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generated_rsa_key_signs_tokens_the_partner_api_and_a_gateway_accept() {
    keys::install_crypto_provider();
    let auth = common::spawn_auth_server(Backend::Sqlite).await.unwrap();
    let api = spawn_resource_api(Backend::Sqlite, &auth, |_| {})
        .await
        .unwrap();
    api.wait_ready().await;
    let (client, secret) = auth.client("globex", "catalog:read").await;
    let (id, secret) = (client.client_id.as_str(), secret.expose());
    let es_token = common::token(&auth, id, secret).await;
    assert_eq!(common::header_of(&es_token)["alg"], "ES256");
    let master_file = auth.db.master_key_path();
    let rotated = admin_cli(
        &auth,
        &master_file,
        &["keys", "rotate", "--alg", "RS256", "--force"],
    )
    .await
    .unwrap();
    assert_eq!(rotated["alg"], "RS256");
    let rsa_kid = rotated["pending"].as_str().unwrap().to_owned();
    let jwk = common::eventually(Duration::from_secs(30), "the RSA key published", || {
        let (auth, rsa_kid) = (&auth, &rsa_kid);
        async move {
            let jwks: Value = common::get_json(auth.url("/.well-known/jwks.json")).await;
            jwks["keys"]
                .as_array()
                .unwrap()
                .iter()
                .find(|k| k["kid"] == rsa_kid.as_str())
                .cloned()
        }
    })
    .await;
    assert_eq!(jwk["kty"], "RSA");
    assert_eq!(jwk["alg"], "RS256");
    assert_eq!(jwk["e"], "AQAB");
    assert!(modulus_bits(&jwk) >= 2048, "{jwk}");
    assert!(jwk.get("d").is_none() && jwk.get("p").is_none() && jwk.get("q").is_none());

    // A routine rotation, with no --alg: the RSA key signs, and the next pending key is RSA too.
    let rotated = admin_cli(&auth, &master_file, &["keys", "rotate", "--force"])
        .await
        .unwrap();
    assert_eq!(rotated["active"], rsa_kid.as_str());
    assert_eq!(rotated["alg"], "RS256");
    let rows = auth.state.db.list_signing_keys().await.unwrap();
    assert!(
        rows.iter()
            .filter(|r| r.state != keys::KeyState::Retired)
            .all(|r| r.alg == Algorithm::RS256),
        "{rows:?}"
    );

    let token = common::token_signed_by(&auth, id, secret, &rsa_kid).await;
    assert_eq!(common::header_of(&token)["alg"], "RS256");
    assert_eq!(
        common::get(&api, "/v1/products", &token).await.status(),
        StatusCode::OK
    );
    verify_like_a_gateway(&auth, &token).await.unwrap();
    // The ES256 key that signed before is still published (retired), and the partner API still
    // accepts its token; a gateway that knows only RSA keys would not.
    assert_eq!(
        common::get(&api, "/v1/products", &es_token).await.status(),
        StatusCode::OK
    );
    let refused = verify_like_a_gateway(&auth, &es_token).await.unwrap_err();
    assert!(refused.contains("no RSA key"), "{refused}");
    api.stop().await;
    auth.stop().await;
}

/// Scheduled rotation (`AUTH_KEY_ROTATION_INTERVAL`) keeps the algorithm of the pending key it
/// promotes: once an RS256 key is pending, every key after it is RS256 too, so a deployment
/// behind an RSA-only gateway stays on RSA without anyone passing --alg again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_rotation_keeps_an_rs256_deployment_on_rs256() {
    let db = test_db(Backend::Sqlite).await.unwrap();
    let mut settings = TestAuth::settings(&db);
    settings.jwks_max_age = 1;
    settings.key_rotation_interval = Some(Duration::from_secs(2));
    let auth = spawn_auth_with(db, settings).await;
    let rsa = force_rotate(&auth, Algorithm::RS256).await.pending;
    let rows = common::eventually(
        Duration::from_secs(60),
        "no scheduled rotation promoted the RSA key",
        || {
            let (db, rsa) = (&auth.state.db, &rsa);
            async move {
                let rows = db.list_signing_keys().await.unwrap();
                rows.iter()
                    .any(|r| r.kid == *rsa && r.state != keys::KeyState::Pending)
                    .then_some(rows)
            }
        },
    )
    .await;
    let current: Vec<_> = rows
        .iter()
        .filter(|r| r.state != keys::KeyState::Retired)
        .collect();
    assert_eq!(current.len(), 2, "{rows:?}");
    assert!(
        current.iter().all(|r| r.alg == Algorithm::RS256),
        "{rows:?}"
    );
    let trail = auth.state.db.list_audit(None, 50).await.unwrap();
    assert!(
        trail
            .iter()
            .any(|r| r.action == "key.rotate" && r.actor == "server (scheduled)"),
        "{trail:?}"
    );
    auth.stop().await;
}

/// With `--auth-jwks-cache-horizon 7200` (API Gateway may cache the key set for two hours), a
/// pending key published longer than the max-age (300 s) but not the horizon is not promoted:
/// the rotation is refused as too early and nothing changes. Without the horizon, the same
/// rotation goes ahead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_is_refused_until_the_cache_horizon_has_passed() {
    let auth = common::spawn_auth_server(Backend::Sqlite).await.unwrap();
    let master_file = auth.db.master_key_path();
    auth.db.age_pending_key(900).await;
    let before = auth.state.db.list_signing_keys().await.unwrap();
    let pending = before
        .iter()
        .find(|r| r.state == keys::KeyState::Pending)
        .unwrap()
        .clone();
    assert!(
        pending.created_at + 300 < auth_server::now(),
        "past the max-age"
    );

    let err = admin_cli(
        &auth,
        &master_file,
        &["--auth-jwks-cache-horizon", "7200", "keys", "rotate"],
    )
    .await
    .unwrap_err();
    match err.downcast_ref::<auth_server::signing::RotationRefused>() {
        Some(auth_server::signing::RotationRefused::TooEarly {
            pending: kid, wait, ..
        }) => {
            assert_eq!(kid, &pending.kid);
            // 7200 s, plus the CLI's reload interval (5 s) and slack, less the 900 s passed.
            assert!((6290..=6310).contains(wait), "{err}");
        }
        other => panic!("expected TooEarly, got {other:?}: {err:#}"),
    }
    assert_eq!(auth.state.db.list_signing_keys().await.unwrap(), before);

    // The horizon counts from publication, whatever the max-age: still too early at 2 hours less
    // a minute, with a max-age of one second.
    auth.db.age_pending_key(7200 - 900 - 60).await;
    let err = admin_cli(
        &auth,
        &master_file,
        &[
            "keys",
            "rotate",
            "--auth-jwks-max-age",
            "1",
            "--auth-jwks-cache-horizon",
            "7200",
        ],
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            err.downcast_ref::<auth_server::signing::RotationRefused>(),
            Some(auth_server::signing::RotationRefused::TooEarly { .. })
        ),
        "{err:#}"
    );
    // Once the horizon has passed, it goes ahead.
    auth.db.age_pending_key(120).await;
    let rotated = admin_cli(
        &auth,
        &master_file,
        &["keys", "rotate", "--auth-jwks-cache-horizon", "7200"],
    )
    .await
    .unwrap();
    assert_eq!(rotated["active"], pending.kid.as_str());
    auth.stop().await;
}

/// Two token services on one database (PostgreSQL under CI), as several instances behind a load
/// balancer would run.
async fn two_instances(rotation_interval: Option<Duration>) -> Option<(TestAuth, TestAuth)> {
    let db = test_db(Backend::Postgres).await?;
    let mut settings = TestAuth::settings(&db);
    settings.jwks_max_age = 1;
    settings.key_rotation_interval = rotation_interval;
    let first = spawn_auth_with(db, settings.clone()).await;
    let second_db = common::TestDb::sharing(&first.db);
    let mut second_settings = TestAuth::settings(&second_db);
    second_settings.jwks_max_age = settings.jwks_max_age;
    second_settings.key_rotation_interval = settings.key_rotation_interval;
    let second = spawn_auth_with(second_db, second_settings).await;
    Some((first, second))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cli_rotation_reaches_every_instance_on_one_postgres_database() {
    let Some((a, b)) = two_instances(None).await else {
        return;
    };
    let (client, secret) = a.client("acme", "orders:read").await;
    let id = client.client_id.as_str();
    let before = kid_of(&common::token(&b, id, secret.expose()).await);
    assert_eq!(
        before,
        kid_of(&common::token(&a, id, secret.expose()).await)
    );
    let rotation = force_rotate(&a, Algorithm::ES256).await;
    let began = std::time::Instant::now();
    for instance in [&a, &b] {
        common::eventually(
            Duration::from_secs(30),
            "an instance missed the rotation",
            || {
                let (active, secret) = (&rotation.active, &secret);
                async move {
                    let token = common::token(instance, id, secret.expose()).await;
                    (kid_of(&token) == *active).then_some(())
                }
            },
        )
        .await;
    }
    eprintln!(
        "both instances signed with the new key after {:?}",
        began.elapsed()
    );
    b.stop().await;
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_rotation_happens_exactly_once_across_instances() {
    let interval = Duration::from_secs(3);
    let Some((a, b)) = two_instances(Some(interval)).await else {
        return;
    };
    let (client, secret) = a.client("acme", "orders:read").await;
    let id = client.client_id.as_str();
    let first = kid_of(&common::token(&a, id, secret.expose()).await);
    // The first rotation is due after 3 s, and safe once the pending key has been published for
    // the max-age plus the reload interval (about 4 s): wait for it.
    let began = std::time::Instant::now();
    let rotated = common::eventually(Duration::from_secs(60), "no scheduled rotation", || {
        let db = &a.state.db;
        async move {
            // The trail lists the newest first; the first rotation is the oldest one in it.
            let trail = db.list_audit(None, 50).await.unwrap();
            trail.into_iter().rfind(|r| r.action == "key.rotate")
        }
    })
    .await;
    let rotated_after = began.elapsed();
    // Both instances were due at the same moment and kept checking; exactly one rotated. Let the
    // other's checks run, then count by the trail's own clock: the next rotation cannot be due
    // before a full interval after this one, so any other rotation stamped earlier would be a
    // double rotation, however long this test took to look.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let trail = a.state.db.list_audit(None, 100).await.unwrap();
    let rotations: Vec<_> = trail
        .iter()
        .filter(|r| r.action == "key.rotate" && r.at < rotated.at + interval.as_secs() as i64)
        .collect();
    assert_eq!(rotations.len(), 1, "rotations: {rotations:?}");
    assert_eq!(rotations[0].actor, "server (scheduled)");
    let states = a.state.db.signing_key_states().await.unwrap();
    assert!(states.contains(&(first.clone(), keys::KeyState::Retired)));
    // Each instance signs with the active key once it has reloaded (every 200 ms); a later
    // scheduled rotation may move the key on meanwhile, so the active key is read each time.
    for instance in [&a, &b] {
        common::eventually(
            Duration::from_secs(30),
            "an instance kept an old key",
            || {
                let secret = secret.expose();
                async move {
                    let states = instance.state.db.signing_key_states().await.unwrap();
                    let active = states
                        .iter()
                        .find(|(_, s)| *s == keys::KeyState::Active)
                        .unwrap()
                        .0
                        .clone();
                    let token = common::token(instance, id, secret).await;
                    (kid_of(&token) == active).then_some(())
                }
            },
        )
        .await;
    }
    eprintln!("scheduled rotation after {rotated_after:?}; one rotation across two instances");
    b.stop().await;
    a.stop().await;
}
