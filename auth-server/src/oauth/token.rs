//! `POST /oauth2/token`: the client-credentials grant (RFC 6749 §4.4) and the refresh-token grant
//! (§6), issuing RFC 9068 access tokens and rotating refresh tokens.
//!
//! RFC 6749 §4.4.3 advises against refresh tokens for the client-credentials grant. We issue them
//! on purpose (per client, `--no-refresh` turns them off): a partner's long-lived secret then
//! travels once per refresh-token lifetime instead of every ten minutes, and revocation has a table
//! to act on. Refresh tokens rotate on every use, and a spent token presented again revokes its
//! whole family.

use std::net::IpAddr;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use shared_claims::{AccessTokenClaims, Audience, ScopeSet};
use zeroize::Zeroizing;

use super::client_auth;
use super::error::{ErrorCode, OAuthError};
use super::form::{FormParams, read_form};
use crate::secret::{REFRESH_PREFIX, hash_secret, random_token};
use crate::state::{AppState, ClientAddr};
use crate::store::{AuditEvent, Client, RefreshRow, Spend};

#[derive(Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    pub scope: String,
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

pub async fn token(
    State(state): State<AppState>,
    ClientAddr(source): ClientAddr,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, OAuthError> {
    let mut params = read_form(&headers, body).await?;
    let grant_type = params
        .get("grant_type")
        .ok_or_else(|| OAuthError::invalid_request("grant_type is required"))?
        .to_owned();
    if grant_type != "client_credentials" && grant_type != "refresh_token" {
        return Err(OAuthError::client(
            ErrorCode::UnsupportedGrantType,
            "supported grant types: client_credentials, refresh_token",
        ));
    }
    let credentials = client_auth::extract(&headers, &mut params)?;
    let client = client_auth::authenticate(&state, &credentials, source).await?;
    let response = if grant_type == "client_credentials" {
        client_credentials(&state, &client, &params, source).await?
    } else {
        refresh(&state, &client, &mut params, source).await?
    };
    Ok(no_store(Json(response)))
}

async fn client_credentials(
    state: &AppState,
    client: &Client,
    params: &FormParams,
    source: Option<IpAddr>,
) -> Result<TokenResponse, OAuthError> {
    let scope = requested_scope(params, &client.scopes)?;
    let audiences = requested_audiences(params, client)?;
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
    issue(state, client, scope, audiences, refresh_token, source).await
}

/// The refresh-token grant: authenticates the client, spends the presented token and returns a
/// new access token with a new refresh token of the same family.
async fn refresh(
    state: &AppState,
    client: &Client,
    params: &mut FormParams,
    source: Option<IpAddr>,
) -> Result<TokenResponse, OAuthError> {
    if !client.refresh_enabled {
        return Err(OAuthError::client(
            ErrorCode::UnauthorizedClient,
            "refresh tokens are not enabled for this client",
        ));
    }
    let presented = Zeroizing::new(
        params
            .take("refresh_token")
            .ok_or_else(|| OAuthError::invalid_request("refresh_token is required"))?,
    );
    let now = crate::now();
    let invalid = || {
        OAuthError::client(
            ErrorCode::InvalidGrant,
            "the refresh token is invalid, expired or revoked",
        )
    };
    let Some(row) = state
        .db
        .refresh_token_by_hash(&hash_secret(presented.as_bytes()))
        .await?
    else {
        return Err(invalid());
    };
    let audit = |action: &str, detail: serde_json::Value| AuditEvent {
        at: now,
        actor: format!("client:{}", client.client_id),
        action: action.into(),
        client_id: Some(client.client_id.as_str().to_owned()),
        source_ip: source.map(|ip| ip.to_string()),
        detail,
    };
    if row.client_id != client.client_id.as_str() {
        // Another client's token: refuse without saying so, and leave the owner's family alone.
        state
            .audit
            .record(audit(
                "refresh.wrong_client",
                serde_json::json!({ "family": row.family_id }),
            ))
            .await;
        return Err(invalid());
    }
    if row.revoked_at.is_some() || row.expires_at <= now {
        return Err(invalid());
    }
    if row.used_at.is_some() {
        return Err(reuse_detected(
            state,
            &row,
            audit(
                "refresh.reuse_detected",
                serde_json::json!({ "family": row.family_id }),
            ),
        )
        .await);
    }
    // The family keeps the scope it was granted; the access token may narrow it (RFC 6749 §6),
    // and never exceeds what the client is allowed today.
    let granted = ScopeSet::parse(&row.scope).map_err(|e| anyhow::anyhow!("stored scope: {e}"))?;
    let allowed: ScopeSet = granted
        .iter()
        .filter(|s| client.scopes.contains(s.as_str()))
        .cloned()
        .collect();
    let scope = requested_scope(params, &allowed)?;
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
        Spend::Rotated => {}
        // Spent between our read and our update: another request won the race.
        Spend::AlreadySpent => {
            return Err(reuse_detected(
                state,
                &row,
                audit(
                    "refresh.reuse_detected",
                    serde_json::json!({ "family": row.family_id, "race": true }),
                ),
            )
            .await);
        }
    }
    issue(state, client, scope, audiences, Some(token), source).await
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
        Err(err) => return OAuthError::Unexpected(err),
    }
    OAuthError::client(
        ErrorCode::InvalidGrant,
        "the refresh token is invalid, expired or revoked",
    )
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

/// Signs the access token and records the issuance (batched, off the request path).
async fn issue(
    state: &AppState,
    client: &Client,
    scope: ScopeSet,
    audiences: Vec<String>,
    refresh_token: Option<Zeroizing<String>>,
    source: Option<IpAddr>,
) -> Result<TokenResponse, OAuthError> {
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
    };
    let access_token = key.sign_jwt(&claims).map_err(anyhow::Error::from)?;
    state
        .audit
        .record(AuditEvent {
            at: now,
            actor: format!("client:{}", client.client_id),
            action: "token.issue".into(),
            client_id: Some(client.client_id.as_str().to_owned()),
            source_ip: source.map(|ip| ip.to_string()),
            detail: serde_json::json!({
                "jti": claims.jti,
                "kid": key.kid(),
                "scope": claims.scope,
                "aud": claims.aud,
                "exp": claims.exp,
                "refresh_token": refresh_token.is_some(),
            }),
        })
        .await;
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: ttl,
        scope: claims.scope.to_string(),
        refresh_token: refresh_token.map(|t| t.to_string()),
    })
}

/// RFC 6749 §5.1: token responses must not be cached.
pub fn no_store(body: impl IntoResponse) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}
