//! `POST /oauth2/token`: the client-credentials grant (RFC 6749 §4.4) and the refresh-token grant
//! (§6), issuing RFC 9068 access tokens and rotating refresh tokens.
//!
//! RFC 6749 §4.4.3 advises against refresh tokens for the client-credentials grant. We issue them
//! on purpose (per client, `--no-refresh` turns them off): a partner's long-lived secret then
//! travels once per refresh-token lifetime instead of every ten minutes, and revocation has a table
//! to act on. Refresh tokens rotate on every use, and a spent token presented again revokes its
//! whole family.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use shared_claims::{AccessTokenClaims, Audience, Confirmation, ScopeSet};
use zeroize::Zeroizing;

use super::error::{ErrorCode, OAuthError};
use super::form::FormParams;
use super::no_store;
use super::request::{ClientForm, ClientRequest, FromForm};
use crate::metrics::{Grant, Outcome};
use crate::secret::{REFRESH_PREFIX, hash_secret, random_token};
use crate::state::AppState;
use crate::store::{AuditEvent, Client, RefreshRow, Spend};

/// RFC 6749 §5.1.
#[derive(Serialize, utoipa::ToSchema)]
pub struct TokenResponse {
    /// An RFC 9068 JWT (`typ: at+jwt`).
    pub access_token: String,
    #[schema(value_type = String, pattern = "^Bearer$")]
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    #[schema(minimum = 1)]
    pub expires_in: i64,
    /// The granted scopes, space-separated.
    pub scope: String,
    /// Opaque; spend it at this endpoint with `grant_type=refresh_token`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// The grant types of the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantType {
    ClientCredentials,
    RefreshToken,
}

impl FromForm for GrantType {
    /// Checked before the client is authenticated: a request without a supported `grant_type` is
    /// refused as such, whoever sends it.
    fn from_form(params: &FormParams) -> Result<GrantType, OAuthError> {
        match params.get("grant_type") {
            None => Err(OAuthError::invalid_request("grant_type is required")),
            Some("client_credentials") => Ok(GrantType::ClientCredentials),
            Some("refresh_token") => Ok(GrantType::RefreshToken),
            Some(_) => Err(OAuthError::client(
                ErrorCode::UnsupportedGrantType,
                "supported grant types: client_credentials, refresh_token",
            )),
        }
    }
}

/// Issues an access token (client credentials) or spends a refresh token for a new pair. Every
/// request is counted by grant type and outcome, refusals included: the form is read as a
/// [`ClientForm`] so the grant type is known before the client is authenticated, whatever
/// becomes of the request.
#[utoipa::path(
    post,
    path = "/oauth2/token",
    tag = crate::openapi::OAUTH_TAG,
    request_body(content = crate::openapi::TokenRequest, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "RFC 6749 §5.1: the access token (a RFC 9068 JWT) and, when the client has refresh enabled, a rotated refresh token.",
         body = TokenResponse,
         headers(("Cache-Control" = String, description = "`no-store`."), ("Pragma" = String, description = "`no-cache`."))),
    )
)]
pub async fn token(
    State(state): State<AppState>,
    form: Result<ClientForm, OAuthError>,
) -> Response {
    let (grant, result) = grant(&state, form).await;
    let grant = match grant {
        Some(GrantType::ClientCredentials) => Grant::ClientCredentials,
        Some(GrantType::RefreshToken) => Grant::RefreshToken,
        None => Grant::Other,
    };
    state.metrics.token_request(grant, Outcome::of(&result));
    match result {
        Ok(response) => no_store(Json(response)),
        Err(err) => err.into_response(),
    }
}

/// The grant type, when the request named a supported one, and the grant's answer.
async fn grant(
    state: &AppState,
    form: Result<ClientForm, OAuthError>,
) -> (Option<GrantType>, Result<TokenResponse, OAuthError>) {
    let form = match form {
        Ok(form) => form,
        Err(err) => return (None, Err(err)),
    };
    let grant = match GrantType::from_form(form.params()) {
        Ok(grant) => grant,
        Err(err) => return (None, Err(err)),
    };
    let request = match form.authenticate(state, grant).await {
        Ok(request) => request,
        Err(err) => return (Some(grant), Err(err)),
    };
    let response = match grant {
        GrantType::ClientCredentials => client_credentials(state, &request).await,
        GrantType::RefreshToken => refresh(state, request).await,
    };
    (Some(grant), response)
}

async fn client_credentials(
    state: &AppState,
    request: &ClientRequest<GrantType>,
) -> Result<TokenResponse, OAuthError> {
    let client = &request.client;
    let scope = requested_scope(&request.params, &client.scopes)?;
    let audiences = requested_audiences(&request.params, client)?;
    let refresh_token = if client.refresh_enabled {
        let now = crate::now();
        let token = random_token(REFRESH_PREFIX)?;
        let row = RefreshRow {
            id: uuid::Uuid::now_v7().to_string(),
            token_hash: hash_secret(token.as_bytes()).to_vec(),
            client_id: client.client_id.as_str().to_owned(),
            family_id: uuid::Uuid::new_v4().to_string(),
            scope: scope.to_string(),
            audiences: serde_json::to_string(&audiences).map_err(anyhow::Error::from)?,
            created_at: now,
            expires_at: now + state.config.refresh_token_ttl,
            used_at: None,
            revoked_at: None,
        };
        state.db.insert_refresh_token(&row).await?;
        Some(token)
    } else {
        None
    };
    issue(state, request, scope, audiences, refresh_token).await
}

/// Why a presented refresh token is refused. The client is told only `invalid_grant`; the reason
/// decides what else happens (an audit event, the family's revocation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RefreshRefusal {
    /// No such token.
    Unknown,
    /// Another client's token: refused without saying so, the owner's family left alone.
    OtherClient,
    /// Revoked (the family was revoked, or its client disabled).
    Revoked,
    /// Past its family's lifetime.
    Expired,
    /// Spent already: whoever holds the family may be an attacker.
    Spent,
}

/// The decision on a presented refresh token, from its row, the authenticated client and the
/// time alone.
fn judge_refresh(
    row: Option<&RefreshRow>,
    client: &Client,
    now: i64,
) -> Result<(), RefreshRefusal> {
    let Some(row) = row else {
        return Err(RefreshRefusal::Unknown);
    };
    if row.client_id != client.client_id.as_str() {
        return Err(RefreshRefusal::OtherClient);
    }
    if row.revoked_at.is_some() {
        return Err(RefreshRefusal::Revoked);
    }
    if row.expires_at <= now {
        return Err(RefreshRefusal::Expired);
    }
    if row.used_at.is_some() {
        return Err(RefreshRefusal::Spent);
    }
    Ok(())
}

/// The scope a family may still grant: what it was granted, less what the client may no longer
/// have. The access token may narrow it further (RFC 6749 §6).
fn family_scope(row: &RefreshRow, client: &Client) -> anyhow::Result<ScopeSet> {
    let granted = ScopeSet::parse(&row.scope).map_err(|e| anyhow::anyhow!("stored scope: {e}"))?;
    Ok(granted
        .iter()
        .filter(|s| client.scopes.contains(s.as_str()))
        .cloned()
        .collect())
}

fn invalid_grant() -> OAuthError {
    OAuthError::client(
        ErrorCode::InvalidGrant,
        "the refresh token is invalid, expired or revoked",
    )
}

/// The refresh-token grant: spends the presented token and returns a new access token with a new
/// refresh token of the same family.
async fn refresh(
    state: &AppState,
    mut request: ClientRequest<GrantType>,
) -> Result<TokenResponse, OAuthError> {
    let client = &request.client;
    if !client.refresh_enabled {
        return Err(OAuthError::client(
            ErrorCode::UnauthorizedClient,
            "refresh tokens are not enabled for this client",
        ));
    }
    let presented = Zeroizing::new(
        request
            .params
            .take("refresh_token")
            .ok_or_else(|| OAuthError::invalid_request("refresh_token is required"))?,
    );
    let now = crate::now();
    let row = state
        .db
        .refresh_token_by_hash(&hash_secret(presented.as_bytes()))
        .await?;
    let audit = |action: &str, family: &str| {
        AuditEvent::by_client(
            &client.client_id,
            action,
            now,
            serde_json::json!({ "family": family }),
        )
        .from_source(request.source)
    };
    match (judge_refresh(row.as_ref(), client, now), &row) {
        (Ok(()), Some(row)) => {
            let scope = requested_scope(&request.params, &family_scope(row, client)?)?;
            let audiences: Vec<String> =
                serde_json::from_str(&row.audiences).map_err(anyhow::Error::from)?;
            let token = random_token(REFRESH_PREFIX)?;
            let successor = RefreshRow {
                id: uuid::Uuid::now_v7().to_string(),
                token_hash: hash_secret(token.as_bytes()).to_vec(),
                created_at: now,
                used_at: None,
                revoked_at: None,
                ..row.clone()
            };
            match state
                .db
                .spend_refresh_token(&row.id, &successor, now)
                .await?
            {
                Spend::Rotated => issue(state, &request, scope, audiences, Some(token)).await,
                // Spent between our read and our update: another request won the race.
                Spend::AlreadySpent => {
                    let mut event = audit("refresh.reuse_detected", &row.family_id);
                    event.detail["race"] = true.into();
                    Err(reuse_detected(state, row, event).await)
                }
            }
        }
        (Err(RefreshRefusal::OtherClient), Some(row)) => {
            state
                .audit
                .record(audit("refresh.wrong_client", &row.family_id))
                .await?;
            Err(invalid_grant())
        }
        (Err(RefreshRefusal::Spent), Some(row)) => {
            let event = audit("refresh.reuse_detected", &row.family_id);
            Err(reuse_detected(state, row, event).await)
        }
        _ => Err(invalid_grant()),
    }
}

/// A spent refresh token came back: whoever holds the family may be an attacker, so every token
/// of the family dies, the newest included.
async fn reuse_detected(state: &AppState, row: &RefreshRow, audit: AuditEvent) -> OAuthError {
    match state
        .db
        .revoke_refresh_family(&row.family_id, audit.at, &audit)
        .await
    {
        Ok(count) => tracing::warn!(
            family = row.family_id,
            revoked = count,
            "refresh token reuse detected; family revoked"
        ),
        Err(err) => return err.into(),
    }
    invalid_grant()
}

/// The requested scope, or all of `allowed` when none is named; never more than `allowed`.
fn requested_scope(params: &FormParams, allowed: &ScopeSet) -> Result<ScopeSet, OAuthError> {
    let scope = match params.get("scope") {
        None => allowed.clone(),
        Some(text) => {
            let asked = ScopeSet::parse(text).map_err(|e| {
                OAuthError::client(ErrorCode::InvalidScope, format!("malformed scope: {e}"))
            })?;
            if !asked.is_subset(allowed) {
                let extra: Vec<&str> = asked.difference(allowed).map(|s| s.as_str()).collect();
                return Err(OAuthError::client(
                    ErrorCode::InvalidScope,
                    format!("scope not allowed: {}", extra.join(" ")),
                ));
            }
            asked
        }
    };
    if scope.is_empty() {
        return Err(OAuthError::client(
            ErrorCode::InvalidScope,
            "no scope is left to grant",
        ));
    }
    Ok(scope)
}

/// RFC 8707 `resource`: each must be one of the client's audiences; none means the first.
fn requested_audiences(params: &FormParams, client: &Client) -> Result<Vec<String>, OAuthError> {
    let resources = params.all("resource");
    if resources.is_empty() {
        let default = client.audiences.first().ok_or_else(|| {
            OAuthError::client(ErrorCode::InvalidTarget, "this client has no audience")
        })?;
        return Ok(vec![default.clone()]);
    }
    let mut chosen = Vec::with_capacity(resources.len());
    for resource in resources {
        if !client.audiences.contains(resource) {
            return Err(OAuthError::client(
                ErrorCode::InvalidTarget,
                "resource is not an audience of this client",
            ));
        }
        if !chosen.contains(resource) {
            chosen.push(resource.clone());
        }
    }
    Ok(chosen)
}

/// Signs the access token (bound to the client's certificate when it authenticated with one)
/// and records the issuance.
async fn issue(
    state: &AppState,
    request: &ClientRequest<GrantType>,
    scope: ScopeSet,
    audiences: Vec<String>,
    refresh_token: Option<Zeroizing<String>>,
) -> Result<TokenResponse, OAuthError> {
    let client = &request.client;
    let keys = state.keys.get();
    let key = keys.active().ok_or(OAuthError::NoSigningKey)?;
    let now = crate::now();
    let ttl = client
        .access_token_ttl
        .unwrap_or(state.config.access_token_ttl);
    let claims = AccessTokenClaims {
        iss: state.config.issuer.clone(),
        sub: client.client_id.as_str().to_owned(),
        aud: Audience::from_list(audiences),
        exp: now + ttl,
        iat: now,
        nbf: now,
        jti: uuid::Uuid::new_v4().to_string(),
        client_id: client.client_id.clone(),
        scope,
        partner_id: client.partner_id.clone(),
        cnf: request
            .bound_to
            .clone()
            .map(|x5t_s256| Confirmation { x5t_s256 }),
    };
    let access_token = key.sign_jwt(&claims).map_err(anyhow::Error::from)?;
    let event = AuditEvent::by_client(
        &client.client_id,
        "token.issue",
        now,
        serde_json::json!({
            "jti": claims.jti,
            "kid": key.kid(),
            "scope": claims.scope,
            "aud": claims.aud,
            "exp": claims.exp,
            "refresh_token": refresh_token.is_some(),
            "cnf": claims.cnf,
        }),
    )
    .from_source(request.source);
    state.audit.record(event).await?;
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: ttl,
        scope: claims.scope.to_string(),
        refresh_token: refresh_token.map(|t| t.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use shared_claims::{ClientId, PartnerId};

    use super::*;

    fn client(id: &str, scopes: &str) -> Client {
        Client {
            client_id: ClientId::parse(id).unwrap(),
            name: "test".into(),
            partner_id: PartnerId::parse("acme").unwrap(),
            scopes: ScopeSet::parse(scopes).unwrap(),
            audiences: vec!["partner-api".into()],
            access_token_ttl: None,
            refresh_enabled: true,
            introspect_allowed: false,
            disabled_at: None,
            created_at: 0,
            updated_at: 0,
            auth_method: crate::store::ClientAuthMethod::ClientSecretBasic,
            tls_subject: None,
            tls_san: None,
            jwks: None,
            jwks_uri: None,
        }
    }

    fn row(owner: &str) -> RefreshRow {
        RefreshRow {
            id: "r1".into(),
            token_hash: vec![0; 32],
            client_id: owner.into(),
            family_id: "f1".into(),
            scope: "catalog:read orders:read".into(),
            audiences: "[\"partner-api\"]".into(),
            created_at: 100,
            expires_at: 200,
            used_at: None,
            revoked_at: None,
        }
    }

    #[test]
    fn a_refresh_token_is_judged_by_owner_then_revocation_expiry_and_use() {
        let me = client("cl_me", "orders:read");
        let live = row("cl_me");
        assert_eq!(judge_refresh(Some(&live), &me, 150), Ok(()));
        assert_eq!(judge_refresh(None, &me, 150), Err(RefreshRefusal::Unknown));
        // Another client's token is that, whatever else is wrong with it: its family is left
        // alone even when it was spent.
        let theirs = RefreshRow {
            used_at: Some(120),
            ..row("cl_other")
        };
        assert_eq!(
            judge_refresh(Some(&theirs), &me, 150),
            Err(RefreshRefusal::OtherClient)
        );
        let revoked = RefreshRow {
            revoked_at: Some(120),
            used_at: Some(120),
            ..live.clone()
        };
        assert_eq!(
            judge_refresh(Some(&revoked), &me, 150),
            Err(RefreshRefusal::Revoked)
        );
        assert_eq!(
            judge_refresh(Some(&live), &me, 200),
            Err(RefreshRefusal::Expired),
            "expires_at is the first second it is refused"
        );
        let spent = RefreshRow {
            used_at: Some(120),
            ..live
        };
        assert_eq!(
            judge_refresh(Some(&spent), &me, 150),
            Err(RefreshRefusal::Spent)
        );
    }

    #[test]
    fn a_family_grants_no_scope_its_client_has_lost() {
        let me = client("cl_me", "orders:read invoices:read");
        let scope = family_scope(&row("cl_me"), &me).unwrap();
        assert_eq!(scope.to_string(), "orders:read");
    }
}
