//! The token service's OpenAPI 3.1 description, served at `GET /openapi.json` and shown at
//! `GET /docs`. Each operation comes from its handler's `#[utoipa::path]` (the router is built
//! from the same annotations, see `app::router`); what every client-authenticated endpoint
//! shares (client authentication, the RFC 6749 §5.2 errors, the lockout's 429) is added here
//! once, from the error type that produces it, and so are the envelope's refusals there, which
//! the token service writes as RFC 6749 errors too; elsewhere they come from `api_docs`.
//!
//! The form types below describe request bodies that `oauth::form` parses; they are never built.
#![allow(dead_code)]

use serde::Deserialize;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{
    ClientCredentials, Flow, Http, HttpAuthScheme, OAuth2, Scopes, SecurityRequirement,
    SecurityScheme,
};
use utoipa::openapi::{Content, InfoBuilder, OpenApi, Ref, RefOr, ResponseBuilder};
use utoipa::{PartialSchema, ToSchema};

use crate::oauth::error::ErrorBody;

pub const OAUTH_TAG: &str = "OAuth 2.0";
pub const DISCOVERY_TAG: &str = "discovery";
pub const HEALTH_TAG: &str = "health";

/// HTTP Basic with the client id and secret (RFC 6749 §2.3.1, `client_secret_basic`).
pub const BASIC_SCHEME: &str = "client_secret_basic";
/// A TLS client certificate (RFC 8705, `tls_client_auth` and `self_signed_tls_client_auth`).
pub const MTLS_SCHEME: &str = "tls_client_auth";
/// The access tokens this service issues (client-credentials grant at `/oauth2/token`).
pub const TOKEN_SCHEME: &str = "partner_token";

const FORM: &str = "application/x-www-form-urlencoded";

/// RFC 6749 §3.1: a parameter sent without a value is treated as omitted (`oauth::form` does
/// so), so an optional one may be empty and a required one may not.
///
/// The client-authentication parameters a form may carry instead of HTTP Basic: exactly one
/// method per request (`client_secret_post`, `private_key_jwt`, or `client_id` alone with a
/// client certificate); a client may use only the method it was registered with.
#[derive(Deserialize, ToSchema)]
pub struct ClientAuthentication {
    /// The client's id (`client_secret_post`, or with a certificate; optional beside an
    /// assertion, whose `sub` names the client).
    client_id: Option<String>,
    /// The client's secret (`client_secret_post`).
    client_secret: Option<String>,
    /// `urn:ietf:params:oauth:client-assertion-type:jwt-bearer` (`private_key_jwt`, RFC 7523).
    #[schema(pattern = "^(urn:ietf:params:oauth:client-assertion-type:jwt-bearer)?$")]
    client_assertion_type: Option<String>,
    /// A JWT signed with the client's registered key, `aud` the issuer, `jti` single-use.
    client_assertion: Option<String>,
}

/// `POST /oauth2/token` (RFC 6749 §4.4.2, §6). Empty values count as omitted; no parameter but
/// `resource` may be repeated.
#[derive(Deserialize, ToSchema)]
pub struct TokenRequest {
    #[schema(pattern = "^(client_credentials|refresh_token)$")]
    grant_type: String,
    /// Space-separated scopes, a subset of the client's; omitted: all of them (for a refresh,
    /// all the refresh token's).
    scope: Option<String>,
    /// The refresh token to spend (`grant_type=refresh_token`).
    refresh_token: Option<String>,
    /// RFC 8707 resource indicators: audiences of the client (repeatable).
    resource: Option<Vec<String>>,
    #[serde(flatten)]
    client: ClientAuthentication,
}

/// `POST /oauth2/revoke` (RFC 7009 §2.1).
#[derive(Deserialize, ToSchema)]
pub struct RevocationRequest {
    /// A refresh token (its whole family is revoked) or an access token of this client.
    #[schema(min_length = 1)]
    token: String,
    /// `refresh_token` or `access_token`; only orders the lookups.
    token_type_hint: Option<String>,
    #[serde(flatten)]
    client: ClientAuthentication,
}

/// `POST /oauth2/introspect` (RFC 7662 §2.1).
#[derive(Deserialize, ToSchema)]
pub struct IntrospectionRequest {
    /// An access token, a refresh token of the caller, or an API key (`pak_…`).
    #[schema(min_length = 1)]
    token: String,
    /// Accepted and ignored (an API key is known by its prefix).
    token_type_hint: Option<String>,
    #[serde(flatten)]
    client: ClientAuthentication,
}

/// RFC 7662 §2.2. Only `active` when the token is not active (or not the caller's to see).
#[derive(ToSchema)]
pub struct IntrospectionResponse {
    active: bool,
    /// `Bearer` for an access token, `refresh_token` for a refresh token, `api_key` for an API
    /// key (then `client_id`, `scope`, `partner_id` and `aud` say whose key it is, and `exp`
    /// appears only while a rotated-out key is in its grace period).
    token_type: Option<String>,
    scope: Option<String>,
    client_id: Option<String>,
    sub: Option<String>,
    /// One audience, or several.
    #[schema(value_type = Option<Object>)]
    aud: Option<serde_json::Value>,
    iss: Option<String>,
    exp: Option<i64>,
    iat: Option<i64>,
    nbf: Option<i64>,
    jti: Option<String>,
    partner_id: Option<String>,
    /// RFC 8705 §3.2: the certificate the token is bound to (`x5t#S256`).
    #[schema(value_type = Option<Object>)]
    cnf: Option<serde_json::Value>,
}

/// A JWK Set (RFC 7517 §5): the public keys that verify this service's tokens.
#[derive(ToSchema)]
pub struct JwkSet {
    #[schema(value_type = Vec<Object>)]
    keys: Vec<serde_json::Value>,
}

/// RFC 8414 authorization-server metadata (the members every verifier needs; see the document
/// itself for the rest).
#[derive(ToSchema)]
pub struct Metadata {
    issuer: String,
    token_endpoint: String,
    jwks_uri: String,
    revocation_endpoint: String,
    introspection_endpoint: String,
    grant_types_supported: Vec<String>,
    token_endpoint_auth_methods_supported: Vec<String>,
    scopes_supported: Vec<String>,
    access_token_signing_alg_values_supported: Vec<String>,
}

/// `GET /healthz`.
#[derive(ToSchema)]
pub struct Health {
    #[schema(pattern = "^ok$")]
    status: String,
}

/// `GET /readyz`.
#[derive(ToSchema)]
pub struct Readiness {
    #[schema(pattern = "^(ready|not_ready)$")]
    status: String,
    #[schema(pattern = "^(ok|unavailable)$")]
    database: String,
    #[schema(pattern = "^(ok|missing)$")]
    signing_key: String,
}

/// The description of the operations in `described` (the router's), completed.
pub fn description(mut described: OpenApi) -> OpenApi {
    described.info = InfoBuilder::new()
        .title("Partner token service")
        .version(env!("CARGO_PKG_VERSION"))
        .description(Some(
            "OAuth 2.0 client-credentials tokens (RFC 6749 §4.4, RFC 9068 JWTs) for partners' \
             machine clients, with refresh (§6), revocation (RFC 7009) and introspection \
             (RFC 7662). The OAuth endpoints take `application/x-www-form-urlencoded` bodies \
             and answer errors as RFC 6749 §5.2 JSON with `Cache-Control: no-store`; other \
             errors are RFC 9457 `application/problem+json`.",
        ))
        .build();
    for (path, operation) in client_authenticated(&mut described) {
        add_client_authentication(operation, path);
    }
    let components = described.components.get_or_insert_with(Default::default);
    let mut schemas = vec![("OAuthError".to_owned(), ErrorBody::schema())];
    ErrorBody::schemas(&mut schemas);
    components.schemas.extend(schemas);
    components.add_security_scheme(
        BASIC_SCHEME,
        SecurityScheme::Http({
            let mut basic = Http::new(HttpAuthScheme::Basic);
            basic.description = Some(
                "`client_secret_basic`: the client id and secret, each form-urlencoded first \
                 (RFC 6749 §2.3.1). Other methods put their parameters in the form \
                 (`client_secret_post`, `private_key_jwt`) or present a certificate."
                    .into(),
            );
            basic
        }),
    );
    components.add_security_scheme(
        MTLS_SCHEME,
        SecurityScheme::MutualTls {
            description: Some(
                "`tls_client_auth` / `self_signed_tls_client_auth` (RFC 8705): a client \
                 certificate on the mutual-TLS listener (`mtls_endpoint_aliases` in the \
                 metadata) or from a trusted proxy, with `client_id` in the form. Tokens are \
                 bound to the certificate."
                    .into(),
            ),
            deprecated: None,
            extensions: None,
        },
    );
    components.add_security_scheme(
        TOKEN_SCHEME,
        SecurityScheme::OAuth2(OAuth2::with_description(
            [Flow::ClientCredentials(ClientCredentials::new(
                "/oauth2/token",
                Scopes::new(),
            ))],
            "The access tokens this service issues; the partner API's description lists the \
             scopes each of its routes requires.",
        )),
    );
    // Every Cache-Control and Pragma the operations declare is always sent.
    for operation in api_docs::operations(&mut described) {
        for response in operation.responses.responses.values_mut() {
            let RefOr::T(response) = response else {
                continue;
            };
            for (name, header) in response.headers.iter_mut() {
                if let (true, RefOr::T(header)) =
                    (name == "Cache-Control" || name == "Pragma", header)
                {
                    api_docs::require(header);
                }
            }
        }
    }
    api_docs::add_envelope_responses(&mut described);
    described
}

/// The operations that authenticate their client: the OAuth endpoints.
fn client_authenticated(openapi: &mut OpenApi) -> impl Iterator<Item = (&str, &mut Operation)> {
    openapi
        .paths
        .paths
        .iter_mut()
        .filter(|(path, _)| path.starts_with("/oauth2/"))
        .filter_map(|(path, item)| item.post.as_mut().map(|op| (path.as_str(), op)))
}

/// What `oauth::request::ClientRequest` and `oauth::error::OAuthError` make of a request to an
/// OAuth endpoint before and beside its handler.
fn add_client_authentication(operation: &mut Operation, path: &str) {
    let security = operation.security.get_or_insert_with(Vec::new);
    security.push(SecurityRequirement::new::<_, [&str; 0], &str>(
        BASIC_SCHEME,
        [],
    ));
    security.push(SecurityRequirement::new::<_, [&str; 0], &str>(
        MTLS_SCHEME,
        [],
    ));
    // Or none of them: the credentials are in the form (client_secret_post, private_key_jwt).
    security.push(SecurityRequirement::default());
    let oauth_error = || Content::new(Some(Ref::from_schema_name("OAuthError")));
    let no_store = || api_docs::required_header(api_docs::string_schema(), "`no-store`.");
    let error = |description: &str| {
        ResponseBuilder::new()
            .description(description)
            .content("application/json", oauth_error())
            .header("Cache-Control", no_store())
    };
    let unsupported_grant = if path == "/oauth2/token" {
        ", `unsupported_grant_type`, `invalid_grant` (a refresh token that is unknown, spent, \
         revoked or expired), `invalid_scope`, `invalid_target` (RFC 8707), \
         `unauthorized_client`"
    } else {
        ""
    };
    let responses = &mut operation.responses.responses;
    let mut add = |status: &str, response: ResponseBuilder| {
        responses
            .entry(status.to_owned())
            .or_insert(RefOr::T(response.build()));
    };
    add(
        "400",
        error(&format!(
            "RFC 6749 §5.2: `invalid_request` (content type, a missing or repeated parameter, \
             more than one authentication method, two `Authorization` headers or `Client-Cert` \
             fields, a body that cannot be read){unsupported_grant}."
        )),
    );
    add(
        "401",
        error(
            "`invalid_client`: unknown client, wrong credentials, or a method the client is not \
             registered with.",
        )
        .header(
            "WWW-Authenticate",
            api_docs::optional_header(
                api_docs::string_schema(),
                "`Basic realm=\"oauth2\", charset=\"UTF-8\"` when the client tried HTTP Basic.",
            ),
        ),
    );
    add(
        "408",
        error("`invalid_request`: the request was not completed within the server's time limit."),
    );
    add(
        "413",
        error("`invalid_request`: the form is over 16 KiB, or the body over the envelope's bound."),
    );
    add(
        "429",
        error(
            "Too many failed authentications from this address, or for this client from it \
             (`invalid_client`); retry after `Retry-After`.",
        )
        .header("Retry-After", api_docs::retry_after()),
    );
    add(
        "431",
        error("`invalid_request`: a request header, or all of them together, are too large."),
    );
    add(
        "503",
        error(
            "`temporarily_unavailable`: no signing key, the database is not answering, or the \
             server is busy (too many requests in flight); retry later.",
        )
        .header(
            "Retry-After",
            api_docs::optional_header(
                <u64 as PartialSchema>::schema(),
                "Seconds to wait before retrying.",
            ),
        ),
    );
}
