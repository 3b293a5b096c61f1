//! Routes marked for online checking ask the token service (introspection) about each token, so a
//! revoked access token stops working there within the short cache period, while other routes
//! stay purely local.

use crate::common;
use crate::common::system;

use std::time::Duration;

use common::{Backend, http, spawn_auth_server, test_db};
use reqwest::StatusCode;
use system::{resource_settings, spawn_resource_with};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_token_is_refused_on_online_routes_only() {
    let auth = spawn_auth_server(Backend::Sqlite).await.unwrap();
    let (api_client, api_secret) = auth
        .client_with("acme", "introspect", |c| c.introspect_allowed = true)
        .await;
    let db = test_db(Backend::Sqlite).await.unwrap();
    let mut settings = resource_settings(&auth, &db);
    settings.introspection = Some(resource_api::config::IntrospectionSettings {
        url: auth.url("/oauth2/introspect"),
        client_id: api_client.client_id.to_string(),
        client_secret: zeroize::Zeroizing::new(api_secret.expose().to_owned()),
        cache: Duration::from_secs(1),
        routes: vec!["/v1/invoices".into(), "/v1/invoices/{id}".into()],
    });
    let api = spawn_resource_with(db, settings).await;
    api.wait_ready().await;

    let (client, secret) = auth.client("acme", "orders:read invoices:read").await;
    let token = common::token(&auth, client.client_id.as_str(), secret.expose()).await;
    let status = async |path: &str, token: String| common::get(&api, path, &token).await;
    assert_eq!(
        status("/v1/invoices", token.clone()).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        status("/v1/invoices/inv_00001", token.clone())
            .await
            .status(),
        StatusCode::OK
    );

    let revoked = http()
        .post(auth.url("/oauth2/revoke"))
        .basic_auth(client.client_id.as_str(), Some(secret.expose()))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let refused = status("/v1/invoices", token.clone()).await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert!(
        refused.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
    // A purely local route does not ask: the token still works there until it expires.
    assert_eq!(
        status("/v1/orders", token.clone()).await.status(),
        StatusCode::OK
    );

    // With the token service gone, online routes fail closed; local routes go on.
    let fresh = common::token(&auth, client.client_id.as_str(), secret.expose()).await;
    auth.stop().await;
    let unavailable = status("/v1/invoices", fresh.clone()).await;
    assert_eq!(unavailable.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        unavailable.headers()["content-type"],
        "application/problem+json"
    );
    assert_eq!(status("/v1/orders", fresh).await.status(), StatusCode::OK);
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_misspelt_online_route_stops_the_start() {
    let auth = spawn_auth_server(Backend::Sqlite).await.unwrap();
    let db = test_db(Backend::Sqlite).await.unwrap();
    let mut settings = resource_settings(&auth, &db);
    settings.introspection = Some(resource_api::config::IntrospectionSettings {
        url: auth.url("/oauth2/introspect"),
        client_id: "cl_x".into(),
        client_secret: zeroize::Zeroizing::new("pcs_x".into()),
        cache: Duration::from_secs(1),
        routes: vec!["/v1/invoice".into()],
    });
    let err = match resource_api::Application::build(settings).await {
        Ok(_) => panic!("started with a misspelt route"),
        Err(err) => err.to_string(),
    };
    assert!(
        err.contains("/v1/invoice") && err.contains("not a route"),
        "{err}"
    );
    auth.stop().await;
}
