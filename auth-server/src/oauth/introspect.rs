//! `POST /oauth2/introspect` (RFC 7662), for resource servers that want an online check. Only
//! clients created with `--introspect` may call it. A token is active only if it verifies against
//! a currently published key (a revoked key's tokens are inactive at once), has not expired, was
//! not revoked, belongs to an enabled client and, for access tokens, is addressed to one of the
//! asking resource server's audiences. An API key (`pak_…`) is active while its client is
//! enabled and the key live, for resource servers of its client's audiences, and is described
//! with `token_type: "api_key"`. Everything else is `{"active": false}`.

use axum::Json;
use axum::extract::State;
use axum::response::Response;
use serde_json::{Value, json};
use shared_claims::{AccessTokenClaims, Audience};
use zeroize::Zeroizing;

use super::error::{ErrorCode, OAuthError};
use super::request::ClientRequest;
use super::{no_store, own_token};
use crate::api_key::looks_like_api_key;
use crate::secret::hash_secret;
use crate::state::AppState;
use crate::store::Client;

/// Says whether a token is active, for resource servers (clients created with `--introspect`).
#[utoipa::path(
    post,
    path = "/oauth2/introspect",
    tag = crate::openapi::OAUTH_TAG,
    request_body(content = crate::openapi::IntrospectionRequest, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "RFC 7662 §2.2.", body = crate::openapi::IntrospectionResponse,
         headers(("Cache-Control" = String, description = "`no-store`."))),
        (status = 403, description = "`unauthorized_client`: this client may not introspect tokens.",
         body = super::error::ErrorBody, headers(("Cache-Control" = String, description = "`no-store`."))),
    )
)]
pub async fn introspect(
    State(state): State<AppState>,
    mut request: ClientRequest,
) -> Result<Response, OAuthError> {
    let caller = &request.client;
    if !caller.introspect_allowed {
        return Err(OAuthError::Forbidden {
            code: ErrorCode::UnauthorizedClient,
            description: "this client may not introspect tokens (create it with --introspect)",
        });
    }
    let token = Zeroizing::new(
        request
            .params
            .take("token")
            .ok_or_else(|| OAuthError::invalid_request("token is required"))?,
    );
    let answer = if looks_like_api_key(&token) {
        api_key_answer(&state, caller, &token).await?
    } else {
        match own_token::verify(&state, &token) {
            Some(claims) => access_token_answer(&state, caller, claims).await?,
            None => refresh_token_answer(&state, caller, &token).await?,
        }
    };
    Ok(no_store(Json(answer)))
}

fn inactive() -> Value {
    json!({ "active": false })
}

async fn access_token_answer(
    state: &AppState,
    caller: &Client,
    claims: AccessTokenClaims,
) -> anyhow::Result<Value> {
    let addressed = match &claims.aud {
        Audience::One(aud) => caller.audiences.contains(aud),
        Audience::Many(list) => list.iter().any(|aud| caller.audiences.contains(aud)),
    };
    if !addressed || state.db.is_access_token_revoked(&claims.jti).await? {
        return Ok(inactive());
    }
    match state.db.get_client(claims.client_id.as_str()).await? {
        Some(owner) if !owner.is_disabled() => {}
        _ => return Ok(inactive()),
    }
    let mut answer = json!({
        "active": true,
        "token_type": "Bearer",
        "scope": claims.scope,
        "client_id": claims.client_id,
        "sub": claims.sub,
        "aud": claims.aud,
        "iss": claims.iss,
        "exp": claims.exp,
        "iat": claims.iat,
        "nbf": claims.nbf,
        "jti": claims.jti,
        "partner_id": claims.partner_id,
    });
    // RFC 8705 §3.2: the resource server checks the binding against its own connection.
    if let Some(cnf) = &claims.cnf {
        answer["cnf"] = json!(cnf);
    }
    Ok(answer)
}

/// An API key is described to the resource servers of its client's audiences, which is how
/// the partner API learns whose key it is. The directory is brought up to date first (one read
/// of the client generation), so a key disabled, deleted or rotated out a moment ago is
/// inactive at once; the partner API's cache is then the only delay.
async fn api_key_answer(state: &AppState, caller: &Client, key: &str) -> anyhow::Result<Value> {
    state.clients.refresh(&state.db).await?;
    state.api_keys.refresh(&state.db, &state.master).await?;
    let Some(hash) = state.api_keys.hash(key.as_bytes()) else {
        return Ok(inactive());
    };
    let Some((client, expires_at)) = state.clients.by_api_key(&hash, crate::now()) else {
        return Ok(inactive());
    };
    let addressed = client
        .audiences
        .iter()
        .any(|aud| caller.audiences.contains(aud));
    if client.is_disabled() || !addressed {
        return Ok(inactive());
    }
    let aud = match client.audiences.as_slice() {
        [one] => json!(one),
        many => json!(many),
    };
    let mut answer = json!({
        "active": true,
        "token_type": "api_key",
        "client_id": client.client_id,
        "sub": client.client_id,
        "scope": client.scopes,
        "partner_id": client.partner_id,
        "aud": aud,
        "iss": state.config.issuer,
    });
    // A key in its grace period after a rotation: when it stops working.
    if let Some(exp) = expires_at {
        answer["exp"] = json!(exp);
    }
    Ok(answer)
}

/// A refresh token is described only to the client it belongs to.
async fn refresh_token_answer(
    state: &AppState,
    caller: &Client,
    token: &str,
) -> anyhow::Result<Value> {
    let Some(row) = state
        .db
        .refresh_token_by_hash(&hash_secret(token.as_bytes()))
        .await?
    else {
        return Ok(inactive());
    };
    let live = row.used_at.is_none() && row.revoked_at.is_none() && row.expires_at > crate::now();
    if !live || row.client_id != caller.client_id.as_str() || caller.is_disabled() {
        return Ok(inactive());
    }
    Ok(json!({
        "active": true,
        "token_type": "refresh_token",
        "scope": row.scope,
        "client_id": row.client_id,
        "sub": row.client_id,
        "exp": row.expires_at,
        "iat": row.created_at,
    }))
}
