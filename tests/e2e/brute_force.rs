//! Guessing secrets is slowed to a crawl per source address and per (client, address) pair, and
//! never locks the real partner out from its own addresses.

use crate::common;

use common::{Backend, ClientAuth, spawn_auth_server};
use reqwest::StatusCode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_wrong_secrets_are_refused_without_locking_out_the_partner() {
    let auth = spawn_auth_server(Backend::Sqlite).await.unwrap();
    let (client, secret) = auth.client("acme", "orders:read").await;
    let id = client.client_id.as_str();
    let attacker = common::http_from("127.0.0.1");
    let partner = common::http_from("127.0.0.2");

    let began = std::time::Instant::now();
    let (mut unauthorized, mut limited) = (0, 0);
    for i in 0..1000 {
        let response = common::token_response_via(
            &attacker,
            &auth,
            ClientAuth::Basic,
            id,
            &format!("pcs_guess_{i}"),
            common::CLIENT_CREDENTIALS,
        )
        .await;
        match response.status() {
            StatusCode::UNAUTHORIZED => unauthorized += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                limited += 1;
                let retry: u64 = response.headers()["retry-after"]
                    .to_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                assert!((1..=30).contains(&retry), "Retry-After {retry}");
                assert_eq!(response.headers()["cache-control"], "no-store");
            }
            other => panic!("attempt {i}: {other}"),
        }
    }
    eprintln!(
        "1000 wrong secrets: {unauthorized} checked (401), {limited} refused unchecked (429)"
    );
    // Ten failures per client and address, then one more per 30 s of the time that really
    // passed (on a slow machine the thousand requests take longer, and earn more checks).
    let most = 11 + began.elapsed().as_secs() / 30;
    assert!(
        (10..=most).contains(&unauthorized),
        "only the first few guesses are even checked: {unauthorized} in {:?}",
        began.elapsed()
    );
    assert_eq!(unauthorized + limited, 1000);

    // Even the right secret is refused from the locked-out address...
    assert_eq!(
        common::token_response_via(
            &attacker,
            &auth,
            ClientAuth::Basic,
            id,
            secret.expose(),
            common::CLIENT_CREDENTIALS
        )
        .await
        .status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    // ...while the partner's own machines, elsewhere, are not affected at all.
    for _ in 0..5 {
        assert_eq!(
            common::token_response_via(
                &partner,
                &auth,
                ClientAuth::Basic,
                id,
                secret.expose(),
                common::CLIENT_CREDENTIALS
            )
            .await
            .status(),
            StatusCode::OK
        );
    }

    auth.state.audit.flush().await;
    let trail = auth.state.db.list_audit(Some(id), 2000).await.unwrap();
    let lockouts: Vec<_> = trail
        .iter()
        .filter(|r| r.action == "client.lockout")
        .collect();
    assert!(!lockouts.is_empty(), "the lockout is audited");
    assert!(
        lockouts
            .iter()
            .all(|r| r.source_ip.as_deref() == Some("127.0.0.1"))
    );
    assert!(
        trail
            .iter()
            .filter(|r| r.action == "client.auth_failed")
            .count() as u64
            <= unauthorized
    );
    auth.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guessing_across_many_client_ids_locks_out_the_source_address() {
    let auth = spawn_auth_server(Backend::Sqlite).await.unwrap();
    let (client, secret) = auth.client("globex", "orders:read").await;
    let scanner = common::http_from("127.0.0.3");
    let began = std::time::Instant::now();
    let mut statuses = Vec::new();
    for i in 0..150 {
        statuses.push(
            common::token_response_via(
                &scanner,
                &auth,
                ClientAuth::Basic,
                &format!("cl_guess{i}"),
                "pcs_x",
                common::CLIENT_CREDENTIALS,
            )
            .await
            .status(),
        );
    }
    let checked = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    // A hundred failures per address at once, then one more per second of the time that really
    // passed.
    let most = 101 + began.elapsed().as_secs() as usize;
    assert!(
        (100..=most).contains(&checked),
        "per-address budget: {checked} in {:?}",
        began.elapsed()
    );
    assert!(
        statuses[..100]
            .iter()
            .all(|s| *s == StatusCode::UNAUTHORIZED)
    );
    assert!(statuses[100..].contains(&StatusCode::TOO_MANY_REQUESTS));
    // Another address is unaffected.
    let other = common::http_from("127.0.0.4");
    assert_eq!(
        common::token_response_via(
            &other,
            &auth,
            ClientAuth::Basic,
            client.client_id.as_str(),
            secret.expose(),
            common::CLIENT_CREDENTIALS
        )
        .await
        .status(),
        StatusCode::OK
    );
    auth.state.audit.flush().await;
    let trail = auth.state.db.list_audit(None, 1000).await.unwrap();
    assert!(
        trail
            .iter()
            .any(|r| r.action == "client.lockout" && r.detail.contains("\"source\""))
    );
    auth.stop().await;
}
