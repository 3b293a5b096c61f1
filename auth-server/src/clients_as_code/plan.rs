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
    /// Partners and scopes of created or changed clients that no other client has (filled in
    /// by [`super::plan`], which reads the whole directory; `compute` sees managed clients only).
    pub warnings: Vec<String>,
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

/// A client's managed fields, from the file or from the database, before they become text.
struct Values<'a> {
    name: &'a str,
    scopes: String,
    audiences: &'a [String],
    ttl: Option<i64>,
    refresh: bool,
    introspect: bool,
    auth_method: &'static str,
    tls_subject: Option<&'a str>,
    tls_san: Option<&'a str>,
    certs: BTreeSet<&'a str>,
    jwks: Option<&'a str>,
    jwks_uri: Option<&'a str>,
}

/// The fields the file sets, in a fixed order, as text; `partner` and the kind of auth method
/// are checked before (they cannot change in place).
fn desired_fields(d: &DesiredClient) -> Vec<Field> {
    let mut values = Values {
        name: &d.name,
        scopes: d.scopes.to_string(),
        audiences: &d.audiences,
        ttl: d.access_token_ttl,
        refresh: d.refresh_enabled,
        introspect: d.introspect_allowed,
        auth_method: d.auth.method().as_str(),
        tls_subject: None,
        tls_san: None,
        certs: BTreeSet::new(),
        jwks: None,
        jwks_uri: None,
    };
    match &d.auth {
        ClientAuth::Secret(_) | ClientAuth::ApiKey(_) => {}
        ClientAuth::Tls(TlsIdentity::Subject(dn)) => values.tls_subject = Some(dn),
        ClientAuth::Tls(TlsIdentity::San(san)) => values.tls_san = Some(san),
        ClientAuth::SelfSignedTls(certs) => {
            values.certs = certs.iter().map(|c| c.thumbprint.as_str()).collect();
        }
        ClientAuth::PrivateKeyJwt(KeySourceUpdate::Document(doc)) => values.jwks = Some(doc),
        ClientAuth::PrivateKeyJwt(KeySourceUpdate::Uri(uri)) => values.jwks_uri = Some(uri),
    }
    values.fields()
}

fn current_fields(m: &ManagedClient) -> Vec<Field> {
    let c = &m.client;
    Values {
        name: &c.name,
        scopes: c.scopes.to_string(),
        audiences: &c.audiences,
        ttl: c.access_token_ttl,
        refresh: c.refresh_enabled,
        introspect: c.introspect_allowed,
        auth_method: c.auth_method.as_str(),
        tls_subject: c.tls_subject.as_deref(),
        tls_san: c.tls_san.as_deref(),
        certs: m.certs.iter().map(|c| c.thumbprint.as_str()).collect(),
        jwks: c.jwks.as_deref(),
        jwks_uri: c.jwks_uri.as_deref(),
    }
    .fields()
}

impl Values<'_> {
    fn fields(self) -> Vec<Field> {
        let text = |value: Option<&str>| value.unwrap_or_default().to_owned();
        let jwks_value = self
            .jwks
            .map(|doc| serde_json::from_str(doc).unwrap_or(serde_json::Value::Null));
        vec![
            field("name", self.name.to_owned()),
            field("scopes", self.scopes),
            field("audiences", self.audiences.join(" ")),
            field(
                "access_ttl",
                self.ttl
                    .map_or_else(|| "default".to_owned(), |t| t.to_string()),
            ),
            field("refresh", self.refresh.to_string()),
            field("introspect", self.introspect.to_string()),
            field("auth_method", self.auth_method.to_owned()),
            field("tls_subject", text(self.tls_subject)),
            field("tls_san", text(self.tls_san)),
            field(
                "certificates",
                self.certs.into_iter().collect::<Vec<_>>().join(" "),
            ),
            Field {
                name: "jwks",
                shown: self.jwks.map(key_summary).unwrap_or_default(),
                compared: Some(jwks_value.unwrap_or(serde_json::Value::Null)),
            },
            field("jwks_uri", text(self.jwks_uri)),
        ]
    }
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::client_keys::test_keys::PartnerKey;
    use crate::clients_as_code::file;
    use crate::store::RegisteredCert;

    /// The file `text` (with `extra` files beside it), read as `clients apply` reads it.
    fn read(text: &str, extra: &[(&str, String)]) -> ClientsFile {
        let dir = tempfile::tempdir().unwrap();
        for (name, content) in extra {
            std::fs::write(dir.path().join(name), content).unwrap();
        }
        let path = dir.path().join("clients.toml");
        std::fs::write(&path, text).unwrap();
        file::read(&path, "partner-api").unwrap()
    }

    /// The managed client that applying `file`'s entry would have stored.
    fn stored(file: &ClientsFile) -> Vec<ManagedClient> {
        file.clients
            .iter()
            .map(|d| {
                let prepared = crate::admin::prepare_client(
                    crate::admin::ClientSpec {
                        name: d.name.clone(),
                        partner_id: d.partner_id.clone(),
                        scopes: d.scopes.clone(),
                        audiences: d.audiences.clone(),
                        access_token_ttl: d.access_token_ttl,
                        refresh_enabled: d.refresh_enabled,
                        introspect_allowed: d.introspect_allowed,
                    },
                    d.auth.clone(),
                )
                .unwrap();
                ManagedClient {
                    managed_name: d.name.clone(),
                    certs: prepared
                        .new
                        .certs
                        .iter()
                        .map(|c| RegisteredCert {
                            thumbprint: c.thumbprint.clone(),
                            subject: c.subject.clone(),
                            not_after: c.not_after,
                            created_at: 0,
                        })
                        .collect(),
                    client: prepared.new.client,
                }
            })
            .collect()
    }

    const HEAD: &str = "[clients.k]\npartner = \"acme\"\nscopes = [\"a\"]\n\
                        auth_method = \"private_key_jwt\"\njwks_file = \"keys.json\"\n";

    #[test]
    fn a_jwks_document_is_compared_by_its_content_not_its_text() {
        let (one, two) = (PartnerKey::ed25519(), PartnerKey::es256());
        let jwk = one.jwk(Some("k1"), json!({}));
        let compact = json!({ "keys": [jwk] }).to_string();
        let current = stored(&read(HEAD, &[("keys.json", compact)]));
        // The same document, pretty-printed: nothing to do.
        let pretty = serde_json::to_string_pretty(&json!({ "keys": [jwk] })).unwrap();
        let plan = compute(&read(HEAD, &[("keys.json", pretty)]), &current).unwrap();
        assert!(plan.is_empty(), "{plan:?}");
        // A second key: a change of `jwks`, shown by thumbprints.
        let both = json!({ "keys": [jwk, two.jwk(Some("k2"), json!({}))] }).to_string();
        let plan = compute(&read(HEAD, &[("keys.json", both)]), &current).unwrap();
        let [update] = &plan.updates[..] else {
            panic!("{plan:?}");
        };
        let [change] = &update.changes[..] else {
            panic!("{update:?}");
        };
        assert_eq!(change.field, "jwks");
        assert!(change.from.starts_with("keys ") && change.to.contains(&change.from[5..]));
        assert_eq!(change.to.split(' ').count(), 3, "{change:?}");
        // The same key under another kid: a change, said to be one.
        let renamed = json!({ "keys": [one.jwk(Some("k9"), json!({}))] }).to_string();
        let plan = compute(&read(HEAD, &[("keys.json", renamed)]), &current).unwrap();
        assert_eq!(
            plan.updates[0].changes[0].to,
            format!(
                "{} (other members changed)",
                plan.updates[0].changes[0].from
            )
        );
    }

    #[test]
    fn every_managed_field_that_differs_is_one_change_and_the_rest_are_none() {
        let file = read(
            "[clients.c]\npartner = \"acme\"\nscopes = [\"a\", \"b\"]\n\
             audiences = [\"x\", \"y\"]\naccess_ttl = 60\nrefresh = false\nintrospect = true\n",
            &[],
        );
        let mut current = stored(&file);
        assert!(compute(&file, &current).unwrap().is_empty());
        let client = &mut current[0].client;
        client.audiences.reverse();
        client.access_token_ttl = None;
        client.refresh_enabled = true;
        let plan = compute(&file, &current).unwrap();
        let changes: Vec<(&str, &str, &str)> = plan.updates[0]
            .changes
            .iter()
            .map(|c| (c.field, c.from.as_str(), c.to.as_str()))
            .collect();
        assert_eq!(
            changes,
            [
                ("audiences", "y x", "x y"),
                ("access_ttl", "default", "60"),
                ("refresh", "true", "false"),
            ]
        );
        // A managed client without an entry is deleted; an entry without a client, created.
        current[0].managed_name = "other".into();
        let plan = compute(&file, &current).unwrap();
        assert_eq!(
            (
                plan.creates.len(),
                plan.updates.len(),
                plan.deletes[0].name.as_str()
            ),
            (1, 0, "other")
        );
    }
}
