//! The answers: a REST API IAM policy (TOKEN and REQUEST authorizers, and HTTP API payload 1.0)
//! or an HTTP API simple response (payload 2.0), built from the verdict alone, without I/O.
//!
//! API Gateway caches a REST policy per token and applies it to the token's next calls on any
//! route, so a policy never speaks about the called route only: it allows every route the token's
//! scopes allow (each a method ARN of the called API and stage, parameters as `*`), and denies the
//! called route when that one is refused. A token refused one route therefore keeps the routes it
//! may call, and a token allowed one route gains nothing its scopes do not allow.

use lambda_http::aws_lambda_events::apigw::{
    ApiGatewayCustomAuthorizerPolicy, ApiGatewayV2CustomAuthorizerSimpleResponse,
};
use lambda_http::aws_lambda_events::iam::{IamPolicyEffect, IamPolicyStatement};
use serde::{Deserialize, Serialize};
use shared_claims::AccessTokenClaims;

use super::routes::{Access, Route};

/// The policy language version every answer states.
pub const POLICY_VERSION: &str = "2012-10-17";

/// The only action a Lambda authorizer's policy speaks about.
pub const INVOKE: &str = "execute-api:Invoke";

/// The decision about one call by a verified token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// The route needs a scope the token lacks.
    MissingScope,
    /// The route is not in the table.
    Unlisted,
    /// The client is over its rate limit.
    RateLimited,
}

impl From<Access> for Verdict {
    fn from(access: Access) -> Verdict {
        match access {
            Access::Allowed => Verdict::Allowed,
            Access::MissingScope => Verdict::MissingScope,
            Access::Unlisted => Verdict::Unlisted,
        }
    }
}

/// `arn:PARTITION:execute-api:REGION:ACCOUNT:API/STAGE/METHOD/PATH`, API Gateway's name for a
/// call (REST `methodArn`, HTTP API `routeArn`), split where the policies need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MethodArn {
    text: String,
    /// `arn:…:API/STAGE/`: what every method ARN of this API and stage starts with.
    base: String,
    method: String,
    /// The path after the method, with its leading `/` (the stage is not part of it).
    path: String,
}

impl MethodArn {
    pub fn parse(text: &str) -> Option<MethodArn> {
        let mut parts = text.splitn(6, ':');
        let (Some("arn"), Some(partition), Some("execute-api"), Some(region), Some(account)) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return None;
        };
        let mut resource = parts.next()?.splitn(4, '/');
        let (api, stage, method) = (resource.next()?, resource.next()?, resource.next()?);
        let rest = resource.next().unwrap_or("");
        if [partition, region, account, api, stage, method]
            .iter()
            .any(|p| p.is_empty())
        {
            return None;
        }
        Some(MethodArn {
            text: text.to_owned(),
            base: format!("arn:{partition}:execute-api:{region}:{account}:{api}/{stage}/"),
            method: method.to_owned(),
            path: format!("/{rest}"),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn method(&self) -> &str {
        &self.method
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    /// The method ARN of `route` in the same API and stage, each parameter as `*`.
    pub fn of_route(&self, route: &Route) -> String {
        format!("{}{}/{}", self.base, route.method(), route.arn_path())
    }
}

/// What API Gateway hands to the integration (`$context.authorizer.*`, or
/// `requestContext.authorizer.lambda` for HTTP APIs).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizerContext {
    pub client_id: String,
    pub partner_id: String,
    /// The token's scopes, space-separated.
    pub scope: String,
}

impl AuthorizerContext {
    pub fn of(claims: &AccessTokenClaims) -> AuthorizerContext {
        AuthorizerContext {
            client_id: claims.client_id.as_str().to_owned(),
            partner_id: claims.partner_id.as_str().to_owned(),
            scope: claims.scope.to_string(),
        }
    }
}

/// A REST authorizer's answer. Our own type rather than `ApiGatewayCustomAuthorizerResponse`,
/// which always writes `"usageIdentifierKey": null`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyAnswer {
    pub principal_id: String,
    pub policy_document: ApiGatewayCustomAuthorizerPolicy,
    pub context: AuthorizerContext,
}

fn statement(effect: IamPolicyEffect, resources: Vec<String>) -> IamPolicyStatement {
    let mut statement = IamPolicyStatement::default();
    statement.action = vec![INVOKE.to_owned()];
    statement.effect = effect;
    statement.resource = resources;
    statement
}

/// The policy for a call of `called`: Allow on every route in `permitted` (unless the client is
/// rate limited), and Deny on `called` unless it is allowed.
pub fn policy<'a>(
    called: &MethodArn,
    permitted: impl Iterator<Item = &'a Route>,
    verdict: Verdict,
) -> ApiGatewayCustomAuthorizerPolicy {
    let mut statements = Vec::new();
    if verdict != Verdict::RateLimited {
        let allowed: Vec<String> = permitted.map(|r| called.of_route(r)).collect();
        if !allowed.is_empty() {
            statements.push(statement(IamPolicyEffect::Allow, allowed));
        }
    }
    if verdict != Verdict::Allowed {
        statements.push(statement(
            IamPolicyEffect::Deny,
            vec![called.as_str().to_owned()],
        ));
    }
    let mut document = ApiGatewayCustomAuthorizerPolicy::default();
    document.version = Some(POLICY_VERSION.to_owned());
    document.statement = statements;
    document
}

/// A REST authorizer's answer for `claims`: the client id as principal, the policy, the context.
pub fn policy_answer<'a>(
    claims: &AccessTokenClaims,
    called: &MethodArn,
    permitted: impl Iterator<Item = &'a Route>,
    verdict: Verdict,
) -> PolicyAnswer {
    PolicyAnswer {
        principal_id: claims.client_id.as_str().to_owned(),
        policy_document: policy(called, permitted, verdict),
        context: AuthorizerContext::of(claims),
    }
}

/// An HTTP API simple response: authorized only when allowed.
pub fn simple_answer(
    claims: &AccessTokenClaims,
    verdict: Verdict,
) -> ApiGatewayV2CustomAuthorizerSimpleResponse<AuthorizerContext> {
    let mut answer = ApiGatewayV2CustomAuthorizerSimpleResponse::default();
    answer.is_authorized = verdict == Verdict::Allowed;
    answer.context = AuthorizerContext::of(claims);
    answer
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};
    use shared_claims::{Audience, ClientId, PartnerId, ScopeSet};

    use super::super::routes::RouteTable;
    use super::*;

    const CALLED: &str =
        "arn:aws:execute-api:eu-west-1:123456789012:abc123/prod/GET/v1/orders/ord_1";

    fn claims(scope: &str) -> AccessTokenClaims {
        AccessTokenClaims {
            iss: "https://auth.example".into(),
            sub: "cl_1".into(),
            aud: Audience::One("partner-api".into()),
            exp: 2_000_000_000,
            iat: 1_000_000_000,
            nbf: 1_000_000_000,
            jti: "j1".into(),
            client_id: ClientId::parse("cl_1").unwrap(),
            scope: ScopeSet::parse(scope).unwrap(),
            partner_id: PartnerId::parse("acme").unwrap(),
            cnf: None,
        }
    }

    fn table() -> RouteTable {
        RouteTable::parse(&[
            "GET /v1/me=",
            "GET /v1/orders=orders:read",
            "GET /v1/orders/{id}=orders:read",
            "GET /v1/invoices=invoices:read",
            "GET /v1/invoices/{id}=invoices:read",
        ])
        .unwrap()
    }

    fn answer(scope: &str, called: &str, verdict: Verdict) -> Value {
        let claims = claims(scope);
        let table = table();
        let called = MethodArn::parse(called).unwrap();
        serde_json::to_value(policy_answer(
            &claims,
            &called,
            table.permitted(&claims.scope),
            verdict,
        ))
        .unwrap()
    }

    #[test]
    fn method_arns_split_into_base_method_and_path() {
        let arn = MethodArn::parse(CALLED).unwrap();
        assert_eq!(arn.method(), "GET");
        assert_eq!(arn.path(), "/v1/orders/ord_1");
        assert_eq!(arn.as_str(), CALLED);
        let table = table();
        let route = table.find("GET", "/v1/orders/x").unwrap();
        assert_eq!(
            arn.of_route(route),
            "arn:aws:execute-api:eu-west-1:123456789012:abc123/prod/GET/v1/orders/*"
        );
        let root =
            MethodArn::parse("arn:aws-cn:execute-api:cn-north-1:1:api/$default/GET/").unwrap();
        assert_eq!(root.path(), "/");
        let bare = MethodArn::parse("arn:aws:execute-api:r:1:api/stage/GET").unwrap();
        assert_eq!(bare.path(), "/");
        for bad in [
            "",
            "arn:aws:lambda:r:1:function:f",
            "arn:aws:execute-api:r:1:api/stage",
            "arn:aws:execute-api::1:api/stage/GET/x",
            "arn:aws:execute-api:r:1:api//GET/x",
            "arn:aws:execute-api:r:1",
        ] {
            assert_eq!(MethodArn::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn an_allow_lists_every_route_the_scopes_allow_and_nothing_else() {
        let body = answer("orders:read", CALLED, Verdict::Allowed);
        let base = "arn:aws:execute-api:eu-west-1:123456789012:abc123/prod/";
        assert_eq!(
            body,
            json!({
                "principalId": "cl_1",
                "policyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [{
                        "Action": ["execute-api:Invoke"],
                        "Effect": "Allow",
                        "Resource": [
                            format!("{base}GET/v1/me"),
                            format!("{base}GET/v1/orders"),
                            format!("{base}GET/v1/orders/*"),
                        ]
                    }]
                },
                "context": { "client_id": "cl_1", "partner_id": "acme", "scope": "orders:read" }
            })
        );
    }

    #[test]
    fn a_refused_route_is_denied_beside_the_routes_the_token_keeps() {
        let called = "arn:aws:execute-api:eu-west-1:123456789012:abc123/prod/GET/v1/invoices/inv_1";
        for verdict in [Verdict::MissingScope, Verdict::Unlisted] {
            let body = answer("orders:read", called, verdict);
            let statements = body["policyDocument"]["Statement"].as_array().unwrap();
            assert_eq!(statements.len(), 2, "{verdict:?}");
            assert_eq!(statements[0]["Effect"], "Allow");
            assert_eq!(statements[0]["Resource"].as_array().unwrap().len(), 3);
            assert_eq!(statements[1]["Effect"], "Deny");
            assert_eq!(statements[1]["Resource"], json!([called]));
            assert_eq!(body["principalId"], "cl_1");
        }
        // A token that may call nothing gets a Deny alone (an empty Resource is no policy).
        let strict = RouteTable::parse(&["GET /v1/orders=orders:read"]).unwrap();
        let claims = claims("catalog:read");
        let arn = MethodArn::parse(CALLED).unwrap();
        let document = policy(&arn, strict.permitted(&claims.scope), Verdict::MissingScope);
        assert_eq!(document.statement.len(), 1);
        assert_eq!(document.statement[0].effect, IamPolicyEffect::Deny);
    }

    #[test]
    fn a_rate_limited_client_is_denied_the_called_route_and_allowed_nothing() {
        let body = answer("orders:read", CALLED, Verdict::RateLimited);
        assert_eq!(
            body["policyDocument"]["Statement"],
            json!([{ "Action": ["execute-api:Invoke"], "Effect": "Deny", "Resource": [CALLED] }])
        );
    }

    #[test]
    fn a_simple_answer_is_authorized_only_when_allowed() {
        let claims = claims("orders:read catalog:read");
        let allowed = serde_json::to_value(simple_answer(&claims, Verdict::Allowed)).unwrap();
        assert_eq!(
            allowed,
            json!({
                "isAuthorized": true,
                "context": { "client_id": "cl_1", "partner_id": "acme", "scope": "catalog:read orders:read" }
            })
        );
        for verdict in [
            Verdict::MissingScope,
            Verdict::Unlisted,
            Verdict::RateLimited,
        ] {
            let refused = serde_json::to_value(simple_answer(&claims, verdict)).unwrap();
            assert_eq!(refused["isAuthorized"], false, "{verdict:?}");
        }
    }
}
