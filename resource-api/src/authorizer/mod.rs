//! `resource-api authorize`: an API Gateway Lambda authorizer that verifies our access tokens
//! exactly as the partner API does ([`Verifier`] over the JWKS cache), applies the same per-client
//! rate limit, and checks each route's scope from `RESOURCE_AUTHORIZER_ROUTES`, so an API behind
//! API Gateway can trust the caller without verifying tokens itself. No database is opened.
//!
//! The answers (see `policy` for the cached-policy rule):
//!
//! | | REST `TOKEN` / `REQUEST` | HTTP API payload 2.0 |
//! | --- | --- | --- |
//! | no credential, a token that fails verification, a wrong API key, or two credentials | invocation error `Unauthorized` (401) | the same |
//! | an API key the token service cannot be asked about | invocation error `KeyLookupUnavailable` (API Gateway answers 500) | the same |
//! | valid token, route allowed | Allow policy on every route the scopes allow | `isAuthorized: true` |
//! | valid token, scope missing, route not listed, or rate limited | Deny policy (403) | `isAuthorized: false` (403) |
//!
//! With `RESOURCE_API_KEYS=true`, an API key (`pak_…`) is accepted as `Authorization: Bearer`
//! (REQUEST events; `authorizationToken` of TOKEN events) or `X-API-Key` (REQUEST events), by the
//! partner API's rules (a key and a token, or two keys, are refused), resolved through the same
//! cache as the API's (`crate::api_keys`, in the process, so across warm invocations); its
//! client's context is the one a token would give. A key is never refused for an outage: API
//! Gateway answers 500 rather than telling a partner its valid key is wrong. Wrong keys are not
//! counted per address here: TOKEN events carry no address and an authorizer cannot answer 429;
//! API Gateway's throttling applies instead.
//!
//! `Unauthorized` is the answer AWS documents for REST authorizers (an invocation that fails with
//! exactly that message becomes 401). The HTTP API documentation describes only `isAuthorized`
//! for simple responses; the same `Unauthorized` error is used there so that a bad token is a 401
//! on both, not a 403 like a missing scope.
//!
//! Caching by API Gateway: a REST policy is cached per token and reused on every route, which
//! the policies are built for. An HTTP API simple response says nothing about routes, so with
//! caching on, the authorizer's identity sources must include `$context.routeKey` (or the TTL
//! be 0), or one route's `isAuthorized: true` would open the others. The rate limit counts
//! invocations, that is cache misses: with caching on it bounds how often a client gets a fresh
//! answer, not its requests, and a rate-limited answer (Deny of the called route, nothing
//! allowed) is replayed for the whole TTL. Where the per-client limit matters, turn caching off.

mod events;
mod policy;
mod routes;

use std::sync::Arc;

use lambda_runtime::{Diagnostic, LambdaEvent};
use serde_json::Value;
use shared_limits::{RateLimiter, Verdict as RateVerdict};

pub use events::{Call, EventError, Kind, bearer, read};
pub use policy::{AuthorizerContext, MethodArn, PolicyAnswer, Verdict};
pub use routes::{Access, Route, RouteError, RouteTable};

use crate::api_keys::{ApiKey, ApiKeys, Resolution, is_key_shaped};
use crate::config::Settings;
use crate::verify::Verifier;

/// The exact error message API Gateway turns into 401 Unauthorized.
pub const UNAUTHORIZED: &str = "Unauthorized";

/// The arguments of `resource-api authorize` (the partner API's own settings apply too).
#[derive(clap::Args, Clone, Debug)]
pub struct AuthorizeArgs {
    /// The routes this authorizer may allow and the scope each needs, comma-separated
    /// `METHOD /path=scope` entries; `{name}` is one path segment and an empty scope (`GET /v1/me=`)
    /// allows any valid token. Any other route is denied.
    #[arg(
        id = "resource-authorizer-routes",
        long = "resource-authorizer-routes",
        env = "RESOURCE_AUTHORIZER_ROUTES",
        value_delimiter = ','
    )]
    pub routes: Vec<String>,
}

/// Everything an invocation needs, shared by all of them.
#[derive(Clone)]
pub struct Authorizer {
    verifier: Verifier,
    rate_limit: RateLimiter,
    /// Set when `RESOURCE_API_KEYS` is on.
    api_keys: Option<Arc<ApiKeys>>,
    routes: Arc<RouteTable>,
}

/// The error type of an invocation that failed because an API key could not be checked.
pub const KEY_LOOKUP_UNAVAILABLE: &str = "KeyLookupUnavailable";

/// The one credential of a call, by the partner API's rules.
enum Presented<'a> {
    Token(&'a str),
    Key(&'a str),
}

impl Authorizer {
    /// The verifier and the rate limit, built as the partner API builds them; nothing is fetched.
    pub async fn build(settings: &Settings, routes: RouteTable) -> anyhow::Result<Authorizer> {
        keys::install_crypto_provider();
        // No listener: the authorizer keeps no metrics.
        let metrics = crate::metrics::ApiMetrics::new(edge::Metrics::off());
        let rate_limit = crate::app::rate_limiter(settings).await?;
        Ok(Authorizer {
            verifier: crate::app::verifier(settings, &edge::Metrics::off())?,
            api_keys: crate::app::api_keys(settings, &rate_limit, &metrics)?,
            rate_limit,
            routes: Arc::new(routes),
        })
    }

    pub fn verifier(&self) -> &Verifier {
        &self.verifier
    }

    /// Answers one authorizer event: the policy or simple response, or the `Unauthorized` error
    /// (or another error for an event that is no authorizer event: API Gateway answers 500).
    pub async fn answer(&self, event: Value) -> Result<Value, Diagnostic> {
        let call = read(event).map_err(|err| {
            tracing::warn!(error = %err, "event refused");
            Diagnostic {
                error_type: "InvalidEvent".into(),
                error_message: err.to_string(),
            }
        })?;
        let claims = match self.presented(&call)? {
            Presented::Key(key) => self.resolve(key).await?,
            Presented::Token(token) => match self.verifier.verify(token).await {
                Ok(claims) => claims,
                Err(err) => {
                    tracing::info!(reason = %err, "bearer token refused");
                    return Err(unauthorized());
                }
            },
        };
        // A certificate-bound token only with its certificate, as at the partner API itself.
        if !crate::verify::binding_holds(&claims, call.client_cert.as_deref()) {
            tracing::info!(client_id = %claims.client_id, "certificate-bound token without its certificate");
            return Err(unauthorized());
        }
        let verdict = match self.rate_limit.check(claims.client_id.as_str()).await {
            RateVerdict::Denied { .. } => {
                tracing::info!(client_id = %claims.client_id, "rate limited");
                Verdict::RateLimited
            }
            RateVerdict::Allowed { .. } => self
                .routes
                .access(&call.method, &call.path, &claims.scope)
                .into(),
        };
        if verdict != Verdict::Allowed {
            tracing::info!(client_id = %claims.client_id, method = %call.method, path = %call.path, ?verdict, "call denied");
        }
        let answer = match (&call.kind, &call.arn) {
            (Kind::RestToken | Kind::RestRequest, Some(arn)) => serde_json::to_value(
                policy::policy_answer(&claims, arn, self.routes.permitted(&claims.scope), verdict),
            ),
            _ => serde_json::to_value(policy::simple_answer(&claims, verdict)),
        };
        answer.map_err(|err| Diagnostic {
            error_type: "InternalError".into(),
            error_message: err.to_string(),
        })
    }
}

impl Authorizer {
    /// The call's one credential: with keys on, a `pak_` bearer or the `X-API-Key` value is a
    /// key, and a key beside another credential, or two keys, are refused; with keys off,
    /// `X-API-Key` is not read and a `pak_` bearer is refused unread.
    fn presented<'a>(&self, call: &'a Call) -> Result<Presented<'a>, Diagnostic> {
        let keys_on = self.api_keys.is_some();
        let presented = match (keys_on, call.api_keys.as_slice(), call.token.as_deref()) {
            (true, [key], _) if !call.authorization_bearer => Some(Presented::Key(key.as_str())),
            (true, [_, ..], _) => {
                tracing::info!(kind = ?call.kind, "two credentials: refused as ambiguous");
                None
            }
            (true, [], Some(token)) if is_key_shaped(token) => Some(Presented::Key(token)),
            (false, _, Some(token)) if is_key_shaped(token) => None,
            (_, _, Some(token)) => Some(Presented::Token(token)),
            (_, _, None) => None,
        };
        presented.ok_or_else(|| {
            tracing::info!(kind = ?call.kind, "no usable credential");
            unauthorized()
        })
    }

    /// The claims of an API key's client; `Unauthorized` for a wrong key, an error of its own
    /// when the token service cannot be asked.
    async fn resolve(
        &self,
        key: &str,
    ) -> Result<Arc<shared_claims::AccessTokenClaims>, Diagnostic> {
        let Some(keys) = &self.api_keys else {
            return Err(unauthorized());
        };
        let resolution = match ApiKey::parse(key) {
            Ok(key) => keys.resolve(&key).await,
            Err(_) => Resolution::Inactive,
        };
        match resolution {
            Resolution::Active(claims) => Ok(claims),
            Resolution::Inactive => {
                tracing::info!("API key refused");
                Err(unauthorized())
            }
            Resolution::Unavailable => Err(Diagnostic {
                error_type: KEY_LOOKUP_UNAVAILABLE.into(),
                error_message: "the token service cannot be asked about this API key now".into(),
            }),
        }
    }
}

fn unauthorized() -> Diagnostic {
    Diagnostic {
        error_type: UNAUTHORIZED.into(),
        error_message: UNAUTHORIZED.into(),
    }
}

/// Runs the authorizer as a Lambda function until the runtime stops. Refuses to start outside
/// Lambda, and on a route table it cannot use (naming the entry).
pub async fn run(settings: Settings, args: AuthorizeArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        edge::lambda::is_lambda(),
        "`resource-api authorize` only runs as an AWS Lambda function (AWS_LAMBDA_RUNTIME_API is not set)"
    );
    let routes = RouteTable::parse(&args.routes)?;
    if settings.redis.is_none() {
        edge::lambda::warn_limits_per_instance("RESOURCE_REDIS_URL");
    }
    let authorizer = Authorizer::build(&settings, routes).await?;
    crate::lambda::prefetch_jwks(authorizer.verifier().jwks()).await;
    let handler = lambda_runtime::service_fn(move |event: LambdaEvent<Value>| {
        let authorizer = authorizer.clone();
        async move { authorizer.answer(event.payload).await }
    });
    lambda_runtime::run(handler)
        .await
        .map_err(|err| anyhow::anyhow!("the Lambda runtime stopped: {err}"))
}
