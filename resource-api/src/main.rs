//! `resource-api`: serves the partner API.

use clap::Parser;

#[derive(Parser)]
#[command(name = "resource-api", about = "Partner API")]
struct Args {
    /// Address to listen on.
    #[arg(
        long = "resource-bind",
        env = "RESOURCE_BIND",
        default_value = "127.0.0.1:8081"
    )]
    bind: std::net::SocketAddr,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().init();
    let args = Args::parse();
    let listener = tokio::net::TcpListener::bind(args.bind).await?;
    tracing::info!(addr = %listener.local_addr()?, "partner API listening");
    axum::serve(listener, resource_api::router()).await?;
    Ok(())
}
