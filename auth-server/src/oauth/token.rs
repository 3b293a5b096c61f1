//! `POST /oauth2/token`: the client-credentials grant (RFC 6749 §4.4) issuing RFC 9068 access tokens.

use std::net::IpAddr;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use shared_claims::{AccessTokenClaims, Audience, ScopeSet};

use super::client_auth;
use super::error::{ErrorCode, OAuthError};
use super::form::FormParams;
use crate::state::{AppState, ClientAddr};
use crate::store::{AuditEvent, Client};

/// Token requests are a few hundred bytes; this bounds memory per request with room to spare.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

#[derive(Debug, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    pub scope: String,
}

pub async fn token(
    State(state): State<AppState>,
    ClientAddr(source): ClientAddr,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, OAuthError> {
    check_content_type(&headers)?;
    let body = read_body(body).await?;
    let mut params = FormParams::parse(&body)?;
    let grant_type = params
        .get("grant_type")
        .ok_or_else(|| OAuthError::invalid_request("grant_type is required"))?
        .to_owned();
    if grant_type != "client_credentials" {
        return Err(OAuthError::client(
            ErrorCode::UnsupportedGrantType,
            "supported grant types: client_credentials",
        ));
    }
    let credentials = client_auth::extract(&headers, &mut params)?;
    let client = client_auth::authenticate(&state, &credentials, source).await?;
    let request = TokenRequest::parse(&params, &client)?;
    let response = issue(&state, &client, request, source).await?;
    Ok(no_store(Json(response)))
}

/// What the client asked for, checked against what it is allowed.
struct TokenRequest {
    scope: ScopeSet,
    audiences: Vec<String>,
}

impl TokenRequest {
    fn parse(params: &FormParams, client: &Client) -> Result<TokenRequest, OAuthError> {
        let scope = match params.get("scope") {
            None => client.scopes.clone(),
            Some(text) => {
                let asked = ScopeSet::parse(text).map_err(|e| {
                    OAuthError::client(ErrorCode::InvalidScope, format!("malformed scope: {e}"))
                })?;
                if !asked.is_subset(&client.scopes) {
                    let extra: Vec<&str> = asked
                        .difference(&client.scopes)
                        .map(|s| s.as_str())
                        .collect();
                    return Err(OAuthError::client(
                        ErrorCode::InvalidScope,
                        format!("scope not allowed for this client: {}", extra.join(" ")),
                    ));
                }
                asked
            }
        };
        if scope.is_empty() {
            return Err(OAuthError::client(
                ErrorCode::InvalidScope,
                "this client has no scopes",
            ));
        }
        let resources = params.all("resource");
        let audiences = if resources.is_empty() {
            let default = client.audiences.first().ok_or_else(|| {
                OAuthError::client(ErrorCode::InvalidTarget, "this client has no audience")
            })?;
            vec![default.clone()]
        } else {
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
            chosen
        };
        Ok(TokenRequest { scope, audiences })
    }
}

async fn issue(
    state: &AppState,
    client: &Client,
    request: TokenRequest,
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
        aud: Audience::from_list(request.audiences),
        exp: now + ttl,
        iat: now,
        nbf: now,
        jti: uuid::Uuid::new_v4().to_string(),
        client_id: client.client_id.clone(),
        scope: request.scope,
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
            }),
        })
        .await;
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: ttl,
        scope: claims.scope.to_string(),
    })
}

/// RFC 6749 §4.4.2 requires a form body; anything else is refused before reading it.
fn check_content_type(headers: &HeaderMap) -> Result<(), OAuthError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if essence.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        Ok(())
    } else {
        Err(OAuthError::invalid_request(
            "Content-Type must be application/x-www-form-urlencoded",
        ))
    }
}

async fn read_body(body: Body) -> Result<axum::body::Bytes, OAuthError> {
    let bytes = axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|_| OAuthError::BodyTooLarge {
            limit: MAX_BODY_BYTES,
        })?;
    if bytes.is_empty() {
        return Err(OAuthError::invalid_request(
            "request body is empty: grant_type is required",
        ));
    }
    Ok(bytes)
}

/// RFC 6749 §5.1: token responses must not be cached.
pub fn no_store(body: impl IntoResponse) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}
