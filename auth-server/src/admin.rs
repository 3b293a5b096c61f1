//! Admin operations on clients, tokens and the audit trail, as plain functions over the store,
//! shared by the CLI, the demo launcher and tests. Each one records its audit event in the same
//! transaction as its change. Signing-key operations live in [`crate::signing`].

use anyhow::Context;
use keys::HashKey;
use ring::rand::{SecureRandom, SystemRandom};
use shared_claims::{ClientId, PartnerId, Scope, ScopeSet};
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

use crate::secret::ClientSecret;
use crate::store::{
    AuditEvent, AuditRecord, Client, ClientAuthMethod, ClientUpdate, KeySourceUpdate, NewCert,
    NewClient, RegisteredCert, Store,
};

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
    check_printable("client name", name)?;
    Ok(name.to_owned())
}

/// Whether `c` would reach a terminal unseen or rearrange the text around it when `client list`
/// prints it: Unicode control (Cc) and format (Cf) characters, which include the bidirectional
/// overrides such as U+202E and the zero-width ones such as U+200B, and the line and paragraph
/// separators (Zl, Zp), which break a table row as a newline does.
fn is_unprintable(c: char) -> bool {
    matches!(
        c.general_category(),
        GeneralCategory::Control
            | GeneralCategory::Format
            | GeneralCategory::LineSeparator
            | GeneralCategory::ParagraphSeparator
    )
}

/// Refuses `text` if it holds an unprintable character, naming the character by its code point
/// (printing it would hide it again).
fn check_printable(what: &str, text: &str) -> anyhow::Result<()> {
    match text.chars().find(|&c| is_unprintable(c)) {
        Some(c) => anyhow::bail!(
            "{what} {text:?} contains U+{:04X}, an invisible control or format character",
            u32::from(c)
        ),
        None => Ok(()),
    }
}

/// How the operator wrote a list of scopes, so that a refusal shows the right spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScopeSpelling {
    /// One string, scopes separated by spaces (`--scopes "a b"`).
    SpaceSeparated,
    /// One string per scope (a clients file's `scopes = ["a", "b"]`).
    OnePerString,
}

/// Validates the scopes an operator gives a client (`--scopes`, a clients file's entry): RFC 6749
/// §3.3 syntax, and first two slips that syntax alone would let through or refuse obscurely. A
/// comma is a legal scope character, so `"orders:read,catalog:read"` would be one scope no
/// resource server knows; it is refused with the spelling meant. A control or format character
/// is refused by its code point.
pub fn parse_scopes(text: &str, spelling: ScopeSpelling) -> anyhow::Result<ScopeSet> {
    check_printable("scopes", text)?;
    if let Some(token) = text.split(' ').find(|t| t.contains(',')) {
        let meant: Vec<&str> = text
            .split([',', ' '])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        let suggestion = match spelling {
            ScopeSpelling::SpaceSeparated => format!("{:?}", meant.join(" ")),
            ScopeSpelling::OnePerString => format!("{meant:?}"),
        };
        let how = match spelling {
            ScopeSpelling::SpaceSeparated => "scopes are separated by spaces",
            ScopeSpelling::OnePerString => "write one scope per string",
        };
        anyhow::bail!("scope {token:?} contains a comma: {how}, as in {suggestion}");
    }
    Ok(ScopeSet::parse(text)?)
}

/// Validates an audience value (a name or URI; no whitespace, bounded).
pub fn parse_audience(aud: &str) -> anyhow::Result<String> {
    anyhow::ensure!(
        !aud.is_empty() && aud.len() <= 200 && !aud.chars().any(char::is_whitespace),
        "audience must be 1 to 200 characters without spaces"
    );
    check_printable("audience", aud)?;
    Ok(aud.to_owned())
}

/// A partner id and scopes another client holds, as [`unfamiliar`] compares against them.
#[derive(Debug, Clone, Copy)]
pub struct Held<'a> {
    pub partner_id: &'a PartnerId,
    pub scopes: &'a ScopeSet,
}

impl<'a> From<&'a Client> for Held<'a> {
    fn from(client: &'a Client) -> Held<'a> {
        Held {
            partner_id: &client.partner_id,
            scopes: &client.scopes,
        }
    }
}

/// Warnings about a partner id (of a new client) and scopes that none of `others` has: likely a
/// typo, which the token service would otherwise accept silently. Nothing is said when there
/// are no other clients: the first client of a directory has nothing to be compared with, and
/// a warning about each of its scopes would be noise.
pub fn unfamiliar<'s>(
    partner_id: Option<&PartnerId>,
    scopes: impl IntoIterator<Item = &'s Scope>,
    others: &[Held<'_>],
) -> Vec<String> {
    if others.is_empty() {
        return Vec::new();
    }
    let mut warnings = Vec::new();
    if let Some(partner) = partner_id
        && !others.iter().any(|o| o.partner_id == partner)
    {
        warnings.push(format!("no other client has partner \"{partner}\""));
    }
    for scope in scopes {
        if !others.iter().any(|o| o.scopes.contains(scope.as_str())) {
            warnings.push(format!("no other client has scope \"{scope}\""));
        }
    }
    warnings
}

/// [`unfamiliar`] for a client about to be created from `spec`, against every stored client.
pub async fn new_client_warnings(db: &Store, spec: &ClientSpec) -> anyhow::Result<Vec<String>> {
    let clients = db.list_clients().await?;
    let others: Vec<Held<'_>> = clients.iter().map(Held::from).collect();
    Ok(unfamiliar(
        Some(&spec.partner_id),
        spec.scopes.iter(),
        &others,
    ))
}

/// [`unfamiliar`] for the scopes `client_id` is about to gain (those it holds already were
/// looked at when it got them), against every other stored client.
pub async fn scope_change_warnings(
    db: &Store,
    client_id: &str,
    scopes: &ScopeSet,
) -> anyhow::Result<Vec<String>> {
    let clients = db.list_clients().await?;
    let Some(current) = clients.iter().find(|c| c.client_id.as_str() == client_id) else {
        return Ok(Vec::new());
    };
    let others: Vec<Held<'_>> = clients
        .iter()
        .filter(|c| c.client_id != current.client_id)
        .map(Held::from)
        .collect();
    let gained = scopes
        .iter()
        .filter(|s| !current.scopes.contains(s.as_str()));
    Ok(unfamiliar(None, gained, &others))
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

/// How a new client authenticates, with what its method needs, already parsed.
#[derive(Debug, Clone)]
pub enum ClientAuth {
    /// `client_secret_basic` or `client_secret_post` (either is accepted from a secret client;
    /// the name is what it was registered with).
    Secret(ClientAuthMethod),
    /// `tls_client_auth`: a certificate from a trusted CA with this subject DN or SAN.
    Tls(TlsIdentity),
    /// `self_signed_tls_client_auth`: one of these certificates.
    SelfSignedTls(Vec<NewCert>),
    /// `private_key_jwt`: assertions signed by one of these keys.
    PrivateKeyJwt(KeySourceUpdate),
    /// `api_key`: an API key for the partner API, hashed under this key (see `crate::api_key`).
    ApiKey(HashKey),
}

/// What a `tls_client_auth` client's certificate must carry: exactly one of them (RFC 8705 §2.1.2).
#[derive(Debug, Clone)]
pub enum TlsIdentity {
    Subject(String),
    San(String),
}

/// The most certificates a self-signed client holds at once (two during a rotation, with room
/// for one mistake).
pub const MAX_CLIENT_CERTS: usize = 4;

impl ClientAuth {
    pub fn method(&self) -> ClientAuthMethod {
        match self {
            ClientAuth::Secret(method) => *method,
            ClientAuth::Tls(_) => ClientAuthMethod::TlsClientAuth,
            ClientAuth::SelfSignedTls(_) => ClientAuthMethod::SelfSignedTlsClientAuth,
            ClientAuth::PrivateKeyJwt(_) => ClientAuthMethod::PrivateKeyJwt,
            ClientAuth::ApiKey(_) => ClientAuthMethod::ApiKey,
        }
    }
}

/// The certificates of a PEM text, as a self-signed client registers them (the text must hold
/// certificates only, never a private key).
pub fn certs_from_pem(pem: &str) -> anyhow::Result<Vec<NewCert>> {
    let certs = edge::certificates_from_pem(pem).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(certs
        .into_iter()
        .map(|c| NewCert {
            thumbprint: c.x5t_s256,
            subject: c.subject,
            not_after: c.not_after,
            der: c.der,
        })
        .collect())
}

/// Validates a registered subject DN: printable, bounded, `TYPE=value` pairs.
pub fn parse_tls_subject(dn: &str) -> anyhow::Result<String> {
    let dn = dn.trim();
    anyhow::ensure!(
        !dn.is_empty() && dn.len() <= 1024 && dn.contains('='),
        "--tls-subject must be a distinguished name such as 'CN=acme-client,O=Acme,C=DE'"
    );
    check_printable("subject DN", dn)?;
    Ok(dn.to_owned())
}

/// Validates a registered SAN: a DNS name, or a URI (anything with a `:`).
pub fn parse_tls_san(san: &str) -> anyhow::Result<String> {
    let san = san.trim();
    anyhow::ensure!(
        !san.is_empty() && san.len() <= 1024 && !san.chars().any(char::is_whitespace),
        "--tls-san must be a DNS name or a URI without spaces"
    );
    check_printable("SAN", san)?;
    Ok(san.to_owned())
}

/// Validates a `private_key_jwt` client's `jwks_uri`: https, or http to this machine only (for
/// local development), without credentials; the same rule every fetch is held to.
pub fn parse_jwks_uri(uri: &str) -> anyhow::Result<String> {
    anyhow::ensure!(uri.len() <= 2048, "--jwks-uri is too long");
    let url =
        crate::client_keys::check_jwks_uri(uri).map_err(|e| anyhow::anyhow!("--jwks-uri: {e}"))?;
    Ok(url.to_string())
}

/// Creates a secret client and its first secret, which is returned to be shown once.
pub async fn create_client(db: &Store, spec: ClientSpec) -> anyhow::Result<(Client, ClientSecret)> {
    let (client, secret) = register_client(
        db,
        spec,
        ClientAuth::Secret(ClientAuthMethod::ClientSecretBasic),
    )
    .await?;
    let secret = secret.context("a secret client was created without a secret")?;
    Ok((client, secret))
}

/// Creates a client that authenticates as `auth` says; a secret client's first secret is
/// returned to be shown once.
pub async fn register_client(
    db: &Store,
    spec: ClientSpec,
    auth: ClientAuth,
) -> anyhow::Result<(Client, Option<ClientSecret>)> {
    let prepared = prepare_client(spec, auth)?;
    db.insert_client(&prepared.new, &prepared.audit).await?;
    Ok((prepared.new.client, prepared.secret))
}

/// A client ready to be stored: its row, its first secret (shown once) and its audit event.
pub struct PreparedClient {
    pub new: NewClient,
    pub secret: Option<ClientSecret>,
    pub audit: AuditEvent,
}

/// Checks and builds a new client without storing it, so that `clients apply` can store several
/// in one transaction exactly as [`register_client`] stores one.
pub fn prepare_client(spec: ClientSpec, auth: ClientAuth) -> anyhow::Result<PreparedClient> {
    let now = crate::now();
    let method = auth.method();
    let mut client = Client {
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
        auth_method: method,
        tls_subject: None,
        tls_san: None,
        jwks: None,
        jwks_uri: None,
    };
    let mut certs = Vec::new();
    let mut secret = None;
    let mut secret_hash = None;
    match auth {
        ClientAuth::Secret(method) => {
            anyhow::ensure!(method.uses_secret(), "{method} is not a secret method");
            let new = ClientSecret::generate()?;
            secret_hash = Some(new.hash().to_vec());
            secret = Some(new);
        }
        ClientAuth::ApiKey(hash_key) => {
            // Nothing of the token endpoint applies to a client that never gets a token.
            anyhow::ensure!(
                !client.introspect_allowed,
                "an api_key client cannot call the introspection endpoint (--introspect is for \
                 a resource server's secret client)"
            );
            anyhow::ensure!(
                client.access_token_ttl.is_none(),
                "an api_key client gets no access tokens, so --access-ttl does not apply"
            );
            client.refresh_enabled = false;
            let key = ClientSecret::generate_api_key()?;
            secret_hash = Some(key.keyed_hash(&hash_key).to_vec());
            secret = Some(key);
        }
        ClientAuth::Tls(TlsIdentity::Subject(dn)) => client.tls_subject = Some(dn),
        ClientAuth::Tls(TlsIdentity::San(san)) => client.tls_san = Some(san),
        ClientAuth::SelfSignedTls(list) => {
            check_cert_set(&list)?;
            certs = list;
        }
        ClientAuth::PrivateKeyJwt(KeySourceUpdate::Document(doc)) => client.jwks = Some(doc),
        ClientAuth::PrivateKeyJwt(KeySourceUpdate::Uri(uri)) => client.jwks_uri = Some(uri),
    }
    let thumbprints: Vec<&str> = certs.iter().map(|c| c.thumbprint.as_str()).collect();
    let audit = AuditEvent::by_admin(
        "client.create",
        serde_json::json!({
            "name": client.name,
            "partner_id": client.partner_id,
            "scopes": client.scopes,
            "audiences": client.audiences,
            "auth_method": method,
            "tls_subject": client.tls_subject,
            "tls_san": client.tls_san,
            "certs": thumbprints,
            "jwks_uri": client.jwks_uri,
        }),
    )
    .about(Some(client.client_id.as_str()));
    let new = NewClient {
        client,
        secret_hash,
        certs,
        managed_name: None,
    };
    Ok(PreparedClient { new, secret, audit })
}

/// Whether a self-signed client may hold exactly these certificates: at least one, at most
/// [`MAX_CLIENT_CERTS`], none twice.
pub fn check_cert_set(certs: &[NewCert]) -> anyhow::Result<()> {
    anyhow::ensure!(
        !certs.is_empty(),
        "self_signed_tls_client_auth needs at least one --cert-file"
    );
    anyhow::ensure!(
        certs.len() <= MAX_CLIENT_CERTS,
        "a client holds at most {MAX_CLIENT_CERTS} certificates"
    );
    // Refused here rather than by the database, whose message would name its tables.
    for (i, cert) in certs.iter().enumerate() {
        anyhow::ensure!(
            !certs[..i].iter().any(|c| c.thumbprint == cert.thumbprint),
            "the certificate with thumbprint {} is given twice",
            cert.thumbprint
        );
    }
    Ok(())
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
        update.name.is_some()
            || update.scopes.is_some()
            || update.access_token_ttl.is_some()
            || update.tls_subject.is_some()
            || update.tls_san.is_some()
            || update.keys.is_some(),
        "nothing to update: give --name, --scopes, --access-ttl, --tls-subject, --tls-san, \
         --jwks-file or --jwks-uri"
    );
    let current = show_client(db, id.as_str()).await?;
    anyhow::ensure!(
        (update.tls_subject.is_none() && update.tls_san.is_none())
            || current.auth_method == ClientAuthMethod::TlsClientAuth,
        "--tls-subject and --tls-san are for tls_client_auth clients; this one uses {}",
        current.auth_method
    );
    anyhow::ensure!(
        update.tls_subject.is_none() || update.tls_san.is_none(),
        "give --tls-subject or --tls-san, not both: the certificate must match exactly one"
    );
    anyhow::ensure!(
        update.keys.is_none() || current.auth_method == ClientAuthMethod::PrivateKeyJwt,
        "--jwks-file and --jwks-uri are for private_key_jwt clients; this one uses {}",
        current.auth_method
    );
    let audit = AuditEvent::by_admin(
        "client.update",
        serde_json::json!({
            "name": update.name,
            "scopes": update.scopes,
            "access_token_ttl": update.access_token_ttl,
            "tls_subject": update.tls_subject,
            "tls_san": update.tls_san,
            "jwks": matches!(update.keys, Some(KeySourceUpdate::Document(_))),
            "jwks_uri": match &update.keys {
                Some(KeySourceUpdate::Uri(uri)) => Some(uri.as_str()),
                _ => None,
            },
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

/// A self-signed client's registered certificates.
pub async fn client_certs(db: &Store, client_id: &ClientId) -> anyhow::Result<Vec<RegisteredCert>> {
    db.client_certs(client_id.as_str()).await
}

/// Registers one more certificate for a self-signed client (the first half of a rotation: both
/// work until the old one is removed).
pub async fn add_cert(db: &Store, client_id: &str, cert: NewCert) -> anyhow::Result<Client> {
    let id = parse_client_id(client_id)?;
    let client = show_client(db, id.as_str()).await?;
    let held = db.client_certs(id.as_str()).await?;
    cert_change_allowed(&client, &held, Some(&cert), None)?;
    let audit = AuditEvent::by_admin(
        "client.cert_add",
        serde_json::json!({ "thumbprint": cert.thumbprint, "subject": cert.subject, "not_after": cert.not_after }),
    )
    .about(Some(id.as_str()));
    if !db.add_client_cert(id.as_str(), &cert, &audit).await? {
        return Err(no_such_client(&id));
    }
    Ok(client)
}

/// Refuses, for the reason [`add_cert`] or [`remove_cert`] would give, a certificate change
/// (`add`, then `remove`) before anything is written, so that `client update` combining it with
/// other changes is refused as a whole rather than half done.
pub async fn check_cert_change(
    db: &Store,
    client_id: &str,
    add: Option<&NewCert>,
    remove: Option<&str>,
) -> anyhow::Result<()> {
    let id = parse_client_id(client_id)?;
    let client = show_client(db, id.as_str()).await?;
    let held = db.client_certs(id.as_str()).await?;
    cert_change_allowed(&client, &held, add, remove)
}

/// Whether a client holding `held` may take `add` and then lose `remove`.
fn cert_change_allowed(
    client: &Client,
    held: &[RegisteredCert],
    add: Option<&NewCert>,
    remove: Option<&str>,
) -> anyhow::Result<()> {
    if let Some(cert) = add {
        anyhow::ensure!(
            client.auth_method == ClientAuthMethod::SelfSignedTlsClientAuth,
            "--add-cert is for self_signed_tls_client_auth clients; this one uses {}",
            client.auth_method
        );
        anyhow::ensure!(
            !held.iter().any(|c| c.thumbprint == cert.thumbprint),
            "this certificate is registered for the client already"
        );
        anyhow::ensure!(
            held.len() < MAX_CLIENT_CERTS,
            "a client holds at most {MAX_CLIENT_CERTS} certificates: remove one first"
        );
    }
    if let Some(thumbprint) = remove {
        anyhow::ensure!(
            held.iter().any(|c| c.thumbprint == thumbprint),
            "the client has no certificate with thumbprint {thumbprint}"
        );
        anyhow::ensure!(
            held.len() + usize::from(add.is_some()) > 1,
            "this is the client's last certificate: add its successor first, or disable the client"
        );
    }
    Ok(())
}

/// Withdraws one certificate of a self-signed client (the second half of a rotation). The last
/// one cannot be removed: disable or delete the client instead.
pub async fn remove_cert(db: &Store, client_id: &str, thumbprint: &str) -> anyhow::Result<Client> {
    let id = parse_client_id(client_id)?;
    let client = show_client(db, id.as_str()).await?;
    let held = db.client_certs(id.as_str()).await?;
    cert_change_allowed(&client, &held, None, Some(thumbprint))?;
    let audit = AuditEvent::by_admin(
        "client.cert_remove",
        serde_json::json!({ "thumbprint": thumbprint }),
    )
    .about(Some(id.as_str()));
    if !db
        .remove_client_cert(id.as_str(), thumbprint, &audit)
        .await?
    {
        return Err(anyhow::anyhow!(
            "the client has no certificate with thumbprint {thumbprint}"
        ));
    }
    Ok(client)
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
/// An `api_key` client's key is rotated the same way; it needs the API-key hash key
/// (`api_keys`), which the caller opens with the master key.
pub async fn rotate_secret(
    db: &Store,
    client_id: &str,
    grace_secs: i64,
    api_keys: Option<&HashKey>,
) -> anyhow::Result<(ClientSecret, i64)> {
    let id = parse_client_id(client_id)?;
    anyhow::ensure!(
        (0..=2_592_000).contains(&grace_secs),
        "--grace must be 0 to 2592000 seconds"
    );
    let client = show_client(db, id.as_str()).await?;
    let (secret, hash) = if client.auth_method == ClientAuthMethod::ApiKey {
        let hash_key =
            api_keys.context("rotating an API key needs the API-key hash key (the master key)")?;
        let key = ClientSecret::generate_api_key()?;
        let hash = key.keyed_hash(hash_key);
        (key, hash)
    } else {
        anyhow::ensure!(
            client.auth_method.uses_secret(),
            "client {id} uses {} and holds no secret: rotate its certificates (--add-cert, \
             --remove-cert) or keys (--jwks-file, --jwks-uri) with `client update`",
            client.auth_method
        );
        let secret = ClientSecret::generate()?;
        let hash = secret.hash();
        (secret, hash)
    };
    let audit = AuditEvent::by_admin(
        "client.rotate_secret",
        serde_json::json!({ "grace_secs": grace_secs }),
    )
    .about(Some(id.as_str()));
    let grace_until = audit.at + grace_secs;
    if !db
        .rotate_client_secret(id.as_str(), &hash, grace_until, &audit)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_are_refused_for_a_comma_or_an_unprintable_character_before_their_syntax() {
        fn refusal(text: &str, spelling: ScopeSpelling) -> String {
            format!("{:#}", parse_scopes(text, spelling).unwrap_err())
        }
        assert_eq!(
            refusal("a b,c", ScopeSpelling::SpaceSeparated),
            "scope \"b,c\" contains a comma: scopes are separated by spaces, as in \"a b c\""
        );
        assert_eq!(
            refusal("a,b", ScopeSpelling::OnePerString),
            "scope \"a,b\" contains a comma: write one scope per string, as in [\"a\", \"b\"]"
        );
        for (c, code) in [
            ('\u{2028}', "U+2028"),
            ('\u{FEFF}', "U+FEFF"),
            ('\t', "U+0009"),
        ] {
            let text = format!("a{c}b");
            assert!(
                refusal(&text, ScopeSpelling::SpaceSeparated).contains(code),
                "{code}"
            );
            assert!(parse_name(&text).unwrap_err().to_string().contains(code));
        }
        assert_eq!(
            parse_scopes("orders:read catalog:read", ScopeSpelling::SpaceSeparated)
                .unwrap()
                .to_string(),
            "catalog:read orders:read"
        );
        // Printable text of any script is a fine name.
        assert_eq!(parse_name(" Zürich ERP 東京 ").unwrap(), "Zürich ERP 東京");
    }

    #[test]
    fn only_what_no_other_client_has_is_unfamiliar_and_nothing_without_others() {
        let acme = PartnerId::parse("acme").unwrap();
        let held = ScopeSet::parse("orders:read").unwrap();
        let others = [Held {
            partner_id: &acme,
            scopes: &held,
        }];
        let wanted = ScopeSet::parse("orders:read ordrs:read").unwrap();
        let typo = PartnerId::parse("acme-typo").unwrap();
        assert_eq!(
            unfamiliar(Some(&typo), wanted.iter(), &others),
            [
                "no other client has partner \"acme-typo\"",
                "no other client has scope \"ordrs:read\"",
            ]
        );
        assert!(unfamiliar(Some(&acme), held.iter(), &others).is_empty());
        assert!(unfamiliar(Some(&typo), wanted.iter(), &[]).is_empty());
    }
}
