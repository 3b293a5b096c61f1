//! `resource-api`: serves the partner API.

use clap::Parser;
use resource_api::config::ResourceArgs;
use resource_api::{Application, Settings};
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(
    name = "resource-api",
    about = "Partner API: local bearer-token verification, scopes, per-partner data"
)]
struct Args {
    #[command(flatten)]
    resource: ResourceArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    let settings = Settings::new(args.resource)?;
    if edge::lambda::is_lambda() {
        return resource_api::lambda::run(settings).await;
    }
    let app = Application::build(settings).await?;
    tracing::info!(addr = %app.local_addr(), "partner API listening");
    app.run_until(edge::shutdown_signal()).await
}
