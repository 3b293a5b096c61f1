//! `client …` and `tokens …`: partners' clients, their secrets and their refresh tokens.

use clap::{Args, Subcommand};
use serde_json::json;
use shared_claims::{PartnerId, ScopeSet};

use super::render::{Render, table, time};
use crate::admin::{self, ClientSpec};
use crate::config::StoreArgs;
use crate::secret::ClientSecret;
use crate::store::{Client, ClientUpdate, Store};

#[derive(Subcommand)]
pub enum ClientCommand {
    /// Create a client; its secret is printed once.
    Create(CreateArgs),
    /// List every client (never their secrets).
    List,
    /// Show one client.
    Show {
        /// The client's id (`cl_…`).
        client_id: String,
    },
    /// Change a client's scopes, name or access-token lifetime.
    Update(UpdateArgs),
    /// Issue a new secret (shown once); the old one works for --grace seconds more.
    RotateSecret {
        /// The client's id (`cl_…`).
        client_id: String,
        /// Seconds the current secret keeps working (0: stop it now, for a leaked secret).
        #[arg(long, default_value_t = 86_400)]
        grace: i64,
    },
    /// Disable a client; its refresh tokens are revoked at once.
    Disable {
        /// The client's id (`cl_…`).
        client_id: String,
    },
    /// Enable a disabled client again.
    Enable {
        /// The client's id (`cl_…`).
        client_id: String,
    },
    /// Delete a client with its secrets and refresh tokens.
    Delete {
        /// The client's id (`cl_…`).
        client_id: String,
    },
}

#[derive(Args)]
pub struct CreateArgs {
    /// Display name, 1 to 100 characters.
    #[arg(long)]
    name: String,
    /// The partner the client acts for (lowercase letters, digits, '-' and '_'); every token
    /// it gets carries it as `partner_id`.
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
}

#[derive(Args)]
pub struct UpdateArgs {
    /// The client's id (`cl_…`).
    client_id: String,
    /// New space-separated scopes, replacing the current ones.
    #[arg(long)]
    scopes: Option<String>,
    /// New display name.
    #[arg(long)]
    name: Option<String>,
    /// New access-token lifetime in seconds.
    #[arg(long)]
    access_ttl: Option<i64>,
}

#[derive(Subcommand)]
pub enum TokensCommand {
    /// Revoke every refresh token of a client (its access tokens expire on their own).
    Revoke {
        /// The client's id (`cl_…`).
        #[arg(long)]
        client: String,
    },
}

/// Runs a `client` command.
pub async fn run(
    db: &Store,
    store: &StoreArgs,
    cmd: ClientCommand,
) -> anyhow::Result<Box<dyn Render>> {
    Ok(match cmd {
        ClientCommand::Create(args) => Box::new(create(db, store, args).await?),
        ClientCommand::List => Box::new(db.list_clients().await?),
        ClientCommand::Show { client_id } => Box::new(admin::show_client(db, &client_id).await?),
        ClientCommand::Update(args) => Box::new(update(db, args).await?),
        ClientCommand::RotateSecret { client_id, grace } => {
            Box::new(rotate_secret(db, client_id, grace).await?)
        }
        ClientCommand::Disable { client_id } => {
            Box::new(admin::set_disabled(db, &client_id, true).await?)
        }
        ClientCommand::Enable { client_id } => {
            Box::new(admin::set_disabled(db, &client_id, false).await?)
        }
        ClientCommand::Delete { client_id } => Box::new(delete(db, client_id).await?),
    })
}

/// Runs a `tokens` command.
pub async fn run_tokens(db: &Store, cmd: TokensCommand) -> anyhow::Result<Box<dyn Render>> {
    Ok(match cmd {
        TokensCommand::Revoke { client } => Box::new(revoke_tokens(db, client).await?),
    })
}

async fn create(db: &Store, store: &StoreArgs, args: CreateArgs) -> anyhow::Result<Created> {
    let audiences = if args.audience.is_empty() {
        vec![store.default_audience.clone()]
    } else {
        args.audience
    };
    let spec = ClientSpec {
        name: admin::parse_name(&args.name)?,
        partner_id: PartnerId::parse(&args.partner)?,
        scopes: ScopeSet::parse(&args.scopes).map_err(|e| anyhow::anyhow!("--scopes: {e}"))?,
        audiences: audiences
            .iter()
            .map(|a| admin::parse_audience(a))
            .collect::<anyhow::Result<_>>()?,
        access_token_ttl: args.access_ttl.map(admin::parse_ttl).transpose()?,
        refresh_enabled: !args.no_refresh,
        introspect_allowed: args.introspect,
    };
    let (client, secret) = admin::create_client(db, spec).await?;
    Ok(Created { client, secret })
}

async fn update(db: &Store, args: UpdateArgs) -> anyhow::Result<Client> {
    let update = ClientUpdate {
        name: args.name.as_deref().map(admin::parse_name).transpose()?,
        scopes: args
            .scopes
            .as_deref()
            .map(ScopeSet::parse)
            .transpose()
            .map_err(|e| anyhow::anyhow!("--scopes: {e}"))?,
        access_token_ttl: args
            .access_ttl
            .map(|t| admin::parse_ttl(t).map(Some))
            .transpose()?,
    };
    admin::update_client(db, &args.client_id, update).await
}

async fn rotate_secret(db: &Store, client_id: String, grace: i64) -> anyhow::Result<NewSecret> {
    let (secret, previous_valid_until) = admin::rotate_secret(db, &client_id, grace).await?;
    Ok(NewSecret {
        client_id,
        secret,
        previous_valid_until,
    })
}

async fn delete(db: &Store, client_id: String) -> anyhow::Result<Deleted> {
    admin::delete_client(db, &client_id).await?;
    Ok(Deleted { client_id })
}

async fn revoke_tokens(db: &Store, client_id: String) -> anyhow::Result<RevokedTokens> {
    let count = admin::revoke_client_tokens(db, &client_id).await?;
    Ok(RevokedTokens { client_id, count })
}

/// A client as `show`, `update`, `disable` and `enable` print it: a one-row table.
impl Render for Client {
    fn human(&self) -> String {
        client_table(std::slice::from_ref(self))
    }

    fn json(&self) -> serde_json::Value {
        json!({
            "client_id": self.client_id,
            "name": self.name,
            "partner_id": self.partner_id,
            "scopes": self.scopes,
            "audiences": self.audiences,
            "access_token_ttl": self.access_token_ttl,
            "refresh_enabled": self.refresh_enabled,
            "introspect_allowed": self.introspect_allowed,
            "disabled": self.is_disabled(),
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        })
    }
}

/// `client list`.
impl Render for Vec<Client> {
    fn human(&self) -> String {
        client_table(self)
    }

    fn json(&self) -> serde_json::Value {
        json!(self.iter().map(Render::json).collect::<Vec<_>>())
    }
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

/// A new client with its secret, which is shown this once and never again.
struct Created {
    client: Client,
    secret: ClientSecret,
}

impl Render for Created {
    fn human(&self) -> String {
        format!(
            "{}\nclient_secret: {}\nStore it now: it is shown only once.\n",
            self.client.human(),
            self.secret.expose()
        )
    }

    fn json(&self) -> serde_json::Value {
        let mut doc = self.client.json();
        doc["client_secret"] = json!(self.secret.expose());
        doc
    }
}

/// A client's new secret, and until when its previous one works.
struct NewSecret {
    client_id: String,
    secret: ClientSecret,
    previous_valid_until: i64,
}

impl Render for NewSecret {
    fn human(&self) -> String {
        format!(
            "client_secret: {}\nStore it now: it is shown only once. The previous secret works until {}.\n",
            self.secret.expose(),
            time(Some(self.previous_valid_until))
        )
    }

    fn json(&self) -> serde_json::Value {
        json!({
            "client_id": self.client_id,
            "client_secret": self.secret.expose(),
            "previous_secret_valid_until": self.previous_valid_until,
        })
    }
}

struct Deleted {
    client_id: String,
}

impl Render for Deleted {
    fn human(&self) -> String {
        format!("deleted client {}\n", self.client_id)
    }

    fn json(&self) -> serde_json::Value {
        json!({ "deleted": self.client_id })
    }
}

struct RevokedTokens {
    client_id: String,
    count: u64,
}

impl Render for RevokedTokens {
    fn human(&self) -> String {
        format!(
            "revoked {} refresh tokens of {}; its access tokens expire within their lifetime\n",
            self.count, self.client_id
        )
    }

    fn json(&self) -> serde_json::Value {
        json!({ "client_id": self.client_id, "revoked_refresh_tokens": self.count })
    }
}
