//! The clients file: TOML read by the `toml` crate into serde types with byte spans, every value
//! checked by the functions `client create` uses, and every refusal naming the file and line.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use shared_claims::{PartnerId, ScopeSet};
use toml::Spanned;

use crate::admin::{self, ClientAuth, ScopeSpelling, TlsIdentity};
use crate::store::{ClientAuthMethod, KeySourceUpdate, NewCert};

/// One entry of the file, every field parsed: what its client must look like.
#[derive(Debug, Clone)]
pub struct DesiredClient {
    /// The table key, which is also the client's display name.
    pub name: String,
    /// Where the entry begins, and where its `partner` and `auth_method` are (or the entry's
    /// line when absent), for the refusals that only the database can reveal.
    pub line: usize,
    pub partner_line: usize,
    pub auth_method_line: usize,
    pub partner_id: PartnerId,
    pub scopes: ScopeSet,
    pub audiences: Vec<String>,
    pub access_token_ttl: Option<i64>,
    pub refresh_enabled: bool,
    pub introspect_allowed: bool,
    pub auth: ClientAuth,
}

/// A clients file read and checked.
#[derive(Debug)]
pub struct ClientsFile {
    /// The path as given, for messages.
    pub path: PathBuf,
    /// Sorted by name.
    pub clients: Vec<DesiredClient>,
}

impl ClientsFile {
    /// `path:line: message`, the form of every refusal that points into the file.
    pub fn at_line(&self, line: usize, message: impl std::fmt::Display) -> anyhow::Error {
        anyhow::anyhow!("{}:{line}: {message}", self.path.display())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    #[serde(default)]
    clients: BTreeMap<Spanned<String>, Spanned<Entry>>,
}

/// An entry as written. Unknown keys are refused (a typo must not be silently ignored), and so,
/// with a message of their own, are secrets.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    partner: Spanned<String>,
    scopes: Spanned<Vec<Spanned<String>>>,
    audiences: Option<Spanned<Vec<Spanned<String>>>>,
    access_ttl: Option<Spanned<i64>>,
    refresh: Option<bool>,
    introspect: Option<bool>,
    auth_method: Option<Spanned<String>>,
    tls_subject: Option<Spanned<String>>,
    tls_san: Option<Spanned<String>>,
    cert_files: Option<Spanned<Vec<Spanned<String>>>>,
    jwks_file: Option<Spanned<String>>,
    jwks_uri: Option<Spanned<String>>,
}

/// Key names that hold credentials: refused with a reason, since a secret in a file that is
/// kept in version control is a leaked secret.
const SECRET_WORDS: [&str; 6] = [
    "secret",
    "password",
    "passwd",
    "private_key",
    "api_key",
    "credential",
];

/// Reads and checks the clients file at `path`; certificate and JWKS files it names are read
/// relative to its folder. `default_audience` is what `client create` gives a client without
/// `--audience`.
pub fn read(path: &Path, default_audience: &str) -> anyhow::Result<ClientsFile> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read the clients file {}: {e}", path.display()))?;
    let file = ClientsFile {
        path: path.to_owned(),
        clients: Vec::new(),
    };
    let document: Document = toml::from_str(&text).map_err(|err| {
        let line = err.span().map_or(1, |span| line_of(&text, span.start));
        file.at_line(line, describe(&text, &err))
    })?;
    let folder = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let reader = Reader {
        text: &text,
        file: &file,
        folder,
        default_audience,
    };
    let mut clients = Vec::with_capacity(document.clients.len());
    for (name, entry) in document.clients {
        clients.push(reader.entry(name, entry.into_inner())?);
    }
    Ok(ClientsFile { clients, ..file })
}

/// A TOML error's message on one line; an unknown key that names a secret gets the reason.
fn describe(text: &str, err: &toml::de::Error) -> String {
    let message = err.message().trim().replace('\n', "; ");
    if message.starts_with("unknown field") {
        let key = err
            .span()
            .and_then(|span| text.get(span))
            .unwrap_or_default()
            .trim_matches(['"', '\'']);
        let lower = key.to_ascii_lowercase();
        if SECRET_WORDS.iter().any(|word| lower.contains(word)) {
            return format!(
                "`{key}`: a clients file never holds secrets; `clients apply` prints each new \
                 client's secret once, and `client rotate-secret` issues a new one"
            );
        }
    }
    message
}

/// The 1-based line of byte offset `at`.
fn line_of(text: &str, at: usize) -> usize {
    text.as_bytes()[..at.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

struct Reader<'a> {
    text: &'a str,
    file: &'a ClientsFile,
    folder: &'a Path,
    default_audience: &'a str,
}

impl Reader<'_> {
    fn line(&self, span: Range<usize>) -> usize {
        line_of(self.text, span.start)
    }

    /// A refusal of the value at `span`, named by its dotted key.
    fn refuse(
        &self,
        span: Range<usize>,
        name: &str,
        key: &str,
        why: impl std::fmt::Display,
    ) -> anyhow::Error {
        self.file
            .at_line(self.line(span), format!("clients.{name}.{key}: {why}"))
    }

    fn entry(&self, key: Spanned<String>, entry: Entry) -> anyhow::Result<DesiredClient> {
        let line = self.line(key.span());
        let name = key.into_inner();
        // The key is escaped in this one message: it is the name refused for holding a character
        // that must not reach the terminal raw.
        let parsed = admin::parse_name(&name).map_err(|e| {
            self.file
                .at_line(line, format!("clients.{}: {e:#}", name.escape_debug()))
        })?;
        if parsed != name {
            return Err(self.file.at_line(
                line,
                format!("clients.{name}: a client name must not begin or end with spaces"),
            ));
        }
        let n = name.as_str();
        let partner_line = self.line(entry.partner.span());
        let partner_id = PartnerId::parse(entry.partner.get_ref())
            .map_err(|e| self.refuse(entry.partner.span(), n, "partner", e))?;
        let scopes = self.scopes(n, &entry.scopes)?;
        let audiences = match &entry.audiences {
            None => vec![self.default_audience.to_owned()],
            Some(list) if list.get_ref().is_empty() => {
                return Err(self.refuse(
                    list.span(),
                    n,
                    "audiences",
                    "give at least one audience, or leave the key out for the default",
                ));
            }
            Some(list) => list
                .get_ref()
                .iter()
                .map(|aud| {
                    admin::parse_audience(aud.get_ref())
                        .map_err(|e| self.refuse(aud.span(), n, "audiences", format!("{e:#}")))
                })
                .collect::<anyhow::Result<_>>()?,
        };
        let access_token_ttl = entry
            .access_ttl
            .as_ref()
            .map(|ttl| {
                admin::parse_ttl(*ttl.get_ref())
                    .map_err(|e| self.refuse(ttl.span(), n, "access_ttl", format!("{e:#}")))
            })
            .transpose()?;
        let auth_method_line = entry
            .auth_method
            .as_ref()
            .map_or(line, |m| self.line(m.span()));
        let auth = self.auth(n, &entry)?;
        Ok(DesiredClient {
            line,
            partner_line,
            auth_method_line,
            partner_id,
            scopes,
            audiences,
            access_token_ttl,
            refresh_enabled: entry.refresh.unwrap_or(true),
            introspect_allowed: entry.introspect.unwrap_or(false),
            auth,
            name,
        })
    }

    /// Each element one scope token, the whole a valid scope set (RFC 6749 §3.3).
    fn scopes(&self, n: &str, list: &Spanned<Vec<Spanned<String>>>) -> anyhow::Result<ScopeSet> {
        for scope in list.get_ref() {
            let one = admin::parse_scopes(scope.get_ref(), ScopeSpelling::OnePerString)
                .map_err(|e| self.refuse(scope.span(), n, "scopes", format!("{e:#}")))?;
            if one.len() != 1 {
                return Err(self.refuse(
                    scope.span(),
                    n,
                    "scopes",
                    "one scope per string: write [\"a\", \"b\"], not [\"a b\"]",
                ));
            }
        }
        let joined: Vec<&str> = list
            .get_ref()
            .iter()
            .map(|s| s.get_ref().as_str())
            .collect();
        ScopeSet::parse(&joined.join(" ")).map_err(|e| self.refuse(list.span(), n, "scopes", e))
    }

    /// The auth method and what it needs; a key of another method is refused, as `client create`
    /// refuses an option of another method.
    fn auth(&self, n: &str, entry: &Entry) -> anyhow::Result<ClientAuth> {
        let method = match &entry.auth_method {
            None => ClientAuthMethod::ClientSecretBasic,
            Some(text) => ClientAuthMethod::parse(text.get_ref()).ok_or_else(|| {
                let known: Vec<&str> = ClientAuthMethod::ALL.iter().map(|m| m.as_str()).collect();
                self.refuse(
                    text.span(),
                    n,
                    "auth_method",
                    format!(
                        "unknown auth method '{}' (one of {})",
                        text.get_ref(),
                        known.join(", ")
                    ),
                )
            })?,
        };
        let foreign: [(&str, Option<Range<usize>>, ClientAuthMethod); 5] = [
            (
                "tls_subject",
                entry.tls_subject.as_ref().map(Spanned::span),
                ClientAuthMethod::TlsClientAuth,
            ),
            (
                "tls_san",
                entry.tls_san.as_ref().map(Spanned::span),
                ClientAuthMethod::TlsClientAuth,
            ),
            (
                "cert_files",
                entry.cert_files.as_ref().map(Spanned::span),
                ClientAuthMethod::SelfSignedTlsClientAuth,
            ),
            (
                "jwks_file",
                entry.jwks_file.as_ref().map(Spanned::span),
                ClientAuthMethod::PrivateKeyJwt,
            ),
            (
                "jwks_uri",
                entry.jwks_uri.as_ref().map(Spanned::span),
                ClientAuthMethod::PrivateKeyJwt,
            ),
        ];
        for (key, span, needs) in foreign {
            if let Some(span) = span
                && needs != method
            {
                return Err(self.refuse(
                    span,
                    n,
                    key,
                    format!("{key} is for {needs} clients, not {method}"),
                ));
            }
        }
        let at_method = |why: &str| {
            let span = entry
                .auth_method
                .as_ref()
                .map_or(entry.partner.span(), Spanned::span);
            self.refuse(span, n, "auth_method", why)
        };
        Ok(match method {
            ClientAuthMethod::ApiKey => {
                return Err(at_method(
                    "api_key clients are created with `client create --auth-method api_key`, \
                     not from a clients file",
                ));
            }
            ClientAuthMethod::ClientSecretBasic | ClientAuthMethod::ClientSecretPost => {
                ClientAuth::Secret(method)
            }
            ClientAuthMethod::TlsClientAuth => {
                ClientAuth::Tls(match (&entry.tls_subject, &entry.tls_san) {
                    (Some(dn), None) => {
                        TlsIdentity::Subject(admin::parse_tls_subject(dn.get_ref()).map_err(
                            |e| self.refuse(dn.span(), n, "tls_subject", format!("{e:#}")),
                        )?)
                    }
                    (None, Some(san)) => TlsIdentity::San(
                        admin::parse_tls_san(san.get_ref())
                            .map_err(|e| self.refuse(san.span(), n, "tls_san", format!("{e:#}")))?,
                    ),
                    _ => {
                        return Err(at_method(
                            "tls_client_auth needs tls_subject or tls_san (exactly one)",
                        ));
                    }
                })
            }
            ClientAuthMethod::SelfSignedTlsClientAuth => {
                let Some(files) = &entry.cert_files else {
                    return Err(at_method(
                        "self_signed_tls_client_auth needs cert_files (the client's certificates)",
                    ));
                };
                let mut certs: Vec<NewCert> = Vec::new();
                for file in files.get_ref() {
                    certs.extend(self.certs(n, file)?);
                }
                admin::check_cert_set(&certs)
                    .map_err(|e| self.refuse(files.span(), n, "cert_files", format!("{e:#}")))?;
                ClientAuth::SelfSignedTls(certs)
            }
            ClientAuthMethod::PrivateKeyJwt => {
                ClientAuth::PrivateKeyJwt(match (&entry.jwks_file, &entry.jwks_uri) {
                    (Some(file), None) => {
                        let path = self.folder.join(file.get_ref());
                        let text = std::fs::read_to_string(&path).map_err(|e| {
                            self.refuse(
                                file.span(),
                                n,
                                "jwks_file",
                                format!("cannot read {}: {e}", path.display()),
                            )
                        })?;
                        crate::client_keys::parse_jwks(&text).map_err(|e| {
                            self.refuse(
                                file.span(),
                                n,
                                "jwks_file",
                                format!("{}: {e}", path.display()),
                            )
                        })?;
                        KeySourceUpdate::Document(text)
                    }
                    (None, Some(uri)) => {
                        KeySourceUpdate::Uri(admin::parse_jwks_uri(uri.get_ref()).map_err(|e| {
                            self.refuse(uri.span(), n, "jwks_uri", format!("{e:#}"))
                        })?)
                    }
                    _ => {
                        return Err(at_method(
                            "private_key_jwt needs jwks_file or jwks_uri (exactly one)",
                        ));
                    }
                })
            }
        })
    }

    /// The certificates of one PEM file named by `cert_files`, relative to the file's folder.
    fn certs(&self, n: &str, file: &Spanned<String>) -> anyhow::Result<Vec<NewCert>> {
        let path = self.folder.join(file.get_ref());
        let text = std::fs::read_to_string(&path).map_err(|e| {
            self.refuse(
                file.span(),
                n,
                "cert_files",
                format!("cannot read certificate file {}: {e}", path.display()),
            )
        })?;
        admin::certs_from_pem(&text).map_err(|e| {
            self.refuse(
                file.span(),
                n,
                "cert_files",
                format!("certificate file {}: {e:#}", path.display()),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(text: &str) -> String {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clients.toml");
        std::fs::write(&path, text).unwrap();
        let err = read(&path, "partner-api").unwrap_err().to_string();
        let prefix = format!("{}:", path.display());
        err.strip_prefix(&prefix)
            .unwrap_or_else(|| panic!("{err}"))
            .to_owned()
    }

    #[test]
    fn entries_take_the_defaults_of_client_create() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clients.toml");
        std::fs::write(
            &path,
            "[clients.b]\npartner = \"acme\"\nscopes = [\"orders:read\"]\n\
             [clients.a]\npartner = \"globex\"\nscopes = [\"x\", \"y\", \"x\"]\n\
             audiences = [\"one\", \"two\"]\naccess_ttl = 60\nrefresh = false\nintrospect = true\n\
             auth_method = \"client_secret_post\"\n",
        )
        .unwrap();
        let file = read(&path, "partner-api").unwrap();
        let [a, b] = &file.clients[..] else {
            panic!("{:?}", file.clients);
        };
        assert_eq!((a.name.as_str(), b.name.as_str()), ("a", "b"));
        assert_eq!(b.audiences, ["partner-api"]);
        assert_eq!(
            (b.access_token_ttl, b.refresh_enabled, b.introspect_allowed),
            (None, true, false)
        );
        assert_eq!(b.auth.method(), ClientAuthMethod::ClientSecretBasic);
        assert_eq!(a.scopes.to_string(), "x y");
        assert_eq!(a.audiences, ["one", "two"]);
        assert_eq!(
            (a.access_token_ttl, a.refresh_enabled, a.introspect_allowed),
            (Some(60), false, true)
        );
        assert_eq!(a.auth.method(), ClientAuthMethod::ClientSecretPost);
        assert_eq!((a.line, a.partner_line, a.auth_method_line), (4, 5, 11));
    }

    #[test]
    fn refusals_name_the_line_and_the_key() {
        let head = "# managed clients\n[clients.acme]\npartner = \"acme\"\n";
        assert_eq!(
            refusal(&format!("{head}scopes = [\"a\", \"b c\"]\n")),
            "4: clients.acme.scopes: one scope per string: write [\"a\", \"b\"], not [\"a b\"]"
        );
        assert_eq!(
            refusal(&format!("{head}scopes = [\"a\"]\naccess_ttl = 0\n")),
            "5: clients.acme.access_ttl: access-token lifetime must be 1 to 86400 seconds"
        );
        assert!(
            refusal(&format!(
                "{head}scopes = [\"a\"]\nauth_method = \"magic\"\n"
            ))
            .starts_with("5: clients.acme.auth_method: unknown auth method 'magic' (one of ")
        );
        assert_eq!(
            refusal(&format!("{head}scopes = [\"a\"]\nclient_secret = \"x\"\n")),
            "5: `client_secret`: a clients file never holds secrets; `clients apply` prints each \
             new client's secret once, and `client rotate-secret` issues a new one"
        );
        assert!(
            refusal(&format!("{head}scopes = [\"a\"]\nscope = \"a\"\n"))
                .starts_with("5: unknown field `scope`"),
        );
        assert!(refusal("[clients.acme]\nscopes = [\"a\"]\n").contains("missing field `partner`"),);
        assert!(refusal(&format!("{head}scopes = [\"a\"\n")).starts_with("4: "));
        let unreadable = refusal(&format!(
            "{head}scopes = [\"a\"]\nauth_method = \"private_key_jwt\"\njwks_file = \"no.json\"\n"
        ));
        assert!(
            unreadable.starts_with("6: clients.acme.jwks_file: cannot read /")
                && unreadable.contains("/no.json: "),
            "{unreadable}"
        );
    }
}
