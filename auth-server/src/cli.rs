//! The `auth-server` command line: `serve`, `migrate` and the admin commands of PRODUCT.md.
//! Every command prints a human table by default and one JSON document with `--json`.

use std::fmt::Write as _;

use anyhow::Context;
use clap::{Parser, Subcommand};
use keys::{Algorithm, MasterKey};
use serde_json::json;
use shared_claims::{PartnerId, ScopeSet};

use crate::admin::{self, ClientSpec};
use crate::config::{ServeArgs, Settings, StoreArgs};
use crate::signing;
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
    /// Issue a new secret (shown once); the old one works for --grace seconds more.
    RotateSecret {
        client_id: String,
        /// Seconds the current secret keeps working (0: stop it now, for a leaked secret).
        #[arg(long, default_value_t = 86_400)]
        grace: i64,
    },
    /// Disable a client; its refresh tokens are revoked at once.
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
pub enum TokensCommand {
    /// Revoke every refresh token of a client (its access tokens expire on their own).
    Revoke {
        #[arg(long)]
        client: String,
    },
}

#[derive(Subcommand)]
pub enum KeysCommand {
    /// List signing keys and their states.
    List,
    /// Routine rotation: the pending key starts signing, the active key is retired (still
    /// published until its tokens expire), and a new pending key is made.
    Rotate {
        /// Algorithm of the new pending key: ES256 or EdDSA (RS256 keys arrive by `keys import`).
        #[arg(long, default_value = "ES256")]
        alg: String,
        /// Rotate even though resource servers may not have fetched the pending key yet. If the
        /// master key file does not exist (the master key was lost), it is created and a fresh
        /// active and pending key are made under it.
        #[arg(long)]
        force: bool,
    },
    /// Emergency: unpublish a key now; if it was active, promote the pending key.
    Revoke { kid: String },
    /// Drop retired keys whose tokens have all expired.
    Purge,
    /// Re-encrypt every private key under a new master key (the file is created if missing).
    Rewrap {
        #[arg(long)]
        new_master_key_file: std::path::PathBuf,
    },
    /// Import a PKCS#8 PEM private key as the pending key (how RS256 keys are added).
    Import {
        /// The key's algorithm: RS256, ES256 or EdDSA.
        #[arg(long, default_value = "RS256")]
        alg: String,
        /// PEM file with `-----BEGIN PRIVATE KEY-----`.
        #[arg(long)]
        pem: std::path::PathBuf,
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
        Command::Tokens(TokensCommand::Revoke { client }) => {
            let count = admin::revoke_client_tokens(&db, &client).await?;
            render(
                json_out,
                json!({ "client_id": client, "revoked_refresh_tokens": count }),
                || {
                    format!(
                        "revoked {count} refresh tokens of {client}; its access tokens expire within their lifetime\n"
                    )
                },
            )
        }
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
        ClientCommand::RotateSecret { client_id, grace } => {
            let (secret, until) = admin::rotate_secret(db, &client_id, grace).await?;
            render(
                json_out,
                json!({ "client_id": client_id, "client_secret": secret.expose(), "previous_secret_valid_until": until }),
                || {
                    format!(
                        "client_secret: {}\nStore it now: it is shown only once. The previous secret works until {}.\n",
                        secret.expose(),
                        time(Some(until))
                    )
                },
            )
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
                            r.alg.to_string(),
                            r.state.to_string(),
                            time(Some(r.created_at)),
                            time(r.activated_at),
                            time(r.retired_at),
                        ]
                    })
                    .collect();
                table(
                    &["KID", "ALG", "STATE", "CREATED", "ACTIVATED", "RETIRED"],
                    &cells,
                )
            })
        }
        KeysCommand::Rotate { alg, force } => {
            let alg: Algorithm = alg
                .parse()
                .map_err(|_| anyhow::anyhow!("--alg must be ES256 or EdDSA"))?;
            let policy = store.key_policy();
            let (rotation, recovered) = if force && !store.master_key_file.exists() {
                // The master key is lost: only a forced rotation may start over under a new one,
                // and only with a file that did not exist, so a mistyped or wrong existing file
                // can never replace the keys.
                let created = MasterKey::load_or_create(&store.master_key_file)?;
                eprintln!(
                    "warning: created a new master key file {}; back it up. No stored private key can be opened any more, so fresh keys replace them",
                    store.master_key_file.display()
                );
                let rotation = signing::recover_lost_master_key(db, &created.key, alg).await?;
                (rotation, true)
            } else {
                let master = load_master(store)?;
                (
                    signing::rotate_key(db, &master, &policy, alg, force).await?,
                    false,
                )
            };
            render(json_out, json!(rotation), || {
                let mut text = format!(
                    "active:  {}\npending: {}\n",
                    rotation.active, rotation.pending
                );
                if let Some(retired) = &rotation.retired {
                    let _ = writeln!(
                        text,
                        "retired: {retired} (published until its tokens expire)"
                    );
                }
                if recovered {
                    text.push_str("recovered: the new keys are sealed under the new master key; running servers re-read the file and sign with the new active key within their reload interval\n");
                } else if force {
                    text.push_str("forced: resource servers that had not fetched the new active key refetch it on first use\n");
                }
                text
            })
        }
        KeysCommand::Revoke { kid } => {
            let master = load_master(store)?;
            let revocation = signing::revoke_key(db, &master, &kid).await?;
            let max_age = store.jwks_max_age;
            render(json_out, json!(revocation), || {
                let mut text = format!(
                    "revoked {} ({}): unpublished now\n",
                    revocation.revoked, revocation.was
                );
                if let Some(active) = &revocation.active {
                    let _ = writeln!(text, "active:  {active}");
                }
                if let Some(pending) = &revocation.pending {
                    let _ = writeln!(text, "pending: {pending}");
                }
                let _ = writeln!(
                    text,
                    "tokens it signed stop verifying at each resource API when it next refreshes its JWKS (within {max_age} s)"
                );
                text
            })
        }
        KeysCommand::Purge => {
            let purge = signing::purge_keys(db, &store.key_policy()).await?;
            render(json_out, json!(purge), || {
                if purge.purged.is_empty() {
                    match purge.next_purge_at {
                        Some(at) => format!(
                            "nothing to purge: every retired key may still have unexpired tokens; the next becomes purgeable at {}\n",
                            time(Some(at))
                        ),
                        None => "nothing to purge: there are no retired keys\n".into(),
                    }
                } else {
                    format!("purged {}\n", purge.purged.join(", "))
                }
            })
        }
        KeysCommand::Rewrap {
            new_master_key_file,
        } => {
            let current = load_master(store)?;
            let loaded = MasterKey::load_or_create(&new_master_key_file)?;
            if loaded.loose_permissions {
                eprintln!(
                    "warning: {} is readable by group or others; run chmod 600 on it",
                    new_master_key_file.display()
                );
            }
            let count = signing::rewrap_keys(db, &current, &loaded.key).await?;
            let path = new_master_key_file.display().to_string();
            render(
                json_out,
                json!({ "rewrapped": count, "new_master_key_file": path }),
                || {
                    format!(
                        "re-encrypted {count} keys under {path}\nnext: point AUTH_MASTER_KEY_FILE at it (or move it over the old file; running servers re-read the file), then destroy the old file\n"
                    )
                },
            )
        }
        KeysCommand::Import { alg, pem } => {
            let alg: Algorithm = alg.parse()?;
            let master = load_master(store)?;
            let text = std::fs::read_to_string(&pem)
                .with_context(|| format!("cannot read {}", pem.display()))?;
            let kid = signing::import_key(db, &master, alg, &text).await?;
            let policy = store.key_policy();
            let safe = policy.rotation_safe_at(crate::now());
            render(
                json_out,
                json!({ "pending": kid, "alg": alg.as_str(), "rotate_after": safe }),
                || {
                    format!(
                        "imported {kid} ({alg}) as the pending key; `keys rotate` makes it active from {}\n",
                        time(Some(safe))
                    )
                },
            )
        }
    })
}

/// Loads the master key for a command that opens or seals keys, warning about loose permissions.
fn load_master(store: &StoreArgs) -> anyhow::Result<MasterKey> {
    let path = &store.master_key_file;
    let loaded = MasterKey::load_checked(path)
        .with_context(|| format!("master key file {}", path.display()))?;
    if loaded.loose_permissions {
        eprintln!(
            "warning: master key file {} is readable by group or others; run chmod 600 on it",
            path.display()
        );
    }
    Ok(loaded.key)
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
pub fn serve_settings(store: StoreArgs, serve: ServeArgs) -> anyhow::Result<Settings> {
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
}
