//! The partner API's OpenAPI 3.1 description, served at `GET /openapi.json` and shown at
//! `GET /docs`. It is built from the code: each operation from its handler's `#[utoipa::path]`,
//! the `/v1` security requirements and the refusals of authentication from the route table
//! ([`crate::routes::v1`], through [`ProtectedRoutes::describe`]), and the envelope's refusals
//! from `api_docs`; so the description cannot name a route, a scope or an answer the code does not
//! have.

use std::collections::BTreeMap;

use serde::Serialize;
use utoipa::ToSchema;
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, ClientCredentials, Flow, OAuth2, Scopes, SecurityScheme,
};
use utoipa::openapi::{InfoBuilder, OpenApi};

use crate::auth::{API_KEY_SCHEME, Access, ProtectedRoutes, TOKEN_SCHEME};

/// The tag of the probes.
pub const HEALTH_TAG: &str = "health";

/// The description of the `/v1` routes of `v1`, merged into `rest` (the probes' description),
/// with tokens to be had at `{issuer}/oauth2/token`; `keys`: whether API keys are accepted
/// (`RESOURCE_API_KEYS`), which only then are described.
pub fn description(v1: &ProtectedRoutes, mut rest: OpenApi, issuer: &str, keys: bool) -> OpenApi {
    let (paths, schemas) = v1.describe(keys);
    let credentials = if keys {
        "Every `/v1` route needs `Authorization: Bearer <access token>`, a token from the token \
         service's client-credentials grant carrying the route's scope, or an API key \
         (`X-API-Key: pak_...`, or `Authorization: Bearer pak_...`) of a client holding that \
         scope; one credential per request."
    } else {
        "Every `/v1` route needs `Authorization: Bearer <access token>`, a token from the token \
         service's client-credentials grant carrying the route's scope."
    };
    rest.paths.merge(paths);
    rest.info = InfoBuilder::new()
        .title("Partner API")
        .version(env!("CARGO_PKG_VERSION"))
        .description(Some(format!(
            "Read-only JSON over the partner's own data. {credentials} Lists are paginated: \
             `{{\"items\": [...], \"next_cursor\": \"...\" | null}}`. Errors are RFC 9457 \
             `application/problem+json`; authentication failures add an RFC 6750 \
             `WWW-Authenticate` challenge. Requests are rate limited per client (429 with \
             `Retry-After`).",
        )))
        .build();
    let components = rest.components.get_or_insert_with(Default::default);
    components.schemas.extend(schemas);
    components.add_security_scheme(TOKEN_SCHEME, token_scheme(v1, issuer));
    if keys {
        components.add_security_scheme(
            API_KEY_SCHEME,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-API-Key",
                "An API key (`pak_` and 43 base64url characters) of a client created at the token \
                 service with `--auth-method api_key`, sent as `X-API-Key: pak_...` or as \
                 `Authorization: Bearer pak_...` (not both). The key's client's scopes, partner \
                 and rate limit apply as for its tokens. A disabled or rotated key may keep \
                 working for up to the partner API's key cache time (`RESOURCE_API_KEY_CACHE`).",
            ))),
        );
    }
    api_docs::add_envelope_responses(&mut rest);
    rest
}

/// The client-credentials flow of the token service, with every scope a route requires,
/// each described by the routes that require it.
fn token_scheme(v1: &ProtectedRoutes, issuer: &str) -> SecurityScheme {
    let mut routes_by_scope: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (path, access) in v1.declared() {
        if let Access::Scope(scope) = access {
            routes_by_scope.entry(scope).or_default().push(path);
        }
    }
    let scopes = Scopes::from_iter(
        routes_by_scope
            .into_iter()
            .map(|(scope, paths)| (scope.to_owned(), format!("GET {}", paths.join(", GET ")))),
    );
    let token_url = format!("{}/oauth2/token", issuer.trim_end_matches('/'));
    SecurityScheme::OAuth2(OAuth2::with_description(
        [Flow::ClientCredentials(ClientCredentials::new(
            token_url, scopes,
        ))],
        "An access token from the token service (client-credentials grant), sent as \
         `Authorization: Bearer <token>`. A token bound to a client certificate \
         (`cnf.x5t#S256`) is accepted only with that certificate.",
    ))
}

/// `GET /healthz`.
#[derive(Serialize, ToSchema)]
pub struct Health {
    /// Always `ok`: the process answers.
    #[schema(example = "ok")]
    pub status: &'static str,
}

/// `GET /readyz`: ready when a key set has been loaded and the database answers.
#[derive(Serialize, ToSchema)]
pub struct Readiness {
    #[schema(value_type = String, pattern = "^(ready|not_ready)$")]
    pub status: &'static str,
    #[schema(value_type = String, pattern = "^(loaded|not_loaded)$")]
    pub jwks: &'static str,
    #[schema(value_type = String, pattern = "^(ok|unavailable)$")]
    pub database: &'static str,
}
