//! The `auth-server` command line: `serve`, `migrate` and the admin commands. Each admin command
//! returns a result that renders itself ([`render::Render`]), so whether it prints as a table or
//! as one JSON document (`--json`) is decided once, in [`run_admin`].

mod audit;
mod client;
mod clients;
mod keys;
mod log;
mod render;

use clap::Parser;
use clap::Subcommand;
use clap::error::ErrorKind;
use serde_json::json;

pub use client::{ClientCommand, CreateArgs, TokensCommand, UpdateArgs};
pub use clients::ClientsCommand;
pub use keys::KeysCommand;
pub use log::init_operator_warnings;

use crate::admin;
use crate::config::{ServeArgs, Settings, StoreArgs};
use crate::store::Store;
use render::Render;

#[derive(Parser)]
#[command(
    name = "auth-server",
    version,
    about = "Partner token service and its admin CLI"
)]
pub struct Cli {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Print one JSON document instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(flatten)]
    pub log: edge::logging::LogArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the token service.
    Serve(ServeArgs),
    /// Create or upgrade the database schema.
    Migrate,
    /// Manage partners' clients.
    #[command(subcommand)]
    Client(ClientCommand),
    /// Manage clients from a file (clients as code): plan, then apply.
    #[command(subcommand)]
    Clients(ClientsCommand),
    /// Manage signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Manage issued tokens.
    #[command(subcommand)]
    Tokens(TokensCommand),
    /// Read the audit trail, newest first.
    Audit {
        /// Only events about this client (its id, `cl_…`).
        #[arg(long)]
        client: Option<String>,
        /// The most events to show, 1 to 10000.
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
}

impl Cli {
    /// Parses the process's arguments like [`Parser::parse`], except that a usage error is
    /// printed as one line: every failure of this command line is one `error:` line. Help and
    /// the version print as clap writes them.
    ///
    /// On AWS Lambda the executable (`bootstrap`) is started without arguments; it then serves.
    pub fn parse_args() -> Cli {
        let mut args: Vec<std::ffi::OsString> = std::env::args_os().collect();
        if args.len() <= 1 && edge::lambda::is_lambda() {
            args.truncate(1);
            args.resize(1, "auth-server".into());
            args.push("serve".into());
        }
        Cli::try_parse_from(args).unwrap_or_else(|err| match err.kind() {
            ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => err.exit(),
            _ => {
                eprintln!("{}", one_line(&err));
                std::process::exit(err.exit_code())
            }
        })
    }
}

/// Runs an admin command (everything but `serve`) and returns what to print on stdout; with
/// `--json`, the command's warnings are in that document too.
pub async fn run_admin(
    store: &StoreArgs,
    command: Command,
    json_out: bool,
) -> anyhow::Result<String> {
    Ok(run_admin_reporting(store, command, json_out).await?.stdout)
}

/// What an admin command prints: its result on stdout, and each of its warnings on stderr as a
/// `warning:` line (whether or not `--json` also carries them).
#[derive(Debug)]
pub struct AdminOutput {
    pub stdout: String,
    pub warnings: Vec<String>,
}

/// Runs an admin command (everything but `serve`), returning its output and its warnings.
pub async fn run_admin_reporting(
    store: &StoreArgs,
    command: Command,
    json_out: bool,
) -> anyhow::Result<AdminOutput> {
    store.check()?;
    let db = Store::connect_waiting(&store.database_url, store.database_wait()).await?;
    db.migrate().await?;
    let result: Box<dyn Render> = match command {
        Command::Serve(_) => anyhow::bail!("serve is not an admin command"),
        Command::Migrate => Box::new(Migrated),
        Command::Client(cmd) => client::run(&db, store, cmd).await?,
        Command::Clients(cmd) => clients::run(&db, store, cmd).await?,
        Command::Keys(cmd) => keys::run(&db, store, cmd).await?,
        Command::Tokens(cmd) => client::run_tokens(&db, cmd).await?,
        Command::Audit { client, limit } => {
            Box::new(admin::audit_trail(&db, client.as_deref(), limit).await?)
        }
    };
    db.close().await;
    Ok(AdminOutput {
        stdout: render::output(&*result, json_out),
        warnings: result.warnings().to_vec(),
    })
}

/// Settings for `serve` from parsed arguments.
pub fn serve_settings(store: StoreArgs, serve: ServeArgs) -> anyhow::Result<Settings> {
    Settings::new(store, serve)
}

/// `migrate`: [`run_admin`] has brought the schema up to date before any command runs.
struct Migrated;

impl Render for Migrated {
    fn human(&self) -> String {
        "schema is up to date\n".into()
    }

    fn json(&self) -> serde_json::Value {
        json!({ "migrated": true })
    }
}

/// A failed command's error as its one `error:` line: the chain of causes joined by `: ` as
/// `{:#}` joins them, except a cause whose words are already on the line (sqlx's database
/// errors repeat their source's message in their own), and with any line break made a space.
pub fn error_line(err: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    format!("error: {}", line.replace(['\n', '\r'], " "))
}

/// A clap error on one line: its message and the details clap puts on the lines below it
/// (the possible values, a suggestion), without the usage and the pointer to `--help`.
fn one_line(err: &clap::Error) -> String {
    // `to_string` renders without colours, in the same words clap would print.
    let rendered = err.to_string();
    let mut line = String::new();
    for part in rendered
        .lines()
        .map(str::trim)
        .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .filter(|l| !l.is_empty())
    {
        if !line.is_empty() {
            line.push_str(if part.starts_with("tip:") { "; " } else { " " });
        }
        line.push_str(part);
    }
    line
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
        let cli = Cli::try_parse_from(["auth-server", "client", "list", "--json"]).unwrap();
        assert!(cli.json);
        assert!(Cli::try_parse_from(["auth-server", "serve", "--auth-bind", "nonsense"]).is_err());
    }

    #[test]
    fn an_error_line_gives_each_cause_once() {
        #[derive(Debug, thiserror::Error)]
        #[error("error returned from database: {0}")]
        struct Repeating(#[source] Inner);
        #[derive(Debug, thiserror::Error)]
        #[error("(code: 5) database is locked")]
        struct Inner;
        let err = anyhow::Error::new(Repeating(Inner)).context("cannot create the client");
        assert_eq!(
            error_line(&err),
            "error: cannot create the client: error returned from database: (code: 5) database \
             is locked"
        );
        let err = anyhow::anyhow!("two\nlines").context("outer");
        assert_eq!(error_line(&err), "error: outer: two lines");
    }

    #[test]
    fn usage_errors_are_one_line_with_the_possible_values() {
        let err = Cli::try_parse_from(["auth-server", "keys", "rotate", "--alg", "HS256"])
            .err()
            .unwrap();
        assert_eq!(
            one_line(&err),
            "error: invalid value 'HS256' for '--alg <ALG>' [possible values: ES256, EdDSA, RS256]; \
             tip: a similar value exists: 'RS256'"
        );
        let err = Cli::try_parse_from(["auth-server", "client", "create", "--name", "n"])
            .err()
            .unwrap();
        let line = one_line(&err);
        assert!(
            line.starts_with("error: ") && line.contains("--partner") && !line.contains('\n'),
            "{line}"
        );
    }

    #[test]
    fn metrics_are_off_unless_a_bind_is_set_and_never_on_a_partner_facing_address() {
        let settings = |args: &[&str]| {
            let cli = Cli::try_parse_from(args).unwrap();
            let Command::Serve(serve) = cli.command else {
                panic!("not serve");
            };
            serve_settings(cli.store, serve)
        };
        assert_eq!(
            settings(&["auth-server", "serve"]).unwrap().metrics_bind,
            None
        );
        assert_eq!(
            settings(&[
                "auth-server",
                "serve",
                "--auth-metrics-bind",
                "127.0.0.1:9100"
            ])
            .unwrap()
            .metrics_bind,
            Some("127.0.0.1:9100".parse().unwrap())
        );
        assert!(
            Cli::try_parse_from(["auth-server", "serve", "--auth-metrics-bind", "nonsense"])
                .is_err()
        );
        for same in ["127.0.0.1:8080", "0.0.0.0:8080"] {
            let err = settings(&["auth-server", "serve", "--auth-metrics-bind", same])
                .err()
                .expect(same)
                .to_string();
            assert!(
                err.contains("AUTH_METRICS_BIND") && err.contains("AUTH_BIND"),
                "{err}"
            );
        }
        let err = settings(&[
            "auth-server",
            "serve",
            "--auth-bind",
            "127.0.0.1:8443",
            "--auth-metrics-bind",
            "127.0.0.1:8443",
        ])
        .err()
        .expect("the service's own address")
        .to_string();
        assert!(err.contains("AUTH_BIND"), "{err}");
    }

    #[test]
    fn header_limits_default_to_16_and_32_kib_and_can_be_set() {
        let settings = |args: &[&str]| {
            let cli = Cli::try_parse_from(args).unwrap();
            let Command::Serve(serve) = cli.command else {
                panic!("not serve");
            };
            serve_settings(cli.store, serve).unwrap().transport.headers
        };
        assert_eq!(
            settings(&["auth-server", "serve"]),
            edge::HeaderLimits::default()
        );
        assert_eq!(
            settings(&[
                "auth-server",
                "serve",
                "--auth-max-header-bytes",
                "4096",
                "--auth-max-header-list-bytes",
                "8192",
            ]),
            edge::HeaderLimits {
                max_header_bytes: 4096,
                max_header_list_bytes: 8192,
            }
        );
        assert!(
            Cli::try_parse_from(["auth-server", "serve", "--auth-max-header-list-bytes", "0"])
                .is_err()
        );
    }

    #[test]
    fn the_jwks_cache_horizon_defaults_to_the_max_age_and_the_cli_and_server_agree() {
        let policies = |args: &[&str]| {
            let cli = Cli::try_parse_from(args).unwrap();
            let admin = cli.store.key_policy();
            let server = match cli.command {
                Command::Serve(serve) => {
                    Some(serve_settings(cli.store, serve).map(|s| s.key_policy()))
                }
                _ => None,
            };
            (admin, server)
        };
        let (admin, server) = policies(&["auth-server", "serve", "--auth-jwks-max-age", "120"]);
        let server = server.unwrap().unwrap();
        assert_eq!((admin.jwks_max_age, admin.jwks_cache_horizon), (120, 120));
        assert_eq!((server.jwks_max_age, server.jwks_cache_horizon), (120, 120));
        // API Gateway: a two-hour horizon over the default max-age. The flag is global: it may
        // follow the subcommand, like the other store settings.
        let (admin, server) =
            policies(&["auth-server", "serve", "--auth-jwks-cache-horizon", "7200"]);
        let server = server.unwrap().unwrap();
        assert_eq!(
            (admin.jwks_max_age, admin.cache_horizon_secs()),
            (300, 7200)
        );
        assert_eq!(server.rotation_safe_at(0), admin.rotation_safe_at(0));
        assert_eq!(server.purge_safe_at(0, 600), admin.purge_safe_at(0, 600));
        let (admin, _) = policies(&[
            "auth-server",
            "keys",
            "rotate",
            "--auth-jwks-cache-horizon",
            "7200",
        ]);
        assert_eq!(admin.jwks_cache_horizon, 7200);
        // Shorter than the max-age every verifier is told: refused, by the server and the CLI.
        let (_, server) = policies(&[
            "auth-server",
            "--auth-jwks-max-age",
            "300",
            "--auth-jwks-cache-horizon",
            "60",
            "serve",
        ]);
        let err = server.unwrap().err().unwrap().to_string();
        assert!(
            err.contains(
                "AUTH_JWKS_CACHE_HORIZON (60 s) is shorter than AUTH_JWKS_MAX_AGE (300 s)"
            ),
            "{err}"
        );
        let cli = Cli::try_parse_from([
            "auth-server",
            "keys",
            "list",
            "--auth-jwks-cache-horizon",
            "60",
        ])
        .unwrap();
        assert!(cli.store.check().is_err());
        assert!(
            Cli::try_parse_from([
                "auth-server",
                "keys",
                "list",
                "--auth-jwks-cache-horizon",
                "-1"
            ])
            .is_err()
        );
    }
}
