//! `auth-server`: the token service (`serve`) and its admin commands.

use std::process::ExitCode;

use auth_server::cli::{
    Cli, Command, error_line, init_operator_warnings, run_admin_reporting, serve_settings,
};

fn main() -> ExitCode {
    let cli = Cli::parse_args();
    let serving = matches!(cli.command, Command::Serve(_));
    // Admin commands print their result on stdout and, on stderr, one `error:` line or our own
    // warnings; library logs only when RUST_LOG asks for them.
    if serving {
        edge::logging::init(cli.log.log_format, "info");
    } else if std::env::var_os("RUST_LOG").is_some() {
        edge::logging::init(cli.log.log_format, "warn");
    } else {
        init_operator_warnings();
    }
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
                let out = run_admin_reporting(&cli.store, command, cli.json).await?;
                for warning in &out.warnings {
                    eprintln!("warning: {warning}");
                }
                print!("{}", out.stdout);
                Ok(())
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("{}", error_line(&err));
            ExitCode::FAILURE
        }
    }
}
