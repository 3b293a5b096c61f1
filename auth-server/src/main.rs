//! `auth-server`: the token service (`serve`) and its admin commands.

use std::process::ExitCode;

use auth_server::cli::{Cli, Command, run_admin, serve_settings};

fn main() -> ExitCode {
    let cli = Cli::parse_args();
    let serving = matches!(cli.command, Command::Serve(_));
    // Admin commands print their result on stdout; their logs stay quiet unless RUST_LOG asks.
    let default_level = if serving { "info" } else { "warn" };
    edge::logging::init(cli.log.log_format, default_level);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => {
                let settings = serve_settings(cli.store, args)?;
                if edge::lambda::is_lambda() {
                    return auth_server::lambda::run(settings).await;
                }
                let app = auth_server::Application::build(settings).await?;
                tracing::info!(addr = %app.local_addr(), "token service listening");
                app.run_until_stopped().await
            }
            command => {
                let out = run_admin(&cli.store, command, cli.json).await?;
                print!("{out}");
                Ok(())
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
