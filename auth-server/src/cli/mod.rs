//! The `auth-server` command line: `serve`, `migrate` and the admin commands. Each admin command
//! returns a result that renders itself ([`render::Render`]), so whether it prints as a table or
//! as one JSON document (`--json`) is decided once, in [`run_admin`].

mod audit;
mod client;
mod keys;
mod render;

use clap::Parser;
use clap::Subcommand;
use serde_json::json;

pub use client::{ClientCommand, CreateArgs, TokensCommand, UpdateArgs};
pub use keys::KeysCommand;

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
    /// Manage signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Manage issued tokens.
    #[command(subcommand)]
    Tokens(TokensCommand),
    /// Read the audit trail, newest first.
    Audit {
        #[arg(long)]
        client: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
}

/// Runs an admin command (everything but `serve`) and returns what to print.
pub async fn run_admin(
    store: &StoreArgs,
    command: Command,
    json_out: bool,
) -> anyhow::Result<String> {
    let db = Store::connect(&store.database_url).await?;
    db.migrate().await?;
    let result: Box<dyn Render> = match command {
        Command::Serve(_) => anyhow::bail!("serve is not an admin command"),
        Command::Migrate => Box::new(Migrated),
        Command::Client(cmd) => client::run(&db, store, cmd).await?,
        Command::Keys(cmd) => keys::run(&db, store, cmd).await?,
        Command::Tokens(cmd) => client::run_tokens(&db, cmd).await?,
        Command::Audit { client, limit } => {
            Box::new(admin::audit_trail(&db, client.as_deref(), limit).await?)
        }
    };
    db.close().await;
    Ok(render::output(&*result, json_out))
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
}
