//! `client …` and `tokens …`: partners' clients, their secrets and their refresh tokens.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use serde_json::json;
use shared_claims::PartnerId;

use super::render::{Render, Warned, table, time};
use crate::admin::{self, ClientAuth, ClientSpec, ScopeSpelling, TlsIdentity};
use crate::config::StoreArgs;
use crate::secret::ClientSecret;
use crate::store::{
    Client, ClientAuthMethod, ClientUpdate, KeySourceUpdate, NewCert, RegisteredCert, Store,
};

#[derive(Subcommand)]
pub enum ClientCommand {
    /// Create a client; a secret client's secret is printed once.
    Create(CreateArgs),
    /// List every client (never their secrets).
    List,
    /// Show one client, with its certificates' thumbprints and its key ids.
    Show {
        /// The client's id (`cl_…`).
        client_id: String,
    },
    /// Change a client's scopes, name, access-token lifetime, certificates or keys.
    Update(UpdateArgs),
    /// Issue a new secret, or API key (shown once); the old one works for --grace seconds more.
    RotateSecret {
        /// The client's id (`cl_…`).
        client_id: String,
        /// Seconds the current secret or key keeps working (0: stop it now, for a leaked one).
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
    /// How the client authenticates at the token endpoint; `api_key`: the client gets an API
    /// key for the partner API instead, and no tokens.
    #[arg(long, value_enum, default_value = "client_secret_basic")]
    auth_method: AuthMethodArg,
    /// tls_client_auth: the subject DN its CA-issued certificate carries, e.g.
    /// 'CN=acme-client,O=Acme,C=DE'.
    #[arg(long, conflicts_with = "tls_san")]
    tls_subject: Option<String>,
    /// tls_client_auth: a DNS name or URI its CA-issued certificate carries as a SAN.
    #[arg(long)]
    tls_san: Option<String>,
    /// self_signed_tls_client_auth: a PEM file of the client's certificate (no private key);
    /// repeat for several.
    #[arg(long = "cert-file", value_name = "PEM")]
    cert_file: Vec<PathBuf>,
    /// private_key_jwt: a JWKS file of the client's public keys.
    #[arg(long, value_name = "FILE", conflicts_with = "jwks_uri")]
    jwks_file: Option<PathBuf>,
    /// private_key_jwt: an https:// URL where the client publishes its public keys.
    #[arg(long, value_name = "URL")]
    jwks_uri: Option<String>,
}

/// `--auth-method` values, named as in RFC 7591 and RFC 8705.
#[derive(Clone, Copy, ValueEnum)]
#[value(rename_all = "snake_case")]
enum AuthMethodArg {
    ClientSecretBasic,
    ClientSecretPost,
    TlsClientAuth,
    SelfSignedTlsClientAuth,
    PrivateKeyJwt,
    ApiKey,
}

impl From<AuthMethodArg> for ClientAuthMethod {
    fn from(arg: AuthMethodArg) -> ClientAuthMethod {
        match arg {
            AuthMethodArg::ClientSecretBasic => ClientAuthMethod::ClientSecretBasic,
            AuthMethodArg::ClientSecretPost => ClientAuthMethod::ClientSecretPost,
            AuthMethodArg::TlsClientAuth => ClientAuthMethod::TlsClientAuth,
            AuthMethodArg::SelfSignedTlsClientAuth => ClientAuthMethod::SelfSignedTlsClientAuth,
            AuthMethodArg::PrivateKeyJwt => ClientAuthMethod::PrivateKeyJwt,
            AuthMethodArg::ApiKey => ClientAuthMethod::ApiKey,
        }
    }
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
    /// tls_client_auth: a new subject DN (replaces the registered DN or SAN).
    #[arg(long, conflicts_with = "tls_san")]
    tls_subject: Option<String>,
    /// tls_client_auth: a new SAN (replaces the registered DN or SAN).
    #[arg(long)]
    tls_san: Option<String>,
    /// self_signed_tls_client_auth: register one more certificate (PEM); both work until the
    /// old one is removed.
    #[arg(long, value_name = "PEM")]
    add_cert: Option<PathBuf>,
    /// self_signed_tls_client_auth: withdraw the certificate with this x5t#S256 thumbprint
    /// (see `client show`). Thumbprints are base64url and may begin with `-`.
    #[arg(long, value_name = "THUMBPRINT", allow_hyphen_values = true)]
    remove_cert: Option<String>,
    /// private_key_jwt: replace the client's keys with this JWKS file (publish the new key next
    /// to the old one for an overlap).
    #[arg(long, value_name = "FILE", conflicts_with = "jwks_uri")]
    jwks_file: Option<PathBuf>,
    /// private_key_jwt: fetch the client's keys from this https:// URL from now on.
    #[arg(long, value_name = "URL")]
    jwks_uri: Option<String>,
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
        ClientCommand::Show { client_id } => Box::new(show(db, &client_id).await?),
        ClientCommand::Update(args) => Box::new(update(db, args).await?),
        ClientCommand::RotateSecret { client_id, grace } => {
            Box::new(rotate_secret(db, store, client_id, grace).await?)
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

async fn create(
    db: &Store,
    store: &StoreArgs,
    args: CreateArgs,
) -> anyhow::Result<Warned<Created>> {
    let audiences = if args.audience.is_empty() {
        vec![store.default_audience.clone()]
    } else {
        args.audience.clone()
    };
    let auth = match client_auth(&args)? {
        Some(auth) => auth,
        None => ClientAuth::ApiKey(api_key_hash_key(db, store).await?),
    };
    let spec = ClientSpec {
        name: admin::parse_name(&args.name)?,
        partner_id: PartnerId::parse(&args.partner)?,
        scopes: admin::parse_scopes(&args.scopes, ScopeSpelling::SpaceSeparated)
            .map_err(|e| anyhow::anyhow!("--scopes: {e:#}"))?,
        audiences: audiences
            .iter()
            .map(|a| admin::parse_audience(a))
            .collect::<anyhow::Result<_>>()?,
        access_token_ttl: args.access_ttl.map(admin::parse_ttl).transpose()?,
        refresh_enabled: !args.no_refresh,
        introspect_allowed: args.introspect,
    };
    let warnings = admin::new_client_warnings(db, &spec).await?;
    let (client, secret) = admin::register_client(db, spec, auth).await?;
    let shown = shown(db, client).await?;
    Ok(Warned {
        result: Created { shown, secret },
        warnings,
    })
}

/// The API-key hash key, opened with the master key (created on first use).
async fn api_key_hash_key(db: &Store, store: &StoreArgs) -> anyhow::Result<keys::HashKey> {
    let master = super::keys::load_master(store)?;
    crate::api_key::hash_key(db, &master).await
}

/// What `--auth-method` needs, read and checked; options of another method are refused, so a
/// typo never creates a client that authenticates otherwise than intended. `None` for
/// `api_key`, whose hash key the caller opens.
fn client_auth(args: &CreateArgs) -> anyhow::Result<Option<ClientAuth>> {
    let method = ClientAuthMethod::from(args.auth_method);
    let tls = args.tls_subject.is_some() || args.tls_san.is_some();
    let refuse = |given: bool, option: &str, needs: &str| {
        anyhow::ensure!(!given, "{option} is for {needs} clients, not {method}");
        Ok(())
    };
    if method != ClientAuthMethod::TlsClientAuth {
        refuse(tls, "--tls-subject/--tls-san", "tls_client_auth")?;
    }
    if method != ClientAuthMethod::SelfSignedTlsClientAuth {
        refuse(
            !args.cert_file.is_empty(),
            "--cert-file",
            "self_signed_tls_client_auth",
        )?;
    }
    if method != ClientAuthMethod::PrivateKeyJwt {
        refuse(
            args.jwks_file.is_some() || args.jwks_uri.is_some(),
            "--jwks-file/--jwks-uri",
            "private_key_jwt",
        )?;
    }
    Ok(Some(match method {
        ClientAuthMethod::ApiKey => return Ok(None),
        ClientAuthMethod::ClientSecretBasic | ClientAuthMethod::ClientSecretPost => {
            ClientAuth::Secret(method)
        }
        ClientAuthMethod::TlsClientAuth => {
            ClientAuth::Tls(match (&args.tls_subject, &args.tls_san) {
                (Some(dn), None) => TlsIdentity::Subject(admin::parse_tls_subject(dn)?),
                (None, Some(san)) => TlsIdentity::San(admin::parse_tls_san(san)?),
                _ => anyhow::bail!(
                    "tls_client_auth needs --tls-subject DN or --tls-san VALUE (exactly one)"
                ),
            })
        }
        ClientAuthMethod::SelfSignedTlsClientAuth => {
            anyhow::ensure!(
                !args.cert_file.is_empty(),
                "self_signed_tls_client_auth needs --cert-file PEM (the client's certificate)"
            );
            let mut certs = Vec::new();
            for path in &args.cert_file {
                certs.extend(read_certs(path)?);
            }
            ClientAuth::SelfSignedTls(certs)
        }
        ClientAuthMethod::PrivateKeyJwt => ClientAuth::PrivateKeyJwt(
            key_source(args.jwks_file.as_deref(), args.jwks_uri.as_deref())?.ok_or_else(|| {
                anyhow::anyhow!("private_key_jwt needs --jwks-file FILE or --jwks-uri URL")
            })?,
        ),
    }))
}

/// The certificates of a PEM file, as they are registered.
fn read_certs(path: &Path) -> anyhow::Result<Vec<NewCert>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read certificate file {}", path.display()))?;
    admin::certs_from_pem(&text).with_context(|| format!("certificate file {}", path.display()))
}

/// The one certificate of an `--add-cert` file.
fn read_one_cert(path: &Path) -> anyhow::Result<NewCert> {
    let mut certs = read_certs(path)?;
    anyhow::ensure!(
        certs.len() == 1,
        "--add-cert takes a file with exactly one certificate"
    );
    Ok(certs.remove(0))
}

/// A key source from `--jwks-file` or `--jwks-uri`, checked.
fn key_source(file: Option<&Path>, uri: Option<&str>) -> anyhow::Result<Option<KeySourceUpdate>> {
    Ok(match (file, uri) {
        (Some(path), None) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read JWKS file {}", path.display()))?;
            crate::client_keys::parse_jwks(&text)
                .with_context(|| format!("JWKS file {}", path.display()))?;
            Some(KeySourceUpdate::Document(text))
        }
        (None, Some(uri)) => Some(KeySourceUpdate::Uri(admin::parse_jwks_uri(uri)?)),
        (None, None) => None,
        (Some(_), Some(_)) => anyhow::bail!("give --jwks-file or --jwks-uri, not both"),
    })
}

async fn update(db: &Store, args: UpdateArgs) -> anyhow::Result<Warned<Shown>> {
    let update = ClientUpdate {
        name: args.name.as_deref().map(admin::parse_name).transpose()?,
        scopes: args
            .scopes
            .as_deref()
            .map(|s| admin::parse_scopes(s, ScopeSpelling::SpaceSeparated))
            .transpose()
            .map_err(|e| anyhow::anyhow!("--scopes: {e:#}"))?,
        access_token_ttl: args
            .access_ttl
            .map(|t| admin::parse_ttl(t).map(Some))
            .transpose()?,
        tls_subject: args
            .tls_subject
            .as_deref()
            .map(admin::parse_tls_subject)
            .transpose()?,
        tls_san: args
            .tls_san
            .as_deref()
            .map(admin::parse_tls_san)
            .transpose()?,
        keys: key_source(args.jwks_file.as_deref(), args.jwks_uri.as_deref())?,
    };
    // Everything that can refuse the certificate change is checked before anything is written,
    // so a refused update changes nothing (`update_client` checks its part before writing).
    let new_cert = args.add_cert.as_deref().map(read_one_cert).transpose()?;
    if new_cert.is_some() || args.remove_cert.is_some() {
        admin::check_cert_change(
            db,
            &args.client_id,
            new_cert.as_ref(),
            args.remove_cert.as_deref(),
        )
        .await?;
    }
    // Looked at before the change, so that the client's own scopes are not counted.
    let warnings = match &update.scopes {
        Some(scopes) => admin::scope_change_warnings(db, &args.client_id, scopes).await?,
        None => Vec::new(),
    };
    let certs_only = update.name.is_none()
        && update.scopes.is_none()
        && update.access_token_ttl.is_none()
        && update.tls_subject.is_none()
        && update.tls_san.is_none()
        && update.keys.is_none()
        && (new_cert.is_some() || args.remove_cert.is_some());
    let mut client = if certs_only {
        admin::show_client(db, &args.client_id).await?
    } else {
        admin::update_client(db, &args.client_id, update).await?
    };
    // Add before remove: `--add-cert new.pem --remove-cert OLD` never leaves the client
    // without a certificate.
    if let Some(cert) = new_cert {
        client = admin::add_cert(db, &args.client_id, cert).await?;
    }
    if let Some(thumbprint) = &args.remove_cert {
        client = admin::remove_cert(db, &args.client_id, thumbprint).await?;
    }
    Ok(Warned {
        result: shown(db, client).await?,
        warnings,
    })
}

async fn show(db: &Store, client_id: &str) -> anyhow::Result<Shown> {
    shown(db, admin::show_client(db, client_id).await?).await
}

/// A client with its registered certificates and the ids of its registered keys.
async fn shown(db: &Store, client: Client) -> anyhow::Result<Shown> {
    let certs = admin::client_certs(db, &client.client_id).await?;
    let keys = client
        .jwks
        .as_deref()
        .map(crate::client_keys::parse_jwks)
        .transpose()
        .context("the stored JWKS")?
        .unwrap_or_default()
        .iter()
        .map(|k| ShownKey {
            kid: k.kid().map(str::to_owned),
            algs: k.algorithms().iter().map(|a| format!("{a:?}")).collect(),
            thumbprint: k.thumbprint().to_owned(),
        })
        .collect();
    Ok(Shown {
        client,
        certs,
        keys,
    })
}

async fn rotate_secret(
    db: &Store,
    store: &StoreArgs,
    client_id: String,
    grace: i64,
) -> anyhow::Result<NewSecret> {
    let is_api_key =
        admin::show_client(db, &client_id).await?.auth_method == ClientAuthMethod::ApiKey;
    let hash_key = match is_api_key {
        true => Some(api_key_hash_key(db, store).await?),
        false => None,
    };
    let (secret, previous_valid_until) =
        admin::rotate_secret(db, &client_id, grace, hash_key.as_ref()).await?;
    Ok(NewSecret {
        client_id,
        secret,
        previous_valid_until,
        is_api_key,
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
            "auth_method": self.auth_method,
            "tls_subject": self.tls_subject,
            "tls_san": self.tls_san,
            "jwks_uri": self.jwks_uri,
        })
    }
}

/// A registered key as `client show` prints it: never more than public identifiers.
struct ShownKey {
    kid: Option<String>,
    algs: Vec<String>,
    thumbprint: String,
}

/// `client show` and `client update`: the client, its certificates and its keys.
struct Shown {
    client: Client,
    certs: Vec<RegisteredCert>,
    keys: Vec<ShownKey>,
}

impl Render for Shown {
    fn human(&self) -> String {
        let c = &self.client;
        let mut out = self.client.human();
        out.push_str(&format!("auth method: {}\n", c.auth_method));
        if let Some(dn) = &c.tls_subject {
            out.push_str(&format!("certificate subject: {dn}\n"));
        }
        if let Some(san) = &c.tls_san {
            out.push_str(&format!("certificate SAN: {san}\n"));
        }
        if let Some(uri) = &c.jwks_uri {
            out.push_str(&format!("jwks_uri: {uri}\n"));
        }
        if !self.certs.is_empty() {
            let rows: Vec<Vec<String>> = self
                .certs
                .iter()
                .map(|cert| {
                    vec![
                        cert.thumbprint.clone(),
                        cert.subject.clone(),
                        time(Some(cert.not_after)),
                    ]
                })
                .collect();
            out.push('\n');
            out.push_str(&table(
                &["CERTIFICATE (x5t#S256)", "SUBJECT", "NOT AFTER"],
                &rows,
            ));
        }
        if c.jwks.is_some() {
            let rows: Vec<Vec<String>> = self
                .keys
                .iter()
                .map(|k| {
                    vec![
                        k.kid.clone().unwrap_or_else(|| "(none)".into()),
                        k.algs.join(" "),
                        k.thumbprint.clone(),
                    ]
                })
                .collect();
            out.push('\n');
            out.push_str(&table(&["KEY ID", "ALG", "THUMBPRINT"], &rows));
        }
        out
    }

    fn json(&self) -> serde_json::Value {
        let mut doc = self.client.json();
        doc["certs"] = json!(self.certs);
        doc["keys"] = json!(
            self.keys
                .iter()
                .map(|k| json!({ "kid": k.kid, "algs": k.algs, "thumbprint": k.thumbprint }))
                .collect::<Vec<_>>()
        );
        doc
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

/// A new client, with its secret if it has one, which is shown this once and never again.
struct Created {
    shown: Shown,
    secret: Option<ClientSecret>,
}

impl Render for Created {
    fn human(&self) -> String {
        match &self.secret {
            Some(secret) => format!(
                "{}\n{}: {}\nStore it now: it is shown only once.\n",
                self.shown.human(),
                credential_name(&self.shown.client),
                secret.expose()
            ),
            None => self.shown.human(),
        }
    }

    fn json(&self) -> serde_json::Value {
        let mut doc = self.shown.json();
        if let Some(secret) = &self.secret {
            doc[credential_name(&self.shown.client)] = json!(secret.expose());
        }
        doc
    }
}

/// What a client's shown-once credential is called: `api_key` or `client_secret`.
fn credential_name(client: &Client) -> &'static str {
    match client.auth_method {
        ClientAuthMethod::ApiKey => "api_key",
        _ => "client_secret",
    }
}

/// A client's new secret, and until when its previous one works.
struct NewSecret {
    client_id: String,
    secret: ClientSecret,
    previous_valid_until: i64,
    is_api_key: bool,
}

impl Render for NewSecret {
    fn human(&self) -> String {
        let (name, what) = match self.is_api_key {
            true => ("api_key", "key"),
            false => ("client_secret", "secret"),
        };
        format!(
            "{name}: {}\nStore it now: it is shown only once. The previous {what} works until {}.\n",
            self.secret.expose(),
            time(Some(self.previous_valid_until))
        )
    }

    fn json(&self) -> serde_json::Value {
        match self.is_api_key {
            true => json!({
                "client_id": self.client_id,
                "api_key": self.secret.expose(),
                "previous_key_valid_until": self.previous_valid_until,
            }),
            false => json!({
                "client_id": self.client_id,
                "client_secret": self.secret.expose(),
                "previous_secret_valid_until": self.previous_valid_until,
            }),
        }
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
