//! The local demo launcher: `cargo run --release` starts the token service and the partner API on
//! the embedded default, with a demo client per seeded partner, and prints commands that work.

use auth_server::admin::{self, ClientSpec};
use auth_server::config::{ServeArgs, StoreArgs};
use auth_server::secret::ClientSecret;
use auth_server::store::{Client, Store};
use resource_api::config::ResourceArgs;
use shared_claims::{PartnerId, ScopeSet};

/// The launcher's options: every AUTH_* and RESOURCE_* setting of both services.
#[derive(clap::Parser)]
#[command(
    name = "partner-platform",
    about = "Runs the token service and the partner API locally with demo clients"
)]
pub struct LauncherArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub serve: ServeArgs,
    #[command(flatten)]
    pub resource: ResourceArgs,
    #[command(flatten)]
    pub log: edge::logging::LogArgs,
}

/// The seeded partners and the scopes their demo clients get: different on purpose, so that the
/// printed commands show both a granted route and a refused one.
pub const DEMO_PARTNERS: [(&str, &str); 3] = [
    (
        "acme",
        "catalog:read inventory:read orders:read invoices:read",
    ),
    ("globex", "catalog:read orders:read"),
    ("initech", "catalog:read invoices:read"),
];

/// The name that marks a partner's demo client, so a rerun finds it again.
pub fn demo_client_name(partner: &str) -> String {
    format!("demo {partner} (created by cargo run)")
}

/// Finds the demo client of `partner`, creating it on first run, and gives it a fresh secret.
/// A stored secret exists only as a hash, so the only way to show a working one again is a new
/// one; this is a local demo convenience, audited like any admin action.
pub async fn ensure_demo_client(
    db: &Store,
    partner: &str,
    scopes: &str,
    audience: &str,
) -> anyhow::Result<(Client, ClientSecret)> {
    let name = demo_client_name(partner);
    let existing = db
        .list_clients()
        .await?
        .into_iter()
        .find(|c| c.name == name);
    match existing {
        Some(client) => {
            let secret = admin::reset_secret(db, &client.client_id, "demo-launcher").await?;
            Ok((client, secret))
        }
        None => {
            let spec = ClientSpec {
                name,
                partner_id: PartnerId::parse(partner)?,
                scopes: ScopeSet::parse(scopes).map_err(|e| anyhow::anyhow!("demo scopes: {e}"))?,
                audiences: vec![audience.to_owned()],
                access_token_ttl: None,
                refresh_enabled: true,
                introspect_allowed: false,
            };
            admin::create_client(db, spec).await
        }
    }
}

/// The ready-to-paste command that fetches a token with a client's credentials.
pub fn curl_token(token_url: &str, client: &Client, secret: &ClientSecret) -> String {
    format!(
        "curl -s -u '{}:{}' -d grant_type=client_credentials {token_url}",
        client.client_id,
        secret.expose()
    )
}

/// Commands that fetch a token into `$TOKEN` and call the partner API with it (plain `sed`, so no
/// JSON tool needs installing).
pub fn curl_session(
    token_url: &str,
    api_url: &str,
    client: &Client,
    secret: &ClientSecret,
    paths: &[&str],
) -> String {
    let mut out = format!(
        "TOKEN=$({} | sed -E 's/.*\"access_token\":\"([^\"]+)\".*/\\1/')\n",
        curl_token(token_url, client, secret)
    );
    for path in paths {
        out.push_str(&format!(
            "curl -s -w '\\n' -H \"Authorization: Bearer $TOKEN\" {api_url}{path}\n"
        ));
    }
    out
}
