//! Clients as code: a TOML file declares partners' clients, `clients plan` shows what `clients
//! apply` would create, change and delete to make the clients the file manages match it, and
//! `clients apply` does exactly that in one transaction, with one audit event per change. The file
//! manages only the clients it created (`clients.managed_name`); it never holds secrets.

mod file;
mod plan;

use std::path::Path;

use crate::admin::{self, ClientAuth, ClientSpec, Held, TlsIdentity};
use crate::secret::ClientSecret;
use crate::store::{
    AuditEvent, Client, KeySourceUpdate, ManagedChange, ManagedClient, ManagedFields, Store,
};

pub use file::{ClientsFile, DesiredClient};
pub use plan::{FieldChange, Plan, PlannedCreate, PlannedDelete, PlannedUpdate};

/// What `clients apply` would do now (nothing is written), with the warnings it would give.
pub async fn plan(db: &Store, path: &Path, default_audience: &str) -> anyhow::Result<Plan> {
    let file = file::read(path, default_audience)?;
    let directory = db.list_clients().await?;
    let current = db.managed_clients().await?;
    let mut plan = plan::compute(&file, &current)?;
    plan.warnings = warnings(&file, &plan, &current, &directory);
    Ok(plan)
}

/// `admin::unfamiliar` for each client the plan creates (its partner and scopes) or changes
/// (the scopes it gains), each warning prefixed with the entry's key. The other clients are
/// the directory as the apply leaves it: the clients the file does not manage, and the file's
/// other entries (so two new clients of a new partner do not warn about each other).
///
/// `directory` is every stored client, read before the apply's transaction and used for
/// nothing but these warnings: the apply itself reads and decides over managed clients only.
fn warnings(
    file: &ClientsFile,
    plan: &Plan,
    current: &[ManagedClient],
    directory: &[Client],
) -> Vec<String> {
    let others_than = |name: &str| -> Vec<Held<'_>> {
        directory
            .iter()
            .filter(|c| !current.iter().any(|m| m.client.client_id == c.client_id))
            .map(Held::from)
            .chain(
                file.clients
                    .iter()
                    .filter(|d| d.name != name)
                    .map(|d| Held {
                        partner_id: &d.partner_id,
                        scopes: &d.scopes,
                    }),
            )
            .collect()
    };
    let mut warnings = Vec::new();
    for create in &plan.creates {
        let desired = &file.clients[create.desired];
        let found = admin::unfamiliar(
            Some(&desired.partner_id),
            desired.scopes.iter(),
            &others_than(&desired.name),
        );
        warnings.extend(
            found
                .into_iter()
                .map(|w| format!("clients.{}: {w}", desired.name)),
        );
    }
    for update in &plan.updates {
        let desired = &file.clients[update.desired];
        let held = &current[update.current].client.scopes;
        let gained = desired.scopes.iter().filter(|s| !held.contains(s.as_str()));
        let found = admin::unfamiliar(None, gained, &others_than(&desired.name));
        warnings.extend(
            found
                .into_iter()
                .map(|w| format!("clients.{}: {w}", desired.name)),
        );
    }
    warnings
}

/// A client an apply created, with its secret if it has one (shown once, never stored).
#[derive(Debug)]
pub struct CreatedClient {
    pub name: String,
    pub client_id: String,
    pub secret: Option<ClientSecret>,
}

/// What an apply did.
#[derive(Debug, Default)]
pub struct Applied {
    pub created: Vec<CreatedClient>,
    pub updated: Vec<PlannedUpdate>,
    pub deleted: Vec<PlannedDelete>,
    /// Partners and scopes no other client has, as the plan gave them.
    pub warnings: Vec<String>,
}

/// Makes the managed clients match the file, in one transaction whose plan is computed inside
/// it. An apply that would delete a client without `allow_delete` changes nothing at all.
pub async fn apply(
    db: &Store,
    path: &Path,
    default_audience: &str,
    allow_delete: bool,
) -> anyhow::Result<Applied> {
    // Everything the file names (certificates, JWKS documents) is read and checked before the
    // transaction begins: a refusal there leaves the database untouched, and the transaction
    // holds the write lock only while it writes.
    let file = file::read(path, default_audience)?;
    let directory = db.list_clients().await?;
    db.apply_managed_changes(|current| {
        let plan = plan::compute(&file, &current)?;
        let warnings = warnings(&file, &plan, &current, &directory);
        if !plan.deletes.is_empty() && !allow_delete {
            let names: Vec<String> = plan
                .deletes
                .iter()
                .map(|d| format!("{} ({})", d.name, d.client_id))
                .collect();
            anyhow::bail!(
                "apply would delete {} client(s) no longer in {}: {}; nothing was changed: run \
                 it again with --allow-delete to delete them",
                names.len(),
                file.path.display(),
                names.join(", ")
            );
        }
        let mut changes = Vec::new();
        let mut applied = Applied {
            warnings,
            ..Applied::default()
        };
        for create in &plan.creates {
            let desired = &file.clients[create.desired];
            let mut prepared = admin::prepare_client(spec(desired), desired.auth.clone())?;
            prepared.new.managed_name = Some(desired.name.clone());
            prepared.audit.detail["managed_name"] = desired.name.clone().into();
            applied.created.push(CreatedClient {
                name: desired.name.clone(),
                client_id: prepared.new.client.client_id.to_string(),
                secret: prepared.secret,
            });
            changes.push(ManagedChange::Create {
                new: prepared.new,
                audit: prepared.audit,
            });
        }
        for update in &plan.updates {
            let desired = &file.clients[update.desired];
            let held = &current[update.current].certs;
            let wanted: Vec<_> = match &desired.auth {
                ClientAuth::SelfSignedTls(certs) => certs.clone(),
                _ => Vec::new(),
            };
            let add_certs = wanted
                .iter()
                .filter(|w| !held.iter().any(|h| h.thumbprint == w.thumbprint))
                .cloned()
                .collect();
            let remove_certs = held
                .iter()
                .filter(|h| !wanted.iter().any(|w| w.thumbprint == h.thumbprint))
                .map(|h| h.thumbprint.clone())
                .collect();
            let audit = AuditEvent::by_admin(
                "client.update",
                serde_json::json!({ "managed_name": desired.name, "changes": update.changes }),
            )
            .about(Some(&update.client_id));
            changes.push(ManagedChange::Update {
                client_id: update.client_id.clone(),
                managed_name: desired.name.clone(),
                fields: fields(desired),
                add_certs,
                remove_certs,
                audit,
            });
        }
        for delete in &plan.deletes {
            let audit = AuditEvent::by_admin(
                "client.delete",
                serde_json::json!({ "managed_name": delete.name }),
            )
            .about(Some(&delete.client_id));
            changes.push(ManagedChange::Delete {
                client_id: delete.client_id.clone(),
                managed_name: delete.name.clone(),
                audit,
            });
        }
        applied.updated = plan.updates;
        applied.deleted = plan.deletes;
        Ok((changes, applied))
    })
    .await
}

fn spec(d: &DesiredClient) -> ClientSpec {
    ClientSpec {
        name: d.name.clone(),
        partner_id: d.partner_id.clone(),
        scopes: d.scopes.clone(),
        audiences: d.audiences.clone(),
        access_token_ttl: d.access_token_ttl,
        refresh_enabled: d.refresh_enabled,
        introspect_allowed: d.introspect_allowed,
    }
}

/// Every field the entry sets, to be written over the stored client.
fn fields(d: &DesiredClient) -> ManagedFields {
    let mut fields = ManagedFields {
        name: d.name.clone(),
        scopes: d.scopes.to_string(),
        audiences: d.audiences.clone(),
        access_token_ttl: d.access_token_ttl,
        refresh_enabled: d.refresh_enabled,
        introspect_allowed: d.introspect_allowed,
        auth_method: d.auth.method().as_str(),
        tls_subject: None,
        tls_san: None,
        jwks: None,
        jwks_uri: None,
    };
    match &d.auth {
        ClientAuth::Secret(_) | ClientAuth::SelfSignedTls(_) | ClientAuth::ApiKey(_) => {}
        ClientAuth::Tls(TlsIdentity::Subject(dn)) => fields.tls_subject = Some(dn.clone()),
        ClientAuth::Tls(TlsIdentity::San(san)) => fields.tls_san = Some(san.clone()),
        ClientAuth::PrivateKeyJwt(KeySourceUpdate::Document(doc)) => {
            fields.jwks = Some(doc.clone())
        }
        ClientAuth::PrivateKeyJwt(KeySourceUpdate::Uri(uri)) => fields.jwks_uri = Some(uri.clone()),
    }
    fields
}
