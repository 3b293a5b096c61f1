//! Client authentication at the token endpoint: `client_secret_basic` and `client_secret_post`
//! (RFC 6749 §2.3.1), exactly one of them per request.

use std::net::IpAddr;

use axum::http::{HeaderMap, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use percent_encoding::percent_decode_str;
use shared_claims::ClientId;
use zeroize::Zeroizing;

use super::error::OAuthError;
use super::form::FormParams;
use crate::secret::{self, ClientSecret};
use crate::state::AppState;
use crate::store::{AuditEvent, Client, DECOY_CLIENT_ID};
use shared_limits::LockKey;

/// How the client presented its credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    Basic,
    Post,
}

impl AuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::Basic => "client_secret_basic",
            AuthMethod::Post => "client_secret_post",
        }
    }
}

/// Presented credentials. The client id is kept as sent (it may be unknown or malformed).
#[derive(Debug)]
pub struct Credentials {
    pub method: AuthMethod,
    pub client_id: String,
    pub secret: ClientSecret,
}

/// Reads the credentials from the `Authorization` header or the form, refusing requests that use
/// both methods, none, or a malformed Basic header.
pub fn extract(headers: &HeaderMap, params: &mut FormParams) -> Result<Credentials, OAuthError> {
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
                "client_secret is required: this server has no public clients",
                false,
            )),
            (None, Some(_)) => Err(OAuthError::invalid_request(
                "client_secret was sent without client_id",
            )),
            (None, None) => Err(OAuthError::invalid_client(
                "client authentication is required (HTTP Basic or client_id and client_secret in the body)",
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
}

impl AuthFailure {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthFailure::UnknownClient => "unknown_client",
            AuthFailure::WrongSecret => "wrong_secret",
            AuthFailure::ClientDisabled => "client_disabled",
        }
    }
}

/// The decision, from what the directory holds for the presented id and whether the presented
/// secret matched one of its live secrets. The secret is judged before the disabled flag, so a
/// wrong guess at a disabled client is a wrong secret, like anywhere else.
pub fn judge(client: Option<&Client>, secret_matches: bool) -> Result<(), AuthFailure> {
    match client {
        None => Err(AuthFailure::UnknownClient),
        Some(_) if !secret_matches => Err(AuthFailure::WrongSecret),
        Some(client) if client.is_disabled() => Err(AuthFailure::ClientDisabled),
        Some(_) => Ok(()),
    }
}

/// Checks the credentials. Unknown client, wrong secret and disabled client all answer the same
/// `invalid_client`, and an unknown client id still costs a hash comparison, so the answer does
/// not reveal which clients exist. Every failure is counted towards the lockouts and audited.
pub async fn authenticate(
    state: &AppState,
    creds: &Credentials,
    source: Option<IpAddr>,
) -> Result<Client, OAuthError> {
    let now = crate::now();
    // The lockout key uses the id as sent (bounded), so guesses at unknown ids count too.
    let attempted: String = creds.client_id.chars().take(ClientId::MAX_LEN).collect();
    if let Some(ip) = source
        && let Some(wait) = state.lockouts.check(&attempted, ip).await
    {
        return Err(OAuthError::TooManyAttempts { retry_after: wait });
    }
    let presented = creds.secret.hash();
    let client_id = ClientId::parse(&creds.client_id).ok();
    // Exactly one lookup whatever the id: a malformed id is looked up as the decoy.
    let lookup = client_id.as_ref().map_or(DECOY_CLIENT_ID, |id| id.as_str());
    let check = || {
        let (client, mut stored) = state.clients.for_auth(lookup, now);
        if client.is_none() && stored.is_empty() {
            stored = secret::decoy_hashes();
        }
        let verdict = judge(client.as_ref(), secret::matches_any(&presented, &stored));
        (client, verdict)
    };
    let (mut client, mut verdict) = check();
    // The in-memory directory may not have seen a change made elsewhere yet (a client or secret
    // created a moment ago by the CLI): every failure, whatever its reason, brings it up to date
    // and checks again (the background refresher may be the one that reloaded it).
    if verdict.is_err() {
        state.clients.refresh(&state.db).await?;
        (client, verdict) = check();
    }
    match (client, verdict) {
        (Some(client), Ok(())) => Ok(client),
        (_, verdict) => {
            let failure = verdict.err().unwrap_or(AuthFailure::UnknownClient);
            record_failure(
                state,
                creds,
                client_id.as_ref(),
                &attempted,
                source,
                failure,
                now,
            )
            .await;
            Err(OAuthError::invalid_client(
                "client authentication failed",
                creds.method == AuthMethod::Basic,
            ))
        }
    }
}

/// The effects of a failed authentication: the lockout counters (and a `client.lockout` event
/// for each budget it spends), a `client.auth_failed` event, and a log line without secrets.
async fn record_failure(
    state: &AppState,
    creds: &Credentials,
    client_id: Option<&ClientId>,
    attempted: &str,
    source: Option<IpAddr>,
    failure: AuthFailure,
    now: i64,
) {
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
            state.audit.record(event).await;
        }
    }
    let event = AuditEvent::new(
        "server",
        "client.auth_failed",
        now,
        serde_json::json!({ "reason": failure.as_str(), "method": creds.method.as_str() }),
    )
    .about(client_id.map(ClientId::as_str))
    .from_source(source);
    state.audit.record(event).await;
    tracing::info!(
        reason = failure.as_str(),
        method = creds.method.as_str(),
        "client authentication failed"
    );
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
        let c = extract(&basic("cl_1:a%2Bb+c%3A%25"), &mut params).unwrap();
        assert_eq!(c.method, AuthMethod::Basic);
        assert_eq!(c.client_id, "cl_1");
        assert_eq!(c.secret.expose(), "a+b c:%");
    }

    #[test]
    fn both_methods_at_once_are_refused() {
        let mut params = FormParams::parse(b"client_secret=x").unwrap();
        let err = extract(&basic("cl_1:s"), &mut params).unwrap_err();
        assert!(matches!(
            err,
            OAuthError::Client {
                code: super::super::error::ErrorCode::InvalidRequest,
                ..
            }
        ));
    }

    #[test]
    fn malformed_basic_headers_are_invalid_client_with_challenge() {
        for raw in ["Basic !!!", "Basic", "Bearer abc"] {
            let mut h = HeaderMap::new();
            h.insert(header::AUTHORIZATION, raw.parse().unwrap());
            let err = extract(&h, &mut FormParams::default()).unwrap_err();
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
            let err = extract(&basic(raw), &mut FormParams::default()).unwrap_err();
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
