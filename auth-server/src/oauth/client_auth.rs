//! Client authentication at the token endpoint, by the method each client was registered with:
//! a secret (`client_secret_basic` / `client_secret_post`, RFC 6749 §2.3.1), a TLS client
//! certificate (`tls_client_auth` / `self_signed_tls_client_auth`, RFC 8705 §2) or a signed
//! assertion (`private_key_jwt`, RFC 7523 §2.2). A request presents exactly one; a client may use
//! only its own.

use std::net::IpAddr;

use axum::http::{HeaderMap, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use edge::ClientCertificate;
use percent_encoding::percent_decode_str;
use shared_claims::ClientId;
use zeroize::Zeroizing;

use super::assertion::{self, AssertionError, Expected, JWT_BEARER};
use super::error::{ErrorCode, OAuthError};
use super::form::FormParams;
use crate::client_keys::{KeyLookupError, KeySource};
use crate::secret::{self, ClientSecret};
use crate::state::AppState;
use crate::store::{AuditEvent, Client, ClientAuthMethod, DECOY_CLIENT_ID, DirectoryEntry};
use shared_limits::LockKey;

/// How the client presented its credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    Basic,
    Post,
    Certificate,
    Assertion,
}

impl AuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::Basic => "client_secret_basic",
            AuthMethod::Post => "client_secret_post",
            AuthMethod::Certificate => "tls_client_certificate",
            AuthMethod::Assertion => "private_key_jwt",
        }
    }
}

/// Presented secret credentials. The client id is kept as sent (it may be unknown or malformed).
#[derive(Debug)]
pub struct Credentials {
    pub method: AuthMethod,
    pub client_id: String,
    pub secret: ClientSecret,
}

/// What a request presented to authenticate its client.
#[derive(Debug)]
pub enum Presented {
    /// A client secret, by HTTP Basic or in the body.
    Secret(Credentials),
    /// `client_id` alone, over a connection (or through a proxy) that presented a certificate.
    Certificate { client_id: String },
    /// A `client_assertion`; `client_id` is optional beside it (the client is its `sub`).
    Assertion {
        client_id: Option<String>,
        assertion: Zeroizing<String>,
    },
}

impl Presented {
    pub fn method(&self) -> AuthMethod {
        match self {
            Presented::Secret(creds) => creds.method,
            Presented::Certificate { .. } => AuthMethod::Certificate,
            Presented::Assertion { .. } => AuthMethod::Assertion,
        }
    }
}

/// The authenticated client, and the certificate its tokens are bound to (`cnf.x5t#S256`) when
/// it authenticated with one.
pub struct Authenticated {
    pub client: Client,
    pub bound_to: Option<String>,
}

/// Reads what the request presents to authenticate, refusing requests that present more than one
/// method, none, or a malformed one. `certificate`: whether the connection (or a trusted proxy)
/// presented a client certificate.
pub fn extract(
    headers: &HeaderMap,
    params: &mut FormParams,
    certificate: bool,
) -> Result<Presented, OAuthError> {
    // Two Authorization headers are ambiguous: taking either would let whatever sits between
    // the client and us decide who the client is.
    if headers
        .get_all(header::AUTHORIZATION)
        .iter()
        .nth(1)
        .is_some()
    {
        return Err(OAuthError::invalid_request(
            "more than one Authorization header: send the credentials once",
        ));
    }
    let assertion_type = params.take("client_assertion_type");
    let assertion = params.take("client_assertion").map(Zeroizing::new);
    if assertion_type.is_some() || assertion.is_some() {
        if headers.contains_key(header::AUTHORIZATION) || params.get("client_secret").is_some() {
            return Err(OAuthError::invalid_request(
                "use exactly one client authentication method: a client_assertion, or a client secret, not both",
            ));
        }
        let (Some(kind), Some(assertion)) = (assertion_type, assertion) else {
            return Err(OAuthError::invalid_request(
                "client_assertion and client_assertion_type go together",
            ));
        };
        if kind.as_str() != JWT_BEARER {
            return Err(OAuthError::invalid_client(
                format!("client_assertion_type must be {JWT_BEARER}"),
                false,
            ));
        }
        return Ok(Presented::Assertion {
            client_id: params.get("client_id").map(str::to_owned),
            assertion,
        });
    }
    let has_secret =
        headers.contains_key(header::AUTHORIZATION) || params.get("client_secret").is_some();
    if !has_secret
        && certificate
        && let Some(client_id) = params.get("client_id")
    {
        return Ok(Presented::Certificate {
            client_id: client_id.to_owned(),
        });
    }
    extract_secret(headers, params).map(Presented::Secret)
}

/// Reads a client secret from the `Authorization` header or the form, refusing requests that use
/// both methods, none, or a malformed Basic header.
fn extract_secret(headers: &HeaderMap, params: &mut FormParams) -> Result<Credentials, OAuthError> {
    let body_secret = params
        .take("client_secret")
        .map(ClientSecret::from_presented);
    let body_id = params.get("client_id").map(str::to_owned);
    let Some(authorization) = headers.get(header::AUTHORIZATION) else {
        return match (body_id, body_secret) {
            (Some(client_id), Some(secret)) => Ok(Credentials {
                method: AuthMethod::Post,
                client_id,
                secret,
            }),
            (Some(_), None) => Err(OAuthError::invalid_client(
                "client authentication is required: a client_secret, a TLS client certificate \
                 (at the mutual-TLS endpoint) or a client_assertion; this server has no public clients",
                false,
            )),
            (None, Some(_)) => Err(OAuthError::invalid_request(
                "client_secret was sent without client_id",
            )),
            (None, None) => Err(OAuthError::invalid_client(
                "client authentication is required (HTTP Basic, client_id and client_secret in the body, \
                 a TLS client certificate with client_id, or a client_assertion)",
                false,
            )),
        };
    };
    if body_secret.is_some() {
        return Err(OAuthError::invalid_request(
            "use exactly one client authentication method: HTTP Basic or client_secret in the body, not both",
        ));
    }
    let (client_id, secret) = parse_basic(authorization.as_bytes())?;
    if body_id.is_some_and(|id| id != client_id) {
        return Err(OAuthError::invalid_request(
            "client_id in the body differs from the one in the Authorization header",
        ));
    }
    Ok(Credentials {
        method: AuthMethod::Basic,
        client_id,
        secret,
    })
}

/// Parses `Basic base64(urlencode(id) ":" urlencode(secret))` (RFC 6749 §2.3.1, RFC 7617).
fn parse_basic(value: &[u8]) -> Result<(String, ClientSecret), OAuthError> {
    let malformed = |why: &str| {
        OAuthError::invalid_client(format!("malformed Basic authorization: {why}"), true)
    };
    let text = std::str::from_utf8(value).map_err(|_| malformed("not ASCII"))?;
    let (scheme, encoded) = text
        .split_once(' ')
        .ok_or_else(|| malformed("expected 'Basic <credentials>'"))?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(OAuthError::invalid_client(
            "unsupported authorization scheme: use HTTP Basic",
            true,
        ));
    }
    let decoded = Zeroizing::new(
        STANDARD
            .decode(encoded.trim())
            .map_err(|_| malformed("credentials are not base64"))?,
    );
    let decoded =
        std::str::from_utf8(&decoded).map_err(|_| malformed("credentials are not UTF-8"))?;
    let (id, secret) = decoded
        .split_once(':')
        .ok_or_else(|| malformed("no ':' between client id and secret"))?;
    let id = form_decode(id).ok_or_else(|| malformed("client id is not valid form-urlencoding"))?;
    let secret = form_decode(secret)
        .ok_or_else(|| malformed("client secret is not valid form-urlencoding"))?;
    if id.is_empty() || secret.is_empty() {
        return Err(malformed("empty client id or secret"));
    }
    Ok((
        id.to_string(),
        ClientSecret::from_presented(secret.to_string()),
    ))
}

/// Decodes one `application/x-www-form-urlencoded` component: `+` is a space, then percent-decoding.
fn form_decode(text: &str) -> Option<Zeroizing<String>> {
    let plus = Zeroizing::new(text.replace('+', " "));
    let decoded = percent_decode_str(&plus).decode_utf8().ok()?;
    Some(Zeroizing::new(decoded.into_owned()))
}

/// Why client authentication failed. Audited; the client is only ever told `invalid_client`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    UnknownClient,
    WrongSecret,
    ClientDisabled,
    /// The client was registered with another method than the one presented.
    WrongMethod,
    /// `tls_client_auth`: the certificate is not from a trusted CA (or is expired).
    CertificateUntrusted,
    /// The certificate is not the registered one, or does not carry the registered DN or SAN.
    CertificateMismatch,
    /// `self_signed_tls_client_auth`: the registered certificate has expired.
    CertificateExpired,
    /// `client_id` in the form names another client than the assertion's `sub`.
    ClientIdMismatch,
    /// The assertion was refused (see [`AssertionError`]), or its `jti` was used before.
    Assertion(AssertionError),
}

impl AuthFailure {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthFailure::UnknownClient => "unknown_client",
            AuthFailure::WrongSecret => "wrong_secret",
            AuthFailure::ClientDisabled => "client_disabled",
            AuthFailure::WrongMethod => "wrong_method",
            AuthFailure::CertificateUntrusted => "certificate_untrusted",
            AuthFailure::CertificateMismatch => "certificate_mismatch",
            AuthFailure::CertificateExpired => "certificate_expired",
            AuthFailure::ClientIdMismatch => "client_id_mismatch",
            AuthFailure::Assertion(err) => err.as_str(),
        }
    }
}

/// The decision on a secret, from what the directory holds for the presented id and whether the
/// presented secret matched one of its live secrets. The secret is judged before the method and
/// the disabled flag, so a wrong guess at any client is a wrong secret, like anywhere else.
pub fn judge(client: Option<&Client>, secret_matches: bool) -> Result<(), AuthFailure> {
    match client {
        None => Err(AuthFailure::UnknownClient),
        Some(_) if !secret_matches => Err(AuthFailure::WrongSecret),
        Some(client)
            if !client.auth_method.uses_secret()
                && client.auth_method != ClientAuthMethod::ApiKey =>
        {
            Err(AuthFailure::WrongMethod)
        }
        Some(client) if client.is_disabled() => Err(AuthFailure::ClientDisabled),
        Some(_) => Ok(()),
    }
}

/// The decision on a certificate presented for `entry`'s client (RFC 8705 §2.1, §2.2).
pub fn judge_certificate(
    entry: Option<&DirectoryEntry>,
    cert: &ClientCertificate,
) -> Result<(), AuthFailure> {
    let Some(entry) = entry else {
        return Err(AuthFailure::UnknownClient);
    };
    let client = &entry.client;
    match client.auth_method {
        ClientAuthMethod::TlsClientAuth => {
            if !cert.issued_by_trusted_ca() {
                return Err(AuthFailure::CertificateUntrusted);
            }
            let matches = match (&client.tls_subject, &client.tls_san) {
                (Some(dn), _) => cert.subject_matches(dn),
                (None, Some(san)) => cert.has_san(san),
                (None, None) => false,
            };
            if !matches {
                return Err(AuthFailure::CertificateMismatch);
            }
        }
        ClientAuthMethod::SelfSignedTlsClientAuth => {
            let presented = cert.x5t_s256().as_bytes();
            // Every registered thumbprint is compared, in constant time.
            let mut found = false;
            for registered in &entry.certs {
                found |= ring_eq(registered.thumbprint.as_bytes(), presented);
            }
            if !found {
                return Err(AuthFailure::CertificateMismatch);
            }
            if !cert.is_current() {
                return Err(AuthFailure::CertificateExpired);
            }
        }
        _ => return Err(AuthFailure::WrongMethod),
    }
    if client.is_disabled() {
        return Err(AuthFailure::ClientDisabled);
    }
    Ok(())
}

fn ring_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// Checks what the request presented. Every failure answers the same `invalid_client`, is
/// counted towards the lockouts and audited; an unknown client id with a secret still costs a
/// hash comparison, so the answer does not reveal which clients exist.
pub async fn authenticate(
    state: &AppState,
    presented: &Presented,
    certificate: Option<&ClientCertificate>,
    source: Option<IpAddr>,
) -> Result<Authenticated, OAuthError> {
    let now = crate::now();
    let method = presented.method();
    // Who is being authenticated, as sent (bounded): the lockout key, so guesses at unknown ids
    // count too.
    let attempted: String = match presented {
        Presented::Secret(creds) => creds.client_id.clone(),
        Presented::Certificate { client_id } => client_id.clone(),
        Presented::Assertion {
            client_id,
            assertion,
        } => assertion::peek(assertion)
            .ok()
            .and_then(|p| p.sub)
            .or_else(|| client_id.clone())
            .unwrap_or_default(),
    }
    .chars()
    .take(ClientId::MAX_LEN)
    .collect();
    if let Some(ip) = source
        && let Some(wait) = state.lockouts.check(&attempted, ip).await
    {
        return Err(OAuthError::TooManyAttempts { retry_after: wait });
    }
    let client_id = ClientId::parse(&attempted).ok();
    let outcome = match presented {
        Presented::Secret(creds) => by_secret(state, creds, client_id.as_ref(), now)
            .await?
            .map(|client| (client, None)),
        Presented::Certificate { .. } => match certificate {
            Some(cert) => by_certificate(state, client_id.as_ref(), cert)
                .await?
                .map(|client| (client, Some(cert.x5t_s256().to_owned()))),
            None => Err(AuthFailure::WrongMethod),
        },
        Presented::Assertion {
            client_id: form_id,
            assertion,
        } => {
            if form_id.as_ref().is_some_and(|id| *id != attempted) {
                Err(AuthFailure::ClientIdMismatch)
            } else {
                by_assertion(state, client_id.as_ref(), assertion, now)
                    .await?
                    .map(|client| (client, None))
            }
        }
    };
    match outcome {
        Ok((client, bound_to)) => {
            // The request's log lines name the client from here on (never before it proved
            // who it is: an unauthenticated id is whatever the caller typed).
            tracing::Span::current().record("client_id", client.client_id.as_str());
            if client.auth_method == ClientAuthMethod::ApiKey {
                // Its key is right, and no grant is open to it (RFC 6749 §5.2).
                return Err(OAuthError::client(
                    ErrorCode::UnauthorizedClient,
                    "this client holds an API key, which is sent to the partner API on each \
                     request (X-API-Key); it gets no tokens",
                ));
            }
            Ok(Authenticated { client, bound_to })
        }
        Err(failure) => {
            record_failure(
                state,
                method,
                client_id.as_ref(),
                &attempted,
                source,
                failure,
                now,
            )
            .await?;
            Err(OAuthError::invalid_client(
                "client authentication failed",
                method == AuthMethod::Basic,
            ))
        }
    }
}

/// A decision on the presented credentials, or a server-side failure that kept us from deciding.
type Decision<T> = Result<Result<T, AuthFailure>, OAuthError>;

/// Runs `check` against the directory; on any failure brings the directory up to date (a
/// client, secret, certificate or key registered a moment ago by the CLI) and checks again.
async fn with_fresh_directory<T>(
    state: &AppState,
    check: impl Fn() -> Result<T, AuthFailure>,
) -> Decision<T> {
    let first = check();
    if first.is_ok() {
        return Ok(first);
    }
    state.clients.refresh(&state.db).await?;
    Ok(check())
}

async fn by_secret(
    state: &AppState,
    creds: &Credentials,
    client_id: Option<&ClientId>,
    now: i64,
) -> Decision<Client> {
    let presented = creds.secret.hash();
    // An `api_key` client's key is stored as its keyed hash: it authenticates here only to be
    // told that keys do not get tokens.
    // (No hash key held: nothing matches.)
    let presented_key = state
        .api_keys
        .hash(creds.secret.expose().as_bytes())
        .unwrap_or([0u8; 32]);
    // Exactly one lookup whatever the id: a malformed id is looked up as the decoy.
    let lookup = client_id.map_or(DECOY_CLIENT_ID, |id| id.as_str());
    let check = || {
        let (client, mut stored) = state.clients.for_auth(lookup, now);
        if client.is_none() && stored.is_empty() {
            stored = secret::decoy_hashes();
        }
        let presented = match client.as_ref().map(|c| c.auth_method) {
            Some(ClientAuthMethod::ApiKey) => &presented_key,
            _ => &presented,
        };
        judge(client.as_ref(), secret::matches_any(presented, &stored))?;
        client.ok_or(AuthFailure::UnknownClient)
    };
    with_fresh_directory(state, check).await
}

async fn by_certificate(
    state: &AppState,
    client_id: Option<&ClientId>,
    cert: &ClientCertificate,
) -> Decision<Client> {
    let Some(client_id) = client_id else {
        return Ok(Err(AuthFailure::UnknownClient));
    };
    let check = || {
        let entry = state.clients.entry(client_id.as_str());
        judge_certificate(entry.as_deref(), cert)?;
        entry
            .map(|e| e.client.clone())
            .ok_or(AuthFailure::UnknownClient)
    };
    with_fresh_directory(state, check).await
}

async fn by_assertion(
    state: &AppState,
    client_id: Option<&ClientId>,
    assertion: &str,
    now: i64,
) -> Decision<Client> {
    let peeked = match assertion::peek(assertion) {
        Ok(peeked) => peeked,
        Err(err) => return Ok(Err(AuthFailure::Assertion(err))),
    };
    let Some(client_id) = client_id else {
        return Ok(Err(AuthFailure::UnknownClient));
    };
    let check = || {
        let entry = state
            .clients
            .entry(client_id.as_str())
            .ok_or(AuthFailure::UnknownClient)?;
        if entry.client.auth_method != ClientAuthMethod::PrivateKeyJwt {
            return Err(AuthFailure::WrongMethod);
        }
        Ok(entry)
    };
    let entry = match with_fresh_directory(state, check).await? {
        Ok(entry) => entry,
        Err(failure) => return Ok(Err(failure)),
    };
    let client = &entry.client;
    let source = match (&client.jwks, &client.jwks_uri) {
        (Some(doc), _) => KeySource::Document(doc.as_str().into()),
        (None, Some(uri)) => KeySource::Uri(uri.clone()),
        (None, None) => return Ok(Err(AuthFailure::Assertion(AssertionError::UnknownKey))),
    };
    let key = match state
        .client_keys
        .keys_for(client_id.as_str(), &source, peeked.kid.as_deref())
        .await
    {
        Ok(key) => key,
        Err(err) => {
            if matches!(err, KeyLookupError::Unavailable(_)) {
                tracing::warn!(client_id = %client_id, error = %err, "a private_key_jwt client's keys are unavailable");
            }
            return Ok(Err(AuthFailure::Assertion((&err).into())));
        }
    };
    let expect = Expected::new(client_id.as_str(), &state.config.issuer, now);
    let verified = match assertion::verify(assertion, &key, &expect) {
        Ok(verified) => verified,
        Err(err) => return Ok(Err(AuthFailure::Assertion(err))),
    };
    if client.is_disabled() {
        return Ok(Err(AuthFailure::ClientDisabled));
    }
    // Single use, across every instance sharing the database, for as long as it would be
    // accepted (its `exp` and the leeway).
    if !state
        .db
        .spend_assertion(
            client_id.as_str(),
            &verified.jti,
            verified.exp.saturating_add(expect.leeway),
        )
        .await?
    {
        return Ok(Err(AuthFailure::Assertion(AssertionError::Replayed)));
    }
    Ok(Ok(client.clone()))
}

/// The effects of a failed authentication: the lockout counters (and a `client.lockout` event
/// for each budget it spends), a `client.auth_failed` event, and a log line without secrets.
/// The events are committed together; fails when they cannot be.
async fn record_failure(
    state: &AppState,
    method: AuthMethod,
    client_id: Option<&ClientId>,
    attempted: &str,
    source: Option<IpAddr>,
    failure: AuthFailure,
    now: i64,
) -> anyhow::Result<()> {
    let mut events = Vec::new();
    if let Some(ip) = source {
        for (key, wait) in state.lockouts.record_failure(attempted, ip).await {
            let (scope, locked_client) = match &key {
                LockKey::Source(_) => ("source", None),
                LockKey::ClientAtSource(id, _) => ("client_at_source", Some(id.as_str())),
            };
            tracing::warn!(scope, source = %ip, seconds = wait.as_secs(), "authentication lockout");
            let event = AuditEvent::new(
                "server",
                "client.lockout",
                now,
                serde_json::json!({ "scope": scope, "seconds": wait.as_secs().max(1) }),
            )
            .about(locked_client.filter(|c| ClientId::parse(c).is_ok()))
            .from_source(source);
            events.push(event);
        }
    }
    let event = AuditEvent::new(
        "server",
        "client.auth_failed",
        now,
        serde_json::json!({ "reason": failure.as_str(), "method": method.as_str() }),
    )
    .about(client_id.map(ClientId::as_str))
    .from_source(source);
    events.push(event);
    state.metrics.client_auth_failed(failure.as_str());
    tracing::info!(
        reason = failure.as_str(),
        method = method.as_str(),
        "client authentication failed"
    );
    state.audit.record_all(events).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_id_a_wrong_secret_and_a_disabled_client_are_told_apart_for_the_audit() {
        let mut client = Client {
            client_id: ClientId::parse("cl_1").unwrap(),
            name: "test".into(),
            partner_id: shared_claims::PartnerId::parse("acme").unwrap(),
            scopes: shared_claims::ScopeSet::parse("orders:read").unwrap(),
            audiences: vec!["partner-api".into()],
            access_token_ttl: None,
            refresh_enabled: true,
            introspect_allowed: false,
            disabled_at: None,
            created_at: 0,
            updated_at: 0,
            auth_method: ClientAuthMethod::ClientSecretBasic,
            tls_subject: None,
            tls_san: None,
            jwks: None,
            jwks_uri: None,
        };
        assert_eq!(judge(Some(&client), true), Ok(()));
        assert_eq!(judge(None, true), Err(AuthFailure::UnknownClient));
        assert_eq!(judge(Some(&client), false), Err(AuthFailure::WrongSecret));
        client.disabled_at = Some(1);
        assert_eq!(judge(Some(&client), true), Err(AuthFailure::ClientDisabled));
        assert_eq!(
            judge(Some(&client), false),
            Err(AuthFailure::WrongSecret),
            "a wrong guess at a disabled client is just a wrong secret"
        );
        client.disabled_at = None;
        client.auth_method = ClientAuthMethod::PrivateKeyJwt;
        assert_eq!(
            judge(Some(&client), true),
            Err(AuthFailure::WrongMethod),
            "a client registered for another method cannot use a secret"
        );
    }

    fn basic(raw: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            format!("Basic {}", STANDARD.encode(raw)).parse().unwrap(),
        );
        h
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        let mut params = FormParams::default();
        let c = extract_secret(&basic("cl_1:a%2Bb+c%3A%25"), &mut params).unwrap();
        assert_eq!(c.method, AuthMethod::Basic);
        assert_eq!(c.client_id, "cl_1");
        assert_eq!(c.secret.expose(), "a+b c:%");
    }

    #[test]
    fn both_methods_at_once_are_refused() {
        let mut params = FormParams::parse(b"client_secret=x").unwrap();
        let err = extract_secret(&basic("cl_1:s"), &mut params).unwrap_err();
        assert!(matches!(
            err,
            OAuthError::Client {
                code: ErrorCode::InvalidRequest,
                ..
            }
        ));
    }

    #[test]
    fn malformed_basic_headers_are_invalid_client_with_challenge() {
        for raw in ["Basic !!!", "Basic", "Bearer abc"] {
            let mut h = HeaderMap::new();
            h.insert(header::AUTHORIZATION, raw.parse().unwrap());
            let err = extract_secret(&h, &mut FormParams::default()).unwrap_err();
            assert!(
                matches!(
                    err,
                    OAuthError::Client {
                        basic_challenge: true,
                        ..
                    }
                ),
                "{raw}"
            );
        }
        for raw in ["nocolon", ":secret", "id:"] {
            let err = extract_secret(&basic(raw), &mut FormParams::default()).unwrap_err();
            assert!(
                matches!(
                    err,
                    OAuthError::Client {
                        basic_challenge: true,
                        ..
                    }
                ),
                "{raw}"
            );
        }
    }
}
