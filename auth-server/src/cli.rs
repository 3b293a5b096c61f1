//! The `auth-server` command line: `serve`, `migrate` and the admin commands of PRODUCT.md.
//! Every command prints a human table by default and one JSON document with `--json`.

use std::fmt::Write as _;

use clap::{Parser, Subcommand};
use keys::{Algorithm, MasterKey};
use serde_json::json;
use shared_claims::{PartnerId, ScopeSet};

use crate::admin::{self, ClientSpec};
use crate::config::{ServeArgs, Settings, StoreArgs};
use crate::store::{AuditRecord, Client, ClientUpdate, Store};

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
    /// Read the audit trail, newest first.
    Audit {
        #[arg(long)]
        client: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
}

#[derive(Subcommand)]
pub enum ClientCommand {
    /// Create a client; its secret is printed once.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long)]
        partner: String,
        /// Space-separated scopes the client may be granted.
        #[arg(long)]
        scopes: String,
        /// Audience(s) of its tokens; repeat for several (the first is the default).
        #[arg(long)]
        audience: Vec<String>,
        /// Access-token lifetime in seconds, overriding the server default.
        #[arg(long)]
        access_ttl: Option<i64>,
        /// Do not issue refresh tokens to this client.
        #[arg(long)]
        no_refresh: bool,
        /// Allow this client to call the introspection endpoint.
        #[arg(long)]
        introspect: bool,
    },
    List,
    Show {
        client_id: String,
    },
    Update {
        client_id: String,
        #[arg(long)]
        scopes: Option<String>,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        access_ttl: Option<i64>,
    },
    Disable {
        client_id: String,
    },
    Enable {
        client_id: String,
    },
    Delete {
        client_id: String,
    },
}

#[derive(Subcommand)]
pub enum KeysCommand {
    List,
    /// Make a new active signing key; the current one is retired but stays published.
    Rotate {
        /// Algorithm of the new key: ES256 or EdDSA.
        #[arg(long, default_value = "ES256")]
        alg: String,
        /// Accepted for forward compatibility; this rotation has no waiting period to override yet.
        #[arg(long)]
        force: bool,
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
    let out = match command {
        Command::Serve(_) => anyhow::bail!("serve is not an admin command"),
        Command::Migrate => render(json_out, json!({ "migrated": true }), || {
            "schema is up to date\n".into()
        }),
        Command::Client(cmd) => client_command(&db, store, cmd, json_out).await?,
        Command::Keys(cmd) => keys_command(&db, store, cmd, json_out).await?,
        Command::Audit { client, limit } => {
            let records = admin::audit_trail(&db, client.as_deref(), limit).await?;
            render(json_out, json!(records), || audit_table(&records))
        }
    };
    db.close().await;
    Ok(out)
}

async fn client_command(
    db: &Store,
    store: &StoreArgs,
    cmd: ClientCommand,
    json_out: bool,
) -> anyhow::Result<String> {
    Ok(match cmd {
        ClientCommand::Create {
            name,
            partner,
            scopes,
            audience,
            access_ttl,
            no_refresh,
            introspect,
        } => {
            let audiences = if audience.is_empty() {
                vec![store.default_audience.clone()]
            } else {
                audience
            };
            let spec = ClientSpec {
                name: admin::parse_name(&name)?,
                partner_id: PartnerId::parse(&partner)?,
                scopes: ScopeSet::parse(&scopes).map_err(|e| anyhow::anyhow!("--scopes: {e}"))?,
                audiences: audiences
                    .iter()
                    .map(|a| admin::parse_audience(a))
                    .collect::<anyhow::Result<_>>()?,
                access_token_ttl: access_ttl.map(admin::parse_ttl).transpose()?,
                refresh_enabled: !no_refresh,
                introspect_allowed: introspect,
            };
            let (client, secret) = admin::create_client(db, spec).await?;
            let mut doc = client_json(&client);
            doc["client_secret"] = json!(secret.expose());
            render(json_out, doc, || {
                let mut text = client_table(std::slice::from_ref(&client));
                let _ = writeln!(
                    text,
                    "\nclient_secret: {}\nStore it now: it is shown only once.",
                    secret.expose()
                );
                text
            })
        }
        ClientCommand::List => {
            let clients = db.list_clients().await?;
            render(
                json_out,
                json!(clients.iter().map(client_json).collect::<Vec<_>>()),
                || client_table(&clients),
            )
        }
        ClientCommand::Show { client_id } => {
            let client = admin::show_client(db, &client_id).await?;
            render(json_out, client_json(&client), || {
                client_table(std::slice::from_ref(&client))
            })
        }
        ClientCommand::Update {
            client_id,
            scopes,
            name,
            access_ttl,
        } => {
            let update = ClientUpdate {
                name: name.as_deref().map(admin::parse_name).transpose()?,
                scopes: scopes
                    .as_deref()
                    .map(ScopeSet::parse)
                    .transpose()
                    .map_err(|e| anyhow::anyhow!("--scopes: {e}"))?,
                access_token_ttl: access_ttl
                    .map(|t| admin::parse_ttl(t).map(Some))
                    .transpose()?,
            };
            let client = admin::update_client(db, &client_id, update).await?;
            render(json_out, client_json(&client), || {
                client_table(std::slice::from_ref(&client))
            })
        }
        ClientCommand::Disable { client_id } => {
            let client = admin::set_disabled(db, &client_id, true).await?;
            render(json_out, client_json(&client), || {
                client_table(std::slice::from_ref(&client))
            })
        }
        ClientCommand::Enable { client_id } => {
            let client = admin::set_disabled(db, &client_id, false).await?;
            render(json_out, client_json(&client), || {
                client_table(std::slice::from_ref(&client))
            })
        }
        ClientCommand::Delete { client_id } => {
            admin::delete_client(db, &client_id).await?;
            render(json_out, json!({ "deleted": client_id }), || {
                format!("deleted client {client_id}\n")
            })
        }
    })
}

async fn keys_command(
    db: &Store,
    store: &StoreArgs,
    cmd: KeysCommand,
    json_out: bool,
) -> anyhow::Result<String> {
    Ok(match cmd {
        KeysCommand::List => {
            let rows = db.list_signing_keys().await?;
            let doc: Vec<_> = rows
                .iter()
                .map(|r| json!({ "kid": r.kid, "alg": r.alg, "state": r.state, "created_at": r.created_at,
                                 "activated_at": r.activated_at, "retired_at": r.retired_at }))
                .collect();
            render(json_out, json!(doc), || {
                let cells: Vec<Vec<String>> = rows
                    .iter()
                    .map(|r| {
                        vec![
                            r.kid.clone(),
                            r.alg.clone(),
                            r.state.clone(),
                            time(Some(r.created_at)),
                        ]
                    })
                    .collect();
                table(&["KID", "ALG", "STATE", "CREATED"], &cells)
            })
        }
        KeysCommand::Rotate { alg, force: _ } => {
            let alg: Algorithm = alg
                .parse()
                .map_err(|_| anyhow::anyhow!("--alg must be ES256 or EdDSA"))?;
            let master = MasterKey::load(&store.master_key_file)?;
            let row = admin::rotate_key(db, &master, alg).await?;
            render(
                json_out,
                json!({ "active": row.kid, "alg": row.alg, "pending": null }),
                || {
                    format!(
                        "new active key {} ({}); the previous key is retired and stays published\n",
                        row.kid, row.alg
                    )
                },
            )
        }
    })
}

fn render(json_out: bool, doc: serde_json::Value, human: impl FnOnce() -> String) -> String {
    if json_out {
        format!("{doc}\n")
    } else {
        human()
    }
}

fn client_json(c: &Client) -> serde_json::Value {
    json!({
        "client_id": c.client_id,
        "name": c.name,
        "partner_id": c.partner_id,
        "scopes": c.scopes,
        "audiences": c.audiences,
        "access_token_ttl": c.access_token_ttl,
        "refresh_enabled": c.refresh_enabled,
        "introspect_allowed": c.introspect_allowed,
        "disabled": c.is_disabled(),
        "created_at": c.created_at,
        "updated_at": c.updated_at,
    })
}

fn client_table(clients: &[Client]) -> String {
    let rows: Vec<Vec<String>> = clients
        .iter()
        .map(|c| {
            vec![
                c.client_id.to_string(),
                c.name.clone(),
                c.partner_id.to_string(),
                c.scopes.to_string(),
                c.audiences.join(" "),
                c.access_token_ttl
                    .map_or_else(|| "default".into(), |t| t.to_string()),
                if c.is_disabled() {
                    "disabled".into()
                } else {
                    "enabled".into()
                },
            ]
        })
        .collect();
    table(
        &[
            "CLIENT ID",
            "NAME",
            "PARTNER",
            "SCOPES",
            "AUDIENCE",
            "TTL",
            "STATUS",
        ],
        &rows,
    )
}

fn audit_table(records: &[AuditRecord]) -> String {
    let rows: Vec<Vec<String>> = records
        .iter()
        .map(|r| {
            vec![
                r.id.to_string(),
                time(Some(r.at)),
                r.actor.clone(),
                r.action.clone(),
                r.client_id.clone().unwrap_or_default(),
                r.source_ip.clone().unwrap_or_default(),
                r.detail.clone(),
            ]
        })
        .collect();
    table(
        &[
            "ID", "TIME", "ACTOR", "ACTION", "CLIENT", "SOURCE", "DETAIL",
        ],
        &rows,
    )
}

fn time(unix: Option<i64>) -> String {
    unix.and_then(|t| chrono::DateTime::from_timestamp(t, 0))
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

/// A plain left-aligned text table.
fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, cells: &mut dyn Iterator<Item = &str>| {
        let parts: Vec<String> = cells
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", parts.join("  ").trim_end());
    };
    line(&mut out, &mut headers.iter().copied());
    for row in rows {
        line(&mut out, &mut row.iter().map(String::as_str));
    }
    if rows.is_empty() {
        out.push_str("(none)\n");
    }
    out
}

/// Settings for `serve` from parsed arguments.
pub fn serve_settings(store: StoreArgs, serve: ServeArgs) -> Settings {
    Settings::new(store, serve)
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
