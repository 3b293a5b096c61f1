//! What `cargo run --release` prints works: each seeded partner's demo client gets a token and
//! reaches exactly the routes its scopes allow; a second start keeps the clients and renews secrets.

use crate::common;
use crate::common::system;

use common::Backend;
use partner_platform::{DEMO_PARTNERS, curl_session, ensure_demo_client};
use reqwest::StatusCode;
use system::spawn_system;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_clients_work_and_a_second_start_renews_their_secrets() {
    let (auth, api) = spawn_system(Backend::Sqlite).await.unwrap();
    let db = &auth.state.db;
    let mut first = Vec::new();
    for (partner, scopes) in DEMO_PARTNERS {
        let (client, secret) = ensure_demo_client(db, partner, scopes, "partner-api")
            .await
            .unwrap();
        let session = curl_session(
            &auth.url("/oauth2/token"),
            &api.base_url,
            &client,
            &secret,
            &["/v1/orders"],
        );
        assert!(session.contains(secret.expose()) && session.contains(client.client_id.as_str()));
        assert!(session.contains(&format!("{}/v1/orders", api.base_url)));
        let token = common::token(&auth, client.client_id.as_str(), secret.expose()).await;
        let me: serde_json::Value = common::get(&api, "/v1/me", &token)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(me["partner_id"], partner);
        let orders = common::get(&api, "/v1/orders", &token).await.status();
        let expected = if scopes.contains("orders:read") {
            StatusCode::OK
        } else {
            StatusCode::FORBIDDEN
        };
        assert_eq!(orders, expected, "{partner}");
        first.push((client, secret));
    }
    for ((partner, scopes), (client, old_secret)) in DEMO_PARTNERS.into_iter().zip(&first) {
        let (again, new_secret) = ensure_demo_client(db, partner, scopes, "partner-api")
            .await
            .unwrap();
        assert_eq!(again.client_id, client.client_id);
        assert!(
            !common::token(&auth, again.client_id.as_str(), new_secret.expose())
                .await
                .is_empty()
        );
        let old = common::token_response(
            &auth,
            client.client_id.as_str(),
            old_secret.expose(),
            common::CLIENT_CREDENTIALS,
        )
        .await;
        assert_eq!(old.status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(db.list_clients().await.unwrap().len(), DEMO_PARTNERS.len());
    api.stop().await;
    auth.stop().await;
}

#[test]
fn the_launcher_accepts_every_setting_of_both_services() {
    use clap::{CommandFactory, Parser};
    partner_platform::LauncherArgs::command().debug_assert();
    let args = partner_platform::LauncherArgs::try_parse_from([
        "partner-platform",
        "--auth-bind",
        "127.0.0.1:9000",
        "--resource-bind",
        "127.0.0.1:9001",
        "--auth-issuer",
        "http://a",
        "--resource-issuer",
        "http://a",
        "--resource-rate-limit-burst",
        "7",
    ])
    .unwrap();
    assert_eq!(args.serve.bind.port(), 9000);
    assert_eq!(args.resource.bind.port(), 9001);
    assert_eq!(args.resource.rate_limit_burst.get(), 7);
    let defaults = partner_platform::LauncherArgs::try_parse_from(["partner-platform"]).unwrap();
    assert_eq!(defaults.serve.bind.port(), 8080);
    assert_eq!(defaults.resource.bind.port(), 8081);
}
