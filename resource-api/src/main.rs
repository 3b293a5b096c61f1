//! `resource-api`: serves the partner API; `resource-api authorize` is its API Gateway Lambda
//! authorizer.

use clap::{Parser, Subcommand};
use resource_api::authorizer::AuthorizeArgs;
use resource_api::config::ResourceArgs;
use resource_api::{Application, Settings};

#[derive(Parser)]
#[command(
    name = "resource-api",
    about = "Partner API: local bearer-token verification, scopes, per-partner data"
)]
struct Args {
    #[command(flatten)]
    resource: ResourceArgs,
    #[command(flatten)]
    log: edge::logging::LogArgs,
    /// Without a command: serve the partner API (as a server, or as a Lambda function under
    /// Lambda).
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run as an API Gateway Lambda authorizer (under AWS Lambda only): verify the bearer token
    /// and answer with a policy or simple response per RESOURCE_AUTHORIZER_ROUTES.
    Authorize(AuthorizeArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse_from(command_line());
    edge::logging::init(args.log.log_format, "info");
    let settings = Settings::new(args.resource)?;
    if let Some(Command::Authorize(authorize)) = args.command {
        return resource_api::authorizer::run(settings, authorize).await;
    }
    if edge::lambda::is_lambda() {
        return resource_api::lambda::run(settings).await;
    }
    let app = Application::build(settings).await?;
    tracing::info!(addr = %app.local_addr(), "partner API listening");
    app.run_until(edge::shutdown_signal()).await
}

/// The command line. On AWS Lambda the executable (`bootstrap`) starts without arguments, and
/// the function's handler setting arrives in `_HANDLER`: `authorize` runs the authorizer, any
/// other value the partner API.
fn command_line() -> Vec<std::ffi::OsString> {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let authorizer = std::env::var("_HANDLER").is_ok_and(|handler| handler == "authorize");
    if args.len() <= 1 && edge::lambda::is_lambda() && authorizer {
        return vec!["resource-api".into(), "authorize".into()];
    }
    args
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn flags_alone_serve_and_authorize_is_a_command() {
        Args::command().debug_assert();
        let args =
            Args::try_parse_from(["resource-api", "--resource-bind", "127.0.0.1:9"]).unwrap();
        assert!(args.command.is_none());
        assert_eq!(args.resource.bind.port(), 9);
        let args = Args::try_parse_from([
            "resource-api",
            "--resource-audience",
            "api",
            "authorize",
            "--resource-authorizer-routes",
            "GET /v1/me=,GET /v1/orders=orders:read",
        ])
        .unwrap();
        assert_eq!(args.resource.audience, "api");
        let Some(Command::Authorize(authorize)) = args.command else {
            panic!("authorize");
        };
        assert_eq!(
            authorize.routes,
            ["GET /v1/me=", "GET /v1/orders=orders:read"]
        );
        assert!(Args::try_parse_from(["resource-api", "serve"]).is_err());
    }
}
