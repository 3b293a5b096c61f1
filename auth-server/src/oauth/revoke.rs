//! `POST /oauth2/revoke` (RFC 7009). The client authenticates; revoking a refresh token revokes
//! its whole family; revoking an access token records its `jti` until it expires (introspection
//! then answers `active: false`). Unknown tokens and other clients' tokens answer 200 without
//! effect, as §2.2 requires, so the endpoint reveals nothing about them.

use std::net::IpAddr;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use zeroize::Zeroizing;

use super::error::OAuthError;
use super::request::ClientRequest;
use super::{no_store, own_token};
use crate::secret::hash_secret;
use crate::state::AppState;
use crate::store::{AuditEvent, Client};

/// Revokes a refresh token (and its family) or an access token of the calling client.
#[utoipa::path(
    post,
    path = "/oauth2/revoke",
    tag = crate::openapi::OAUTH_TAG,
    request_body(content = crate::openapi::RevocationRequest, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Revoked, or unknown or another client's token, which is left alone (RFC 7009 §2.2). No body.",
         headers(("Cache-Control" = String, description = "`no-store`."))),
    )
)]
pub async fn revoke(
    State(state): State<AppState>,
    mut request: ClientRequest,
) -> Result<Response, OAuthError> {
    let token = Zeroizing::new(
        request
            .params
            .take("token")
            .ok_or_else(|| OAuthError::invalid_request("token is required"))?,
    );
    let (client, source) = (&request.client, request.source);
    // The hint only orders the attempts (§2.1); an unknown hint is ignored.
    let access_first = request.params.get("token_type_hint") == Some("access_token");
    if access_first {
        if !revoke_access_token(&state, client, &token, source).await? {
            revoke_refresh_token(&state, client, &token, source).await?;
        }
    } else if !revoke_refresh_token(&state, client, &token, source).await? {
        revoke_access_token(&state, client, &token, source).await?;
    }
    Ok(no_store(StatusCode::OK))
}

/// Returns whether `token` is one of this client's refresh tokens (and so was handled).
async fn revoke_refresh_token(
    state: &AppState,
    client: &Client,
    token: &str,
    source: Option<IpAddr>,
) -> anyhow::Result<bool> {
    let Some(row) = state
        .db
        .refresh_token_by_hash(&hash_secret(token.as_bytes()))
        .await?
    else {
        return Ok(false);
    };
    if row.client_id != client.client_id.as_str() {
        return Ok(false);
    }
    let audit = AuditEvent::by_client(
        &client.client_id,
        "refresh.revoke",
        crate::now(),
        serde_json::json!({ "family": row.family_id }),
    )
    .from_source(source);
    state
        .db
        .revoke_refresh_family(&row.family_id, audit.at, &audit)
        .await?;
    Ok(true)
}

/// Returns whether `token` is a valid access token of this client (and so was handled).
async fn revoke_access_token(
    state: &AppState,
    client: &Client,
    token: &str,
    source: Option<IpAddr>,
) -> anyhow::Result<bool> {
    let Some(claims) = own_token::verify(state, token) else {
        return Ok(false);
    };
    if claims.client_id != client.client_id {
        return Ok(false);
    }
    let audit = AuditEvent::by_client(
        &client.client_id,
        "token.revoke",
        crate::now(),
        serde_json::json!({ "jti": claims.jti, "exp": claims.exp }),
    )
    .from_source(source);
    state
        .db
        .revoke_access_token(&claims.jti, client.client_id.as_str(), claims.exp, &audit)
        .await?;
    Ok(true)
}
