//! `cargo run --release`: the whole system on the embedded default (SQLite), with a demo client.

use auth_server::config::{ServeArgs, StoreArgs};
use auth_server::{Application, Settings};
use clap::Parser;
use tracing_subscriber::EnvFilter;

/// Starts the token service with PRODUCT.md's defaults (every AUTH_* variable applies).
#[derive(Parser)]
#[command(
    name = "partner-platform",
    about = "Runs the partner token service locally with a demo client"
)]
struct Args {
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    serve: ServeArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    let settings = Settings::new(args.store, args.serve);
    let app = Application::build(settings).await?;
    let state = app.state().clone();
    let (client, secret) =
        partner_platform::ensure_demo_client(&state.db, &state.config.default_audience).await?;
    let token_url = format!("http://{}/oauth2/token", app.local_addr());
    println!();
    println!("Token service listening on http://{}", app.local_addr());
    println!("Demo client for partner 'acme' (a new secret on every start of this launcher):");
    println!("  client_id:     {}", client.client_id);
    println!("  client_secret: {}", secret.expose());
    println!();
    println!("Fetch a token:");
    println!(
        "  {}",
        partner_platform::curl_command(&token_url, &client, &secret)
    );
    println!();
    println!(
        "Public keys: http://{}/.well-known/jwks.json   Stop with Ctrl-C.",
        app.local_addr()
    );
    println!();
    drop(secret);
    app.run_until_stopped().await
}
