//! The plan: what an apply would create, change (field by field) and delete, decided by a pure
//! function of the file and the managed clients as stored.

use std::collections::BTreeSet;

use crate::admin::{ClientAuth, TlsIdentity};
use crate::store::{KeySourceUpdate, ManagedClient};

use super::file::{ClientsFile, DesiredClient};

/// One field whose stored value differs from the file's, as the plan shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldChange {
    pub field: &'static str,
    pub from: String,
    pub to: String,
}

/// An entry with no client yet.
#[derive(Debug, Clone)]
pub struct PlannedCreate {
    /// Index into the file's clients.
    pub desired: usize,
    pub name: String,
    /// The new client's fields, as `field: value` lines.
    pub fields: Vec<(&'static str, String)>,
}

/// An entry whose client differs from it.
#[derive(Debug, Clone)]
pub struct PlannedUpdate {
    pub desired: usize,
    /// Index into the managed clients.
    pub current: usize,
    pub name: String,
    pub client_id: String,
    pub changes: Vec<FieldChange>,
}

/// A managed client whose entry is gone.
#[derive(Debug, Clone)]
pub struct PlannedDelete {
    pub current: usize,
    pub name: String,
    pub client_id: String,
}

/// Everything an apply of the file would do; empty when the clients match it.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub creates: Vec<PlannedCreate>,
    pub updates: Vec<PlannedUpdate>,
    pub deletes: Vec<PlannedDelete>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.creates.is_empty() && self.updates.is_empty() && self.deletes.is_empty()
    }
}

/// Compares the file with the managed clients. A change that cannot be made in place (another
/// partner, another kind of auth method) is refused, naming the entry's line: a client keeps its
/// id, so such a change is a new client, which a new entry name makes.
pub fn compute(file: &ClientsFile, current: &[ManagedClient]) -> anyhow::Result<Plan> {
    let mut plan = Plan::default();
    for (d, desired) in file.clients.iter().enumerate() {
        let Some(c) = current.iter().position(|m| m.managed_name == desired.name) else {
            plan.creates.push(PlannedCreate {
                desired: d,
                name: desired.name.clone(),
                fields: created_fields(desired),
            });
            continue;
        };
        let managed = &current[c];
        let client = &managed.client;
        let name = &desired.name;
        if client.partner_id != desired.partner_id {
            return Err(file.at_line(
                desired.partner_line,
                format!(
                    "clients.{name}.partner: client {} belongs to partner {}, and a client's \
                     partner cannot change; give the entry a new name: apply then creates a new \
                     client for {} (and, with --allow-delete, deletes {})",
                    client.client_id, client.partner_id, desired.partner_id, client.client_id
                ),
            ));
        }
        let method = desired.auth.method();
        let same_family = client.auth_method.uses_secret() && method.uses_secret();
        if client.auth_method != method && !same_family {
            return Err(file.at_line(
                desired.auth_method_line,
                format!(
                    "clients.{name}.auth_method: client {} uses {}, and it cannot change to {} in \
                     place (its credentials are of another kind); give the entry a new name: \
                     apply then creates a new client (and, with --allow-delete, deletes {})",
                    client.client_id, client.auth_method, method, client.client_id
                ),
            ));
        }
        let changes = changes(desired, managed);
        if !changes.is_empty() {
            plan.updates.push(PlannedUpdate {
                desired: d,
                current: c,
                name: name.clone(),
                client_id: client.client_id.to_string(),
                changes,
            });
        }
    }
    for (c, managed) in current.iter().enumerate() {
        if !file.clients.iter().any(|d| d.name == managed.managed_name) {
            plan.deletes.push(PlannedDelete {
                current: c,
                name: managed.managed_name.clone(),
                client_id: managed.client.client_id.to_string(),
            });
        }
    }
    Ok(plan)
}

/// A field as compared: what the plan shows, and (for a JWKS document, whose text may differ
/// without its keys differing) what is compared when that is not the shown text.
struct Field {
    name: &'static str,
    shown: String,
    compared: Option<serde_json::Value>,
}

fn field(name: &'static str, shown: String) -> Field {
    Field {
        name,
        shown,
        compared: None,
    }
}

/// The fields the file sets, in a fixed order, as text; `partner` and the kind of auth method
/// are checked before (they cannot change in place).
fn desired_fields(d: &DesiredClient) -> Vec<Field> {
    let (tls_subject, tls_san, certs, jwks, jwks_uri) = match &d.auth {
        ClientAuth::Secret(_) => (None, None, BTreeSet::new(), None, None),
        ClientAuth::Tls(TlsIdentity::Subject(dn)) => {
            (Some(dn.clone()), None, BTreeSet::new(), None, None)
        }
        ClientAuth::Tls(TlsIdentity::San(san)) => {
            (None, Some(san.clone()), BTreeSet::new(), None, None)
        }
        ClientAuth::SelfSignedTls(certs) => (
            None,
            None,
            certs.iter().map(|c| c.thumbprint.clone()).collect(),
            None,
            None,
        ),
        ClientAuth::PrivateKeyJwt(KeySourceUpdate::Document(doc)) => {
            (None, None, BTreeSet::new(), Some(doc.as_str()), None)
        }
        ClientAuth::PrivateKeyJwt(KeySourceUpdate::Uri(uri)) => {
            (None, None, BTreeSet::new(), None, Some(uri.clone()))
        }
    };
    fields(
        &d.name,
        &d.scopes.to_string(),
        &d.audiences,
        d.access_token_ttl,
        d.refresh_enabled,
        d.introspect_allowed,
        d.auth.method().as_str(),
        [tls_subject, tls_san],
        certs,
        jwks,
        jwks_uri,
    )
}

fn current_fields(m: &ManagedClient) -> Vec<Field> {
    let c = &m.client;
    fields(
        &c.name,
        &c.scopes.to_string(),
        &c.audiences,
        c.access_token_ttl,
        c.refresh_enabled,
        c.introspect_allowed,
        c.auth_method.as_str(),
        [c.tls_subject.clone(), c.tls_san.clone()],
        m.certs.iter().map(|c| c.thumbprint.clone()).collect(),
        c.jwks.as_deref(),
        c.jwks_uri.clone(),
    )
}

#[allow(clippy::too_many_arguments)]
fn fields(
    name: &str,
    scopes: &str,
    audiences: &[String],
    ttl: Option<i64>,
    refresh: bool,
    introspect: bool,
    auth_method: &str,
    [tls_subject, tls_san]: [Option<String>; 2],
    certs: BTreeSet<String>,
    jwks: Option<&str>,
    jwks_uri: Option<String>,
) -> Vec<Field> {
    let jwks_value = jwks.map(|doc| serde_json::from_str(doc).unwrap_or(serde_json::Value::Null));
    vec![
        field("name", name.to_owned()),
        field("scopes", scopes.to_owned()),
        field("audiences", audiences.join(" ")),
        field(
            "access_ttl",
            ttl.map_or_else(|| "default".to_owned(), |t| t.to_string()),
        ),
        field("refresh", refresh.to_string()),
        field("introspect", introspect.to_string()),
        field("auth_method", auth_method.to_owned()),
        field("tls_subject", tls_subject.unwrap_or_default()),
        field("tls_san", tls_san.unwrap_or_default()),
        field(
            "certificates",
            certs.into_iter().collect::<Vec<_>>().join(" "),
        ),
        Field {
            name: "jwks",
            shown: jwks.map(key_summary).unwrap_or_default(),
            compared: Some(jwks_value.unwrap_or(serde_json::Value::Null)),
        },
        field("jwks_uri", jwks_uri.unwrap_or_default()),
    ]
}

/// A JWKS document as the plan shows it: its keys' RFC 7638 thumbprints.
fn key_summary(doc: &str) -> String {
    match crate::client_keys::parse_jwks(doc) {
        Ok(keys) => {
            let mut thumbprints: Vec<&str> = keys.iter().map(|k| k.thumbprint()).collect();
            thumbprints.sort_unstable();
            format!("keys {}", thumbprints.join(" "))
        }
        Err(_) => "(unreadable document)".to_owned(),
    }
}

fn changes(desired: &DesiredClient, current: &ManagedClient) -> Vec<FieldChange> {
    desired_fields(desired)
        .into_iter()
        .zip(current_fields(current))
        .filter_map(|(to, from)| {
            let differs = match (&to.compared, &from.compared) {
                (Some(a), Some(b)) => a != b,
                _ => to.shown != from.shown,
            };
            differs.then(|| {
                let mut to_shown = to.shown;
                if to_shown == from.shown {
                    // Same keys, other members (kid, alg, use).
                    to_shown.push_str(" (other members changed)");
                }
                FieldChange {
                    field: to.name,
                    from: from.shown,
                    to: to_shown,
                }
            })
        })
        .collect()
}

/// What a new client's entry sets, for the plan's `+ create` lines.
fn created_fields(d: &DesiredClient) -> Vec<(&'static str, String)> {
    let mut out = vec![("partner", d.partner_id.to_string())];
    out.extend(
        desired_fields(d)
            .into_iter()
            .filter(|f| f.name != "name" && !f.shown.is_empty())
            .map(|f| (f.name, f.shown)),
    );
    out
}
