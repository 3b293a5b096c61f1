//! Admin operations on clients, tokens and the audit trail, as plain functions over the store,
//! shared by the CLI, the demo launcher and tests. Each one records its audit event in the same
//! transaction as its change. Signing-key operations live in [`crate::signing`].

use anyhow::Context;
use ring::rand::{SecureRandom, SystemRandom};
use shared_claims::{ClientId, PartnerId, ScopeSet};

use crate::secret::ClientSecret;
use crate::store::{AuditEvent, AuditRecord, Client, ClientUpdate, NewClient, Store};

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
    let audit = AuditEvent::by_admin(
        "client.create",
        serde_json::json!({
            "name": client.name,
            "partner_id": client.partner_id,
            "scopes": client.scopes,
            "audiences": client.audiences,
        }),
    )
    .about(Some(client.client_id.as_str()));
    let new = NewClient {
        client: client.clone(),
        secret_hash: secret.hash().to_vec(),
    };
    db.insert_client(&new, &audit).await?;
    Ok((client, secret))
}

fn parse_client_id(text: &str) -> anyhow::Result<ClientId> {
    anyhow::ensure!(
        text != crate::store::DECOY_CLIENT_ID,
        "'{text}' is not a client id"
    );
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
    let audit = AuditEvent::by_admin(
        "client.update",
        serde_json::json!({
            "name": update.name,
            "scopes": update.scopes,
            "access_token_ttl": update.access_token_ttl,
        }),
    )
    .about(Some(id.as_str()));
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
    let audit = AuditEvent::by_admin(action, serde_json::json!({})).about(Some(id.as_str()));
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
    let audit =
        AuditEvent::by_admin("client.delete", serde_json::json!({})).about(Some(id.as_str()));
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
    let audit = AuditEvent::new(
        actor,
        "client.secret_reset",
        crate::now(),
        serde_json::json!({}),
    )
    .about(Some(client_id.as_str()));
    db.replace_client_secrets(client_id.as_str(), &secret.hash(), crate::now(), &audit)
        .await?;
    Ok(secret)
}

/// Client-secret rotation: a new secret, shown once; the current one keeps working for
/// `grace_secs` (0 stops it at once, for a leaked secret), then stops.
pub async fn rotate_secret(
    db: &Store,
    client_id: &str,
    grace_secs: i64,
) -> anyhow::Result<(ClientSecret, i64)> {
    let id = parse_client_id(client_id)?;
    anyhow::ensure!(
        (0..=2_592_000).contains(&grace_secs),
        "--grace must be 0 to 2592000 seconds"
    );
    let secret = ClientSecret::generate()?;
    let audit = AuditEvent::by_admin(
        "client.rotate_secret",
        serde_json::json!({ "grace_secs": grace_secs }),
    )
    .about(Some(id.as_str()));
    let grace_until = audit.at + grace_secs;
    if !db
        .rotate_client_secret(id.as_str(), &secret.hash(), grace_until, &audit)
        .await?
    {
        return Err(no_such_client(&id));
    }
    Ok((secret, grace_until))
}

/// Revokes every refresh token of a client without disabling it (`tokens revoke --client`).
pub async fn revoke_client_tokens(db: &Store, client_id: &str) -> anyhow::Result<u64> {
    let id = parse_client_id(client_id)?;
    show_client(db, id.as_str()).await?;
    let audit =
        AuditEvent::by_admin("tokens.revoke", serde_json::json!({})).about(Some(id.as_str()));
    db.revoke_client_refresh_tokens(id.as_str(), audit.at, &audit)
        .await
}

pub async fn audit_trail(
    db: &Store,
    client_id: Option<&str>,
    limit: i64,
) -> anyhow::Result<Vec<AuditRecord>> {
    anyhow::ensure!((1..=10_000).contains(&limit), "--limit must be 1 to 10000");
    db.list_audit(client_id, limit).await
}
