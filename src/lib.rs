//! The local demo launcher: `cargo run --release` starts the system on the embedded default and
//! prints credentials that work, so a first look takes one command.

use auth_server::admin::{self, ClientSpec};
use auth_server::secret::ClientSecret;
use auth_server::store::{Client, Store};
use shared_claims::{PartnerId, ScopeSet};

/// The name that marks the demo client, so a rerun finds it again.
pub const DEMO_CLIENT_NAME: &str = "demo (created by cargo run)";

/// Finds the demo client of partner `acme`, creating it on first run, and gives it a fresh secret.
/// A stored secret exists only as a hash, so the only way to show a working one again is a new
/// one; this is a local demo convenience, audited like any admin action.
pub async fn ensure_demo_client(
    db: &Store,
    audience: &str,
) -> anyhow::Result<(Client, ClientSecret)> {
    let existing = db
        .list_clients()
        .await?
        .into_iter()
        .find(|c| c.name == DEMO_CLIENT_NAME);
    match existing {
        Some(client) => {
            let secret = admin::reset_secret(db, &client.client_id, "demo-launcher").await?;
            Ok((client, secret))
        }
        None => {
            let spec = ClientSpec {
                name: DEMO_CLIENT_NAME.into(),
                partner_id: PartnerId::parse("acme")?,
                scopes: ScopeSet::parse("catalog:read inventory:read orders:read invoices:read")
                    .map_err(|e| anyhow::anyhow!("demo scopes: {e}"))?,
                audiences: vec![audience.to_owned()],
                access_token_ttl: None,
                refresh_enabled: true,
                introspect_allowed: false,
            };
            admin::create_client(db, spec).await
        }
    }
}

/// The ready-to-paste command that fetches a token with the demo credentials.
pub fn curl_command(token_url: &str, client: &Client, secret: &ClientSecret) -> String {
    format!(
        "curl -s -u '{}:{}' -d grant_type=client_credentials {token_url}",
        client.client_id,
        secret.expose()
    )
}
