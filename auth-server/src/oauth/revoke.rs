//! `POST /oauth2/revoke` (RFC 7009). The client authenticates; revoking a refresh token revokes
//! its whole family; revoking an access token records its `jti` until it expires (introspection
//! then answers `active: false`). Unknown tokens and other clients' tokens answer 200 without
//! effect, as §2.2 requires, so the endpoint reveals nothing about them.

use std::net::IpAddr;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use zeroize::Zeroizing;

use super::client_auth;
use super::error::OAuthError;
use super::form::read_form;
use super::token::no_store;
use crate::secret::hash_secret;
use crate::state::{AppState, ClientAddr};
use crate::store::{AuditEvent, Client};

pub async fn revoke(
    State(state): State<AppState>,
    ClientAddr(source): ClientAddr,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, OAuthError> {
    let mut params = read_form(&headers, body).await?;
    let credentials = client_auth::extract(&headers, &mut params)?;
    let client = client_auth::authenticate(&state, &credentials, source).await?;
    let token = Zeroizing::new(
        params
            .take("token")
            .ok_or_else(|| OAuthError::invalid_request("token is required"))?,
    );
    // The hint only orders the attempts (§2.1); an unknown hint is ignored.
    let access_first = params.get("token_type_hint") == Some("access_token");
    if access_first {
        if !revoke_access_token(&state, &client, &token, source).await? {
            revoke_refresh_token(&state, &client, &token, source).await?;
        }
    } else if !revoke_refresh_token(&state, &client, &token, source).await? {
        revoke_access_token(&state, &client, &token, source).await?;
    }
    Ok(no_store(StatusCode::OK))
}

fn event(
    client: &Client,
    action: &str,
    source: Option<IpAddr>,
    detail: serde_json::Value,
) -> AuditEvent {
    AuditEvent {
        at: crate::now(),
        actor: format!("client:{}", client.client_id),
        action: action.into(),
        client_id: Some(client.client_id.as_str().to_owned()),
        source_ip: source.map(|ip| ip.to_string()),
        detail,
    }
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
    let audit = event(
        client,
        "refresh.revoke",
        source,
        serde_json::json!({ "family": row.family_id }),
    );
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
    let Some(claims) = super::introspect::verify_own_token(state, token) else {
        return Ok(false);
    };
    if claims.client_id != client.client_id {
        return Ok(false);
    }
    let audit = event(
        client,
        "token.revoke",
        source,
        serde_json::json!({ "jti": claims.jti, "exp": claims.exp }),
    );
    state
        .db
        .revoke_access_token(&claims.jti, client.client_id.as_str(), claims.exp, &audit)
        .await?;
    Ok(true)
}
