//! `cargo run --release`: the token service and the partner API on the embedded default (SQLite),
//! with a demo client per seeded partner.

use clap::Parser;
use partner_platform::{DEMO_PARTNERS, LauncherArgs, curl_session, ensure_demo_client};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = LauncherArgs::parse();
    edge::logging::init(args.log.log_format, "info");
    let auth = auth_server::Application::build(auth_server::Settings::new(args.store, args.serve)?)
        .await?;
    let api = resource_api::Application::build(resource_api::Settings::new(args.resource)?).await?;
    let state = auth.state().clone();
    let token_url = format!("http://{}/oauth2/token", auth.local_addr());
    let api_url = format!("http://{}", api.local_addr());

    println!();
    println!(
        "Token service: http://{}   (keys: /.well-known/jwks.json)",
        auth.local_addr()
    );
    println!("Partner API:   {api_url}");
    println!("Demo clients (each start of this launcher gives them new secrets):");
    for (partner, scopes) in DEMO_PARTNERS {
        let (client, secret) =
            ensure_demo_client(&state.db, partner, scopes, &state.config.default_audience).await?;
        println!();
        println!("# {partner}: {scopes}");
        print!(
            "{}",
            curl_session(
                &token_url,
                &api_url,
                &client,
                &secret,
                &["/v1/me", "/v1/orders?limit=3", "/v1/invoices?limit=3"]
            )
        );
    }
    println!();
    println!("Stop with Ctrl-C.");
    println!();

    let (stop_tx, _) = tokio::sync::broadcast::channel::<()>(1);
    let mut auth_stop = stop_tx.subscribe();
    let mut api_stop = stop_tx.subscribe();
    let auth_task = tokio::spawn(auth.run_until(async move {
        let _ = auth_stop.recv().await;
    }));
    let api_task = tokio::spawn(api.run_until(async move {
        let _ = api_stop.recv().await;
    }));
    edge::shutdown_signal().await;
    let _ = stop_tx.send(());
    auth_task.await??;
    api_task.await??;
    Ok(())
}
