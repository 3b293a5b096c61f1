//! Admin operations, as plain functions over the store, shared by the CLI, the demo launcher and
//! tests. Each one records its audit event in the same transaction as its change.

use anyhow::Context;
use keys::{Algorithm, MasterKey};
use ring::rand::{SecureRandom, SystemRandom};
use shared_claims::{ClientId, PartnerId, ScopeSet};

use crate::keyring;
use crate::secret::ClientSecret;
use crate::store::{
    AuditEvent, AuditRecord, Client, ClientUpdate, NewClient, SigningKeyRow, Store,
};

/// Who performs admin actions from the command line, as recorded in the audit trail.
pub const CLI_ACTOR: &str = "cli";

/// A client to create; every field already parsed.
#[derive(Debug, Clone)]
pub struct ClientSpec {
    pub name: String,
    pub partner_id: PartnerId,
    pub scopes: ScopeSet,
    pub audiences: Vec<String>,
    pub access_token_ttl: Option<i64>,
    pub refresh_enabled: bool,
    pub introspect_allowed: bool,
}

/// Validates a client's display name: printable, bounded.
pub fn parse_name(name: &str) -> anyhow::Result<String> {
    let name = name.trim();
    anyhow::ensure!(
        !name.is_empty() && name.len() <= 100,
        "client name must be 1 to 100 characters"
    );
    anyhow::ensure!(
        !name.chars().any(char::is_control),
        "client name must not contain control characters"
    );
    Ok(name.to_owned())
}

/// Validates an audience value (a name or URI; no whitespace, bounded).
pub fn parse_audience(aud: &str) -> anyhow::Result<String> {
    anyhow::ensure!(
        !aud.is_empty()
            && aud.len() <= 200
            && !aud.chars().any(|c| c.is_whitespace() || c.is_control()),
        "audience must be 1 to 200 characters without spaces"
    );
    Ok(aud.to_owned())
}

/// Validates an access-token lifetime override.
pub fn parse_ttl(secs: i64) -> anyhow::Result<i64> {
    anyhow::ensure!(
        (1..=86_400).contains(&secs),
        "access-token lifetime must be 1 to 86400 seconds"
    );
    Ok(secs)
}

fn event(action: &str, client_id: Option<&ClientId>, detail: serde_json::Value) -> AuditEvent {
    AuditEvent {
        at: crate::now(),
        actor: CLI_ACTOR.into(),
        action: action.into(),
        client_id: client_id.map(|id| id.as_str().to_owned()),
        source_ip: None,
        detail,
    }
}

fn new_client_id() -> anyhow::Result<ClientId> {
    let mut bytes = [0u8; 10];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| anyhow::anyhow!("the system random number generator failed"))?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok(ClientId::parse(&format!("cl_{hex}"))?)
}

/// Creates a client and its first secret, which is returned to be shown once.
pub async fn create_client(db: &Store, spec: ClientSpec) -> anyhow::Result<(Client, ClientSecret)> {
    let now = crate::now();
    let secret = ClientSecret::generate()?;
    let client = Client {
        client_id: new_client_id()?,
        name: spec.name,
        partner_id: spec.partner_id,
        scopes: spec.scopes,
        audiences: spec.audiences,
        access_token_ttl: spec.access_token_ttl,
        refresh_enabled: spec.refresh_enabled,
        introspect_allowed: spec.introspect_allowed,
        disabled_at: None,
        created_at: now,
        updated_at: now,
    };
    let audit = event(
        "client.create",
        Some(&client.client_id),
        serde_json::json!({
            "name": client.name,
            "partner_id": client.partner_id,
            "scopes": client.scopes,
            "audiences": client.audiences,
        }),
    );
    let new = NewClient {
        client: client.clone(),
        secret_hash: secret.hash().to_vec(),
    };
    db.insert_client(&new, &audit).await?;
    Ok((client, secret))
}

fn parse_client_id(text: &str) -> anyhow::Result<ClientId> {
    ClientId::parse(text).with_context(|| format!("'{text}' is not a client id"))
}

fn no_such_client(id: &ClientId) -> anyhow::Error {
    anyhow::anyhow!("no client with id {id}")
}

pub async fn show_client(db: &Store, client_id: &str) -> anyhow::Result<Client> {
    let id = parse_client_id(client_id)?;
    db.get_client(id.as_str())
        .await?
        .ok_or_else(|| no_such_client(&id))
}

pub async fn update_client(
    db: &Store,
    client_id: &str,
    update: ClientUpdate,
) -> anyhow::Result<Client> {
    let id = parse_client_id(client_id)?;
    anyhow::ensure!(
        update.name.is_some() || update.scopes.is_some() || update.access_token_ttl.is_some(),
        "nothing to update: give --name, --scopes or --access-ttl"
    );
    let audit = event(
        "client.update",
        Some(&id),
        serde_json::json!({
            "name": update.name,
            "scopes": update.scopes,
            "access_token_ttl": update.access_token_ttl,
        }),
    );
    if !db
        .update_client(id.as_str(), &update, crate::now(), &audit)
        .await?
    {
        return Err(no_such_client(&id));
    }
    show_client(db, id.as_str()).await
}

pub async fn set_disabled(db: &Store, client_id: &str, disabled: bool) -> anyhow::Result<Client> {
    let id = parse_client_id(client_id)?;
    let now = crate::now();
    let action = if disabled {
        "client.disable"
    } else {
        "client.enable"
    };
    let audit = event(action, Some(&id), serde_json::json!({}));
    if !db
        .set_client_disabled(id.as_str(), disabled.then_some(now), now, &audit)
        .await?
    {
        return Err(no_such_client(&id));
    }
    show_client(db, id.as_str()).await
}

pub async fn delete_client(db: &Store, client_id: &str) -> anyhow::Result<()> {
    let id = parse_client_id(client_id)?;
    let audit = event("client.delete", Some(&id), serde_json::json!({}));
    if !db.delete_client(id.as_str(), &audit).await? {
        return Err(no_such_client(&id));
    }
    Ok(())
}

/// Replaces all of a client's secrets with a fresh one, returned to be shown once.
pub async fn reset_secret(
    db: &Store,
    client_id: &ClientId,
    actor: &str,
) -> anyhow::Result<ClientSecret> {
    let secret = ClientSecret::generate()?;
    let mut audit = event(
        "client.secret_reset",
        Some(client_id),
        serde_json::json!({}),
    );
    audit.actor = actor.to_owned();
    db.replace_client_secrets(client_id.as_str(), &secret.hash(), crate::now(), &audit)
        .await?;
    Ok(secret)
}

/// Makes a new active signing key and retires the current one. (The full pending/active/retired
/// rotation with its safety checks is a later issue; the schema already carries the states.)
pub async fn rotate_key(
    db: &Store,
    master: &MasterKey,
    alg: Algorithm,
) -> anyhow::Result<SigningKeyRow> {
    let row = keyring::new_key_row(alg, master, crate::now())?;
    // The master key must open the keys already stored, or the database would end up with keys
    // sealed under two different master keys.
    for existing in db.list_signing_keys().await? {
        if existing.state == "active" {
            keyring::open_key(&existing, master)?;
        }
    }
    let audit = event(
        "key.rotate",
        None,
        serde_json::json!({ "kid": row.kid, "alg": row.alg }),
    );
    db.activate_new_key(&row, false, &audit).await?;
    Ok(row)
}

pub async fn audit_trail(
    db: &Store,
    client_id: Option<&str>,
    limit: i64,
) -> anyhow::Result<Vec<AuditRecord>> {
    anyhow::ensure!((1..=10_000).contains(&limit), "--limit must be 1 to 10000");
    db.list_audit(client_id, limit).await
}
