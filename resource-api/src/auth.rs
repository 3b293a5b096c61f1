//! Authentication and authorization of `/v1` requests.
//!
//! Routes are added only through [`ProtectedRoutes::route`], which takes the route's [`Access`]
//! requirement as an argument: a route cannot be added without saying which scope it needs. The
//! whole set sits behind [`authenticate`], which verifies the bearer token, applies the client's
//! rate limit and hands the verified claims to handlers as a [`Principal`].

use std::convert::Infallible;
use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use metrics::Counter;
use shared_claims::AccessTokenClaims;
use shared_limits::Verdict;

use utoipa::openapi::path::{Operation, Paths};
use utoipa::openapi::security::SecurityRequirement;
use utoipa::openapi::{RefOr, Schema};
use utoipa_axum::router::UtoipaMethodRouter;

use crate::api_keys::{ApiKey, ApiKeys, Resolution};
use crate::metrics::{ApiMetrics, Rejection};
use crate::problem::ApiError;
use crate::state::{AppState, Introspection};

/// The name of the OAuth 2.0 security scheme in the OpenAPI description: a client-credentials
/// access token from the token service, whose scopes the `/v1` operations require.
pub const TOKEN_SCHEME: &str = "partner_token";

/// The name of the API-key security scheme in the OpenAPI description (with
/// `RESOURCE_API_KEYS=true`): a key sent as `X-API-Key` (or as a bearer), whose client's scopes
/// the `/v1` operations require as a token's.
pub const API_KEY_SCHEME: &str = "partner_api_key";

/// What [`ProtectedRoutes::into_router`]'s layers may answer instead of the handler, written
/// into the operation's description; `keys`: whether API keys are accepted.
fn describe_access(operation: &mut Operation, access: Access, keys: bool) {
    use api_docs::{problem_response, required_header, retry_after, string_schema};
    let scopes: Vec<&str> = match access {
        Access::AnyValidToken => vec![],
        Access::Scope(scope) => vec![scope],
    };
    let security = operation.security.get_or_insert_with(Vec::new);
    security.push(SecurityRequirement::new(TOKEN_SCHEME, scopes.clone()));
    if keys {
        // A second requirement is an alternative (either one), not an addition.
        security.push(SecurityRequirement::new(API_KEY_SCHEME, scopes));
    }
    let challenge = |what: &str| required_header(string_schema(), what);
    let responses = &mut operation.responses.responses;
    let unauthorized = if keys {
        "No credentials; a bearer token that is malformed, expired, wrongly signed or addressed, \
         or bound to a certificate this request did not present; or an API key that is \
         malformed, unknown or no longer active (RFC 6750 §3)."
    } else {
        "No bearer token, or one that is malformed, expired, wrongly signed or addressed, \
         or bound to a certificate this request did not present (RFC 6750 §3)."
    };
    responses.insert(
        "401".into(),
        RefOr::T(
            problem_response(unauthorized)
            .header(
                "WWW-Authenticate",
                challenge("`Bearer realm=\"partner-api\"`, with `error=\"invalid_token\"` when a token or key was presented."),
            )
            .build(),
        ),
    );
    let ambiguous = if keys {
        "More than one `Authorization` header, an API key beside a bearer token, a key in both \
         `Authorization` and `X-API-Key`, or two `X-API-Key` fields (RFC 6750 §3.1 \
         `invalid_request`); or more than one `Client-Cert` field from a trusted proxy."
    } else {
        "More than one `Authorization` header (RFC 6750 §3.1 `invalid_request`), or \
         more than one `Client-Cert` field from a trusted proxy."
    };
    // A handler's own 400 (a malformed parameter) stays as it documents it.
    responses
        .entry("400".into())
        .or_insert_with(|| RefOr::T(problem_response(ambiguous).build()));
    if let Access::Scope(scope) = access {
        responses.insert(
            "403".into(),
            RefOr::T(
                problem_response(&format!(
                    "The token {}lacks the scope `{scope}` (RFC 6750 §3.1).",
                    if keys { "(or the API key's client) " } else { "" }
                ))
                    .header(
                        "WWW-Authenticate",
                        challenge(&format!(
                            "`Bearer realm=\"partner-api\", error=\"insufficient_scope\", scope=\"{scope}\"`."
                        )),
                    )
                    .build(),
            ),
        );
    }
    let too_many = if keys {
        "This client is over its request rate, or this address sent too many wrong API keys \
         and is locked out for a while."
    } else {
        "This client is over its request rate."
    };
    responses.insert(
        "429".into(),
        RefOr::T(
            problem_response(too_many)
                .header("Retry-After", retry_after())
                .build(),
        ),
    );
    if keys {
        responses.insert(
            "503".into(),
            RefOr::T(
                problem_response(
                    "The API key cannot be checked now (the token service does not answer), or \
                     the server is busy or cannot reach what it needs; retry later.",
                )
                .header("Retry-After", retry_after())
                .build(),
            ),
        );
    }
}

/// What a route requires of a verified token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Any valid token for this API.
    AnyValidToken,
    /// A valid token whose `scope` includes this scope.
    Scope(&'static str),
}

/// The verified caller, available to handlers behind [`ProtectedRoutes`].
#[derive(Debug, Clone)]
pub struct Principal(pub Arc<AccessTokenClaims>);

impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = ApiError;

    /// Fails closed: a handler reached without authentication answers 401.
    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .ok_or(ApiError::MissingToken)
    }
}

/// Routes that need a bearer token, each with its declared [`Access`].
///
/// The routes are only declared here; [`ProtectedRoutes::into_router`] puts them behind
/// authentication once the state (and with it the set of routes checked online) is known, so the
/// one declared list is also the list those online routes are checked against.
#[derive(Default)]
pub struct ProtectedRoutes {
    routes: Vec<ProtectedRoute>,
}

struct ProtectedRoute {
    path: String,
    access: Access,
    handler: MethodRouter<AppState>,
    /// The route's operations as its `#[utoipa::path]` describes them, without what the access
    /// requirement adds (see [`ProtectedRoutes::describe`]).
    described: Paths,
    schemas: Vec<(String, RefOr<Schema>)>,
}

/// `RESOURCE_INTROSPECT_ROUTES` names a route that is not declared. Such a route would silently go
/// without its online check, so the router refuses to be built and the API to start.
#[derive(Debug, thiserror::Error)]
#[error("RESOURCE_INTROSPECT_ROUTES names {route:?}, which is not a route; routes are: {declared}")]
pub struct UnknownOnlineRoute {
    pub route: String,
    /// The declared routes, comma-separated, so the operator sees what to write instead.
    pub declared: String,
}

impl ProtectedRoutes {
    pub fn new() -> ProtectedRoutes {
        ProtectedRoutes::default()
    }

    /// Declares a route: what it requires of a token, and its handler with its description
    /// (`utoipa_axum::routes!(handler)`), whose `#[utoipa::path]` gives the path and method. The
    /// router and the OpenAPI description are both built from this one declaration.
    pub fn route(mut self, access: Access, route: UtoipaMethodRouter<AppState>) -> ProtectedRoutes {
        let (schemas, described, handler) = route;
        let mut paths = described.paths.keys();
        let (Some(path), None) = (paths.next(), paths.next()) else {
            panic!("a protected route is one #[utoipa::path] handler with one path");
        };
        self.routes.push(ProtectedRoute {
            path: path.clone(),
            access,
            handler,
            described,
            schemas,
        });
        self
    }

    /// Each declared path with its access requirement, in declaration order.
    pub fn declared(&self) -> impl Iterator<Item = (&str, Access)> {
        self.routes.iter().map(|r| (r.path.as_str(), r.access))
    }

    /// The OpenAPI paths and schemas of the declared routes, each operation with what
    /// [`ProtectedRoutes::into_router`] puts in front of its handler: the security requirement
    /// of its [`Access`] (the scheme [`TOKEN_SCHEME`] with the route's scope), 401 with a bearer
    /// challenge, 403 `insufficient_scope` when it needs a scope, and 429 with `Retry-After`.
    /// With `keys`, each operation also names [`API_KEY_SCHEME`] as an alternative, and the
    /// refusals particular to keys.
    pub fn describe(&self, keys: bool) -> (Paths, Vec<(String, RefOr<Schema>)>) {
        let mut paths = Paths::new();
        let mut schemas = Vec::new();
        for route in &self.routes {
            let mut described = route.described.clone();
            for item in described.paths.values_mut() {
                for operation in [
                    &mut item.get,
                    &mut item.post,
                    &mut item.put,
                    &mut item.delete,
                ]
                .into_iter()
                .flatten()
                {
                    describe_access(operation, route.access, keys);
                }
            }
            paths.merge(described);
            schemas.extend(route.schemas.iter().cloned());
        }
        (paths, schemas)
    }

    /// The declared routes behind token verification and the per-client rate limit, each with its
    /// scope check, and with the online check on the routes `state.introspection` names.
    pub fn into_router(self, state: AppState) -> Result<Router<AppState>, UnknownOnlineRoute> {
        let online = state.introspection.clone();
        if let Some(online) = &online {
            self.check_declared(&online.routes)?;
        }
        let mut router = Router::new();
        for route in self.routes {
            let path = route.path.clone();
            router = router.route(&path, route.guarded(online.as_ref(), &state.metrics));
        }
        Ok(router.route_layer(middleware::from_fn_with_state(state, authenticate)))
    }

    fn check_declared(&self, online_routes: &[String]) -> Result<(), UnknownOnlineRoute> {
        let declared: Vec<&str> = self.routes.iter().map(|r| r.path.as_str()).collect();
        match online_routes
            .iter()
            .find(|r| !declared.contains(&r.as_str()))
        {
            Some(route) => Err(UnknownOnlineRoute {
                route: route.clone(),
                declared: declared.join(", "),
            }),
            None => Ok(()),
        }
    }
}

impl ProtectedRoute {
    /// The handler behind the route's scope check and, when the route is checked online, the
    /// online check. Layers added later run first: the online check runs after authentication,
    /// before the scope check and the handler.
    fn guarded(
        self,
        online: Option<&Arc<Introspection>>,
        metrics: &ApiMetrics,
    ) -> MethodRouter<AppState> {
        let mut handler = self.handler;
        if let Access::Scope(scope) = self.access {
            let refused = metrics.rejection(Rejection::InsufficientScope).clone();
            handler =
                handler.route_layer(middleware::from_fn(move |request: Request, next: Next| {
                    let allowed = has_scope(&request, scope);
                    if !allowed {
                        refused.increment(1);
                    }
                    require_scope(allowed, scope, request, next)
                }));
        }
        if let Some(online) = online.filter(|o| o.routes.contains(&self.path)) {
            let online = online.clone();
            let revoked = metrics.rejection(Rejection::Revoked).clone();
            handler =
                handler.route_layer(middleware::from_fn(move |request: Request, next: Next| {
                    check_online(online.clone(), revoked.clone(), request, next)
                }));
        }
        handler
    }
}

/// The header an API key may also be sent in.
pub const API_KEY_HEADER: &str = "x-api-key";

/// Reads `Authorization: Bearer <token>` (RFC 6750 §2.1).
fn bearer_token(headers: &HeaderMap) -> Result<&str, ApiError> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Err(ApiError::MissingToken);
    };
    // Two are ambiguous (RFC 6750 §3.1 `invalid_request`): taking either would let whatever
    // sits between the client and us decide whose request this is.
    if values.next().is_some() {
        return Err(ApiError::InvalidRequest(
            "more than one Authorization header: send the token once".into(),
        ));
    }
    let value = value
        .to_str()
        .map_err(|_| ApiError::InvalidToken("the Authorization header is not ASCII".into()))?;
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        // Another scheme is no bearer credential at all: answer with the bare challenge.
        return Err(ApiError::MissingToken);
    }
    let token = token.trim_matches(' ');
    if token.is_empty() {
        return Err(ApiError::InvalidToken("the bearer token is empty".into()));
    }
    Ok(token)
}

/// The credential a request presents.
#[derive(Clone, Copy)]
enum Credential<'a> {
    /// A bearer token (a JWT, or with keys off anything else, `pak_` included).
    Token(&'a str),
    /// With keys on: an `Authorization: Bearer pak_…` or `X-API-Key` value, not yet checked
    /// for the key's form.
    Key(&'a str),
}

/// How the caller authenticated, beside its [`Principal`]: the online token check
/// (`RESOURCE_INTROSPECT_ROUTES`) has nothing to add for a key, which was just resolved online.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AuthenticatedBy {
    Token,
    ApiKey,
}

/// The request's one credential. With keys off this is [`bearer_token`], `X-API-Key` unread.
/// With keys on, a `pak_` bearer or an `X-API-Key` value is a key, and more than one credential
/// is ambiguous (RFC 6750 §3.1 `invalid_request`, 400), as two `Authorization` headers are.
fn credential(headers: &HeaderMap, keys_on: bool) -> Result<Credential<'_>, ApiError> {
    let bearer = bearer_token(headers);
    if !keys_on {
        return bearer.map(Credential::Token);
    }
    let mut values = headers.get_all(API_KEY_HEADER).iter();
    let header_key = match (values.next(), values.next()) {
        (None, _) => None,
        (Some(_), Some(_)) => {
            return Err(ApiError::InvalidRequest(
                "more than one X-API-Key header: send the key once".into(),
            ));
        }
        (Some(value), None) => Some(
            value
                .to_str()
                .map_err(|_| ApiError::InvalidToken("the X-API-Key header is not ASCII".into()))?,
        ),
    };
    match (bearer, header_key) {
        (Err(ApiError::MissingToken), Some(key)) => Ok(Credential::Key(key.trim_matches(' '))),
        (Err(err @ ApiError::InvalidRequest(_)), _) | (Err(err), None) => Err(err),
        (Ok(token), Some(_)) if crate::api_keys::is_key_shaped(token) => {
            Err(ApiError::InvalidRequest(
                "an API key in both Authorization and X-API-Key: send it once".into(),
            ))
        }
        (_, Some(_)) => Err(ApiError::InvalidRequest(
            "an API key and a bearer token in one request: send one credential".into(),
        )),
        (Ok(token), None) if crate::api_keys::is_key_shaped(token) => Ok(Credential::Key(token)),
        (Ok(token), None) => Ok(Credential::Token(token)),
    }
}

/// The client address wrong keys are counted against: as the edge saw it (through trusted
/// proxies, or from a Lambda event); requests without one share a single budget.
fn source_of(request: &Request) -> std::net::IpAddr {
    request.extensions().get::<edge::ClientIp>().map_or(
        std::net::IpAddr::from([0, 0, 0, 0]),
        |edge::ClientIp(ip)| *ip,
    )
}

/// The verified caller of a request with `headers` from `source`, or the refusal to answer with
/// (counted by reason).
async fn identify(
    state: &AppState,
    headers: &HeaderMap,
    source: std::net::IpAddr,
) -> Result<(Arc<AccessTokenClaims>, AuthenticatedBy), Response> {
    let credential = credential(headers, state.api_keys.is_some()).map_err(|err| {
        state.metrics.rejected(match err {
            ApiError::MissingToken => Rejection::Missing,
            ApiError::InvalidRequest(_) => Rejection::Ambiguous,
            _ => Rejection::Malformed,
        });
        err.into_response()
    })?;
    let token = match (credential, &state.api_keys) {
        (Credential::Key(key), Some(keys)) => {
            let claims = authenticate_key(state, keys, key, source).await?;
            return Ok((claims, AuthenticatedBy::ApiKey));
        }
        (Credential::Key(token) | Credential::Token(token), _) => token,
    };
    let verified = if crate::api_keys::is_key_shaped(token) {
        // Keys are off: a key is an invalid token as any other non-JWS, never parsed as one.
        Err(crate::verify::TokenError::Malformed(
            "expected three dot-separated parts",
        ))
    } else {
        state.verifier.verify(token).await
    };
    match verified {
        Ok(claims) => Ok((claims, AuthenticatedBy::Token)),
        Err(err) => {
            tracing::info!(reason = %err, "bearer token refused");
            state.metrics.rejected(Rejection::of(&err));
            Err(ApiError::InvalidToken(err.to_string()).into_response())
        }
    }
}

/// An API key's client, or the refusal: 429 for a locked-out address (before any lookup), 401
/// `invalid_token` for a malformed, unknown or inactive key (counted against the address), 503
/// when the token service cannot be asked.
async fn authenticate_key(
    state: &AppState,
    keys: &ApiKeys,
    key: &str,
    source: std::net::IpAddr,
) -> Result<Arc<AccessTokenClaims>, Response> {
    if let Some(retry_after) = keys.locked_out(source).await {
        state.metrics.rejected(Rejection::LockedOut);
        tracing::info!(%source, "API key refused: the address is locked out");
        return Err(ApiError::LockedOut { retry_after }.into_response());
    }
    let resolution = match ApiKey::parse(key) {
        Ok(key) => keys.resolve(&key).await,
        Err(_) => Resolution::Inactive,
    };
    match resolution {
        Resolution::Active(claims) => Ok(claims),
        Resolution::Inactive => {
            keys.wrong_key_from(source).await;
            state.metrics.rejected(Rejection::WrongKey);
            tracing::info!(%source, "API key refused");
            Err(ApiError::InvalidToken("the API key is not valid".into()).into_response())
        }
        Resolution::Unavailable => {
            state.metrics.rejected(Rejection::KeyLookupUnavailable);
            Err(
                ApiError::Unavailable("the API key cannot be checked now; retry later".into())
                    .into_response(),
            )
        }
    }
}

async fn authenticate(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let source = source_of(&request);
    let (claims, by) = match identify(&state, request.headers(), source).await {
        Ok(identified) => identified,
        Err(refusal) => return refusal,
    };
    let presented = request
        .extensions()
        .get::<edge::ClientCertificate>()
        .map(edge::ClientCertificate::x5t_s256);
    if !crate::verify::binding_holds(&claims, presented) {
        state.metrics.rejected(Rejection::CertificateBinding);
        tracing::info!(client_id = %claims.client_id, "certificate-bound token without its certificate");
        return ApiError::InvalidToken(
            "the token is bound to a client certificate this request did not present".into(),
        )
        .into_response();
    }
    let limit = state.rate_limit.rate().burst.get();
    let remaining = match state.rate_limit.check(claims.client_id.as_str()).await {
        Verdict::Allowed { remaining } => remaining,
        Verdict::Denied { retry_after } => {
            tracing::info!(client_id = %claims.client_id, "rate limited");
            return ApiError::RateLimited { retry_after, limit }.into_response();
        }
    };
    tracing::Span::current().record("client_id", claims.client_id.as_str());
    request.extensions_mut().insert(Principal(claims));
    request.extensions_mut().insert(by);
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert("x-ratelimit-limit", HeaderValue::from(limit));
    headers.insert("x-ratelimit-remaining", HeaderValue::from(remaining));
    response
}

/// Asks the token service whether the (locally valid) token is still active; `revoked` counts
/// the tokens it says are not.
async fn check_online(
    online: Arc<Introspection>,
    revoked: Counter,
    request: Request,
    next: Next,
) -> Response {
    if request.extensions().get::<AuthenticatedBy>() == Some(&AuthenticatedBy::ApiKey) {
        return next.run(request).await;
    }
    let Ok(token) = bearer_token(request.headers()) else {
        return ApiError::MissingToken.into_response();
    };
    match online.introspector.is_active(token).await {
        Ok(true) => next.run(request).await,
        Ok(false) => {
            revoked.increment(1);
            ApiError::InvalidToken("the token has been revoked".into()).into_response()
        }
        Err(err) => ApiError::Unavailable(err.to_string()).into_response(),
    }
}

/// Whether the verified caller holds `scope`.
fn has_scope(request: &Request, scope: &str) -> bool {
    request
        .extensions()
        .get::<Principal>()
        .is_some_and(|p| p.0.scope.contains(scope))
}

async fn require_scope(
    allowed: bool,
    scope: &'static str,
    request: Request,
    next: Next,
) -> Result<Response, Infallible> {
    if !allowed {
        return Ok(ApiError::InsufficientScope(scope).into_response());
    }
    Ok(next.run(request).await)
}
