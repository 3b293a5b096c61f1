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
use axum::http::{HeaderValue, header};
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

use crate::metrics::{ApiMetrics, Rejection};
use crate::problem::ApiError;
use crate::state::{AppState, Introspection};

/// The name of the OAuth 2.0 security scheme in the OpenAPI description: a client-credentials
/// access token from the token service, whose scopes the `/v1` operations require.
pub const TOKEN_SCHEME: &str = "partner_token";

/// What [`ProtectedRoutes::into_router`]'s layers may answer instead of the handler, written
/// into the operation's description.
fn describe_access(operation: &mut Operation, access: Access) {
    use api_docs::{problem_response, required_header, retry_after, string_schema};
    let scopes: Vec<&str> = match access {
        Access::AnyValidToken => vec![],
        Access::Scope(scope) => vec![scope],
    };
    operation
        .security
        .get_or_insert_with(Vec::new)
        .push(SecurityRequirement::new(TOKEN_SCHEME, scopes));
    let challenge = |what: &str| required_header(string_schema(), what);
    let responses = &mut operation.responses.responses;
    responses.insert(
        "401".into(),
        RefOr::T(
            problem_response(
                "No bearer token, or one that is malformed, expired, wrongly signed or addressed, \
                 or bound to a certificate this request did not present (RFC 6750 §3).",
            )
            .header(
                "WWW-Authenticate",
                challenge("`Bearer realm=\"partner-api\"`, with `error=\"invalid_token\"` when a token was presented."),
            )
            .build(),
        ),
    );
    // A handler's own 400 (a malformed parameter) stays as it documents it.
    responses.entry("400".into()).or_insert_with(|| {
        RefOr::T(
            problem_response(
                "More than one `Authorization` header (RFC 6750 §3.1 `invalid_request`), or \
                 more than one `Client-Cert` field from a trusted proxy.",
            )
            .build(),
        )
    });
    if let Access::Scope(scope) = access {
        responses.insert(
            "403".into(),
            RefOr::T(
                problem_response(&format!("The token lacks the scope `{scope}` (RFC 6750 §3.1)."))
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
    responses.insert(
        "429".into(),
        RefOr::T(
            problem_response("This client is over its request rate.")
                .header("Retry-After", retry_after())
                .build(),
        ),
    );
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
    pub fn describe(&self) -> (Paths, Vec<(String, RefOr<Schema>)>) {
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
                    describe_access(operation, route.access);
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

/// Reads `Authorization: Bearer <token>` (RFC 6750 §2.1).
fn bearer_token(request: &Request) -> Result<&str, ApiError> {
    let mut values = request.headers().get_all(header::AUTHORIZATION).iter();
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

async fn authenticate(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let claims = match bearer_token(&request) {
        Ok(token) => match state.verifier.verify(token).await {
            Ok(claims) => claims,
            Err(err) => {
                tracing::info!(reason = %err, "bearer token refused");
                state.metrics.rejected(Rejection::of(&err));
                return ApiError::InvalidToken(err.to_string()).into_response();
            }
        },
        Err(err) => {
            state.metrics.rejected(match err {
                ApiError::MissingToken => Rejection::Missing,
                _ => Rejection::Malformed,
            });
            return err.into_response();
        }
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
    let Ok(token) = bearer_token(&request) else {
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
