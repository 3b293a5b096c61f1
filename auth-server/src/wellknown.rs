//! Discovery and health: JWKS (RFC 7517), authorization-server metadata (RFC 8414, also served
//! where OpenID Connect discovery looks for it), probes.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::state::AppState;
use crate::store::ClientAuthMethod;

/// The algorithms a `private_key_jwt` client may sign its assertions with: asymmetric only.
pub const ASSERTION_ALGS: [&str; 4] = ["ES256", "EdDSA", "RS256", "PS256"];

/// The public keys, served from the JSON built when the keys last changed.
#[utoipa::path(
    get,
    path = "/.well-known/jwks.json",
    tag = crate::openapi::DISCOVERY_TAG,
    responses(
        (status = 200, description = "The published public keys (pending, active and retired).",
         body = crate::openapi::JwkSet, content_type = "application/jwk-set+json",
         headers(("Cache-Control" = String, description = "`public, max-age=N` (`AUTH_JWKS_MAX_AGE`)."))),
    )
)]
pub async fn jwks(State(state): State<AppState>) -> Response {
    let body = state.keys.get().jwks_json().clone();
    let cache = format!("public, max-age={}", state.config.jwks_max_age);
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/jwk-set+json"),
    );
    if let Ok(value) = HeaderValue::from_str(&cache) {
        headers.insert(header::CACHE_CONTROL, value);
    }
    response
}

/// The authorization-server metadata, one document for both places discovery looks:
/// `/.well-known/oauth-authorization-server` (RFC 8414) and `/.well-known/openid-configuration`
/// (OpenID Connect Discovery, which is where API Gateway's JWT authorizer finds `jwks_uri` from
/// the issuer). Both answer the same body with the same headers, from this one handler.
///
/// It names no OpenID-only member (`subject_types_supported`, `id_token_signing_alg_values_supported`,
/// an authorization endpoint): this service issues no ID tokens, and verifiers of access tokens
/// need only `issuer` and `jwks_uri`.
#[utoipa::path(
    get,
    path = "/.well-known/oauth-authorization-server",
    tag = crate::openapi::DISCOVERY_TAG,
    responses(
        (status = 200, description = "RFC 8414 authorization-server metadata.", body = crate::openapi::Metadata),
        (status = 503, description = "The scopes cannot be read from the database; retry later.",
         body = api_docs::Problem, content_type = "application/problem+json",
         headers(("Retry-After" = u64, description = "Seconds to wait before retrying."))),
    )
)]
pub async fn metadata(State(state): State<AppState>) -> Response {
    let issuer = state.config.issuer.trim_end_matches('/');
    let scopes = match state.db.granted_scopes().await {
        Ok(scopes) => scopes
            .iter()
            .map(|s| s.as_str().to_owned())
            .collect::<Vec<_>>(),
        Err(err) => {
            tracing::error!(error = ?err, "cannot read scopes for the metadata document");
            let problem = edge::problem::problem(
                StatusCode::SERVICE_UNAVAILABLE,
                Some("the metadata cannot be read now"),
            );
            return edge::problem::with_retry_after(problem, std::time::Duration::from_secs(5));
        }
    };
    let algs: Vec<&str> = ["ES256", "EdDSA", "RS256"].into();
    // Every method a client may be registered with; each client may use only its own.
    let methods: Vec<&str> = ClientAuthMethod::ALL.iter().map(|m| m.as_str()).collect();
    let mut doc = json!({
        "issuer": state.config.issuer,
        "token_endpoint": format!("{issuer}/oauth2/token"),
        "jwks_uri": format!("{issuer}/.well-known/jwks.json"),
        "grant_types_supported": ["client_credentials", "refresh_token"],
        "revocation_endpoint": format!("{issuer}/oauth2/revoke"),
        "revocation_endpoint_auth_methods_supported": methods,
        "revocation_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGS,
        "introspection_endpoint": format!("{issuer}/oauth2/introspect"),
        "introspection_endpoint_auth_methods_supported": methods,
        "introspection_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGS,
        "response_types_supported": [],
        "token_endpoint_auth_methods_supported": methods,
        "token_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGS,
        "scopes_supported": scopes,
        "access_token_signing_alg_values_supported": algs,
        "code_challenge_methods_supported": [],
        // Tokens of clients that authenticate with a certificate are bound to it (RFC 8705 §3),
        // whether it came over the mutual-TLS listener or from a trusted proxy.
        "tls_client_certificate_bound_access_tokens": true,
    });
    if let Some(mtls) = &state.config.mtls_url {
        doc["mtls_endpoint_aliases"] = json!({
            "token_endpoint": format!("{mtls}/oauth2/token"),
            "revocation_endpoint": format!("{mtls}/oauth2/revoke"),
            "introspection_endpoint": format!("{mtls}/oauth2/introspect"),
        });
    }
    Json(doc).into_response()
}

/// The metadata where OpenID Connect discovery looks (API Gateway's JWT authorizer): the same
/// document as [`metadata`].
#[utoipa::path(
    get,
    path = "/.well-known/openid-configuration",
    tag = crate::openapi::DISCOVERY_TAG,
    responses(
        (status = 200, description = "The same document as `/.well-known/oauth-authorization-server`.", body = crate::openapi::Metadata),
        (status = 503, description = "The scopes cannot be read from the database; retry later.",
         body = api_docs::Problem, content_type = "application/problem+json",
         headers(("Retry-After" = u64, description = "Seconds to wait before retrying."))),
    )
)]
pub async fn openid_configuration(state: State<AppState>) -> Response {
    metadata(state).await
}

#[utoipa::path(get, path = "/healthz", tag = crate::openapi::HEALTH_TAG,
    responses((status = 200, description = "The process answers.", body = crate::openapi::Health)))]
pub async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// Ready when the database can be written and a key can sign.
#[utoipa::path(get, path = "/readyz", tag = crate::openapi::HEALTH_TAG,
    responses(
        (status = 200, description = "Ready: the database can be written and a key can sign.", body = crate::openapi::Readiness),
        (status = 503, description = "Not ready: the database cannot be written (read-only, full, unreachable, locked longer than AUTH_DATABASE_WAIT), or no key can sign.", body = crate::openapi::Readiness),
    ))]
pub async fn readyz(State(state): State<AppState>) -> Response {
    // A write that changes nothing: a read would pass on a read-only database that refuses
    // every token.
    let db_ok = match state.db.probe_write().await {
        Ok(()) => true,
        Err(err) => {
            // Also lets the pool replace connections a fixed fault left broken.
            storage::unavailable(&err);
            tracing::warn!(error = %err, "not ready: the database cannot be written");
            false
        }
    };
    let key_ok = state.keys.get().active().is_some();
    let status = if db_ok && key_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if status == StatusCode::OK { "ready" } else { "not_ready" },
        "database": if db_ok { "ok" } else { "unavailable" },
        "signing_key": if key_ok { "ok" } else { "missing" },
    });
    (status, Json(body)).into_response()
}
