//! The authorizer events API Gateway sends, each read into one [`Call`]: which kind of answer it
//! wants, the bearer token if there is one, and the method and path called (the stage left out).
//!
//! - REST API `TOKEN`: `{"type": "TOKEN", "authorizationToken": "Bearer …", "methodArn": …}`;
//! - REST API `REQUEST` (and HTTP API payload 1.0): `type: REQUEST`, `methodArn`, the headers;
//! - HTTP API payload 2.0: `version: "2.0"`, `type: REQUEST`, `routeArn`, `identitySource`,
//!   the headers, `requestContext.http.method` and `rawPath`.

use lambda_http::aws_lambda_events::apigw::{
    ApiGatewayCustomAuthorizerRequest, ApiGatewayCustomAuthorizerRequestTypeRequest,
    ApiGatewayV2CustomAuthorizerV2Request,
};
use lambda_http::http::{HeaderMap, header};
use serde_json::Value;

use super::policy::MethodArn;

/// Which authorizer API Gateway runs, and so which answer it reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// REST API `TOKEN` authorizer: an IAM policy.
    RestToken,
    /// REST API `REQUEST` authorizer (or an HTTP API one with payload 1.0): an IAM policy.
    RestRequest,
    /// HTTP API authorizer with payload 2.0 and simple responses: `isAuthorized`.
    HttpApi,
}

/// One authorization question.
#[derive(Debug, Clone)]
pub struct Call {
    pub kind: Kind,
    /// The bearer token, when the request carries one (`Authorization: Bearer …`); may be an
    /// API key (`pak_…`).
    pub token: Option<String>,
    /// Every `X-API-Key` value of the request (REQUEST events; none in a TOKEN event).
    pub api_keys: Vec<String>,
    /// Whether the request also has an `Authorization` header that is a bearer credential (even
    /// an empty one) or is repeated: beside an `X-API-Key`, that is two credentials.
    pub authorization_bearer: bool,
    /// The method and path called, the stage not part of the path.
    pub method: String,
    pub path: String,
    /// The ARN of the call: REST `methodArn`, HTTP API `routeArn` when present.
    pub arn: Option<MethodArn>,
    /// The `x5t#S256` of the client certificate API Gateway's mutual TLS received, when the event
    /// carries one (REST `REQUEST`: `requestContext.identity.clientCert`; HTTP API:
    /// `requestContext.authentication.clientCert`); a `TOKEN` event never does.
    pub client_cert: Option<String>,
}

/// An event this function cannot answer (API Gateway then answers 500).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EventError {
    #[error("not an API Gateway authorizer event (REST TOKEN or REQUEST, or HTTP API payload 2.0)")]
    Unrecognised,
    #[error("malformed {kind:?} authorizer event: {why}")]
    Malformed { kind: Kind, why: String },
}

/// The token of an `Authorization` value: `Bearer` (any case), a space, the token (RFC 6750
/// §2.1). Any other scheme, or an empty token, is no bearer token.
pub fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = token.trim_matches(' ');
    (!token.is_empty()).then_some(token)
}

/// The bearer token of the `Authorization` header (names are case-insensitive in a `HeaderMap`).
/// Two `Authorization` values are no token: which one counts would be anyone's guess.
fn bearer_header(headers: &HeaderMap) -> Option<Option<String>> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let value = values.next()?;
    if values.next().is_some() {
        return Some(None);
    }
    Some(value.to_str().ok().and_then(bearer).map(str::to_owned))
}

/// The `X-API-Key` values of `headers`.
fn api_key_headers(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all("x-api-key")
        .iter()
        .map(|value| {
            String::from_utf8_lossy(value.as_bytes())
                .trim_matches(' ')
                .to_owned()
        })
        .collect()
}

/// Whether `headers` has two `Authorization` values, or one with the `Bearer` scheme.
fn has_bearer_authorization(headers: &HeaderMap) -> bool {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    match (values.next(), values.next()) {
        (None, _) => false,
        (Some(_), Some(_)) => true,
        (Some(value), None) => value.to_str().is_ok_and(|value| {
            let scheme = value.split_once(' ').map_or(value, |(scheme, _)| scheme);
            scheme.eq_ignore_ascii_case("bearer")
        }),
    }
}

/// Which kind of event `event` is, by its fields.
pub fn kind_of(event: &Value) -> Option<Kind> {
    match (event["version"].as_str(), event["type"].as_str()) {
        (Some("2.0"), Some("REQUEST")) => Some(Kind::HttpApi),
        (_, Some("TOKEN")) => Some(Kind::RestToken),
        (_, Some("REQUEST")) if event["methodArn"].is_string() => Some(Kind::RestRequest),
        _ => None,
    }
}

/// Reads `event` into a [`Call`].
pub fn read(event: Value) -> Result<Call, EventError> {
    let kind = kind_of(&event).ok_or(EventError::Unrecognised)?;
    let client_cert = client_cert(kind, &event);
    let malformed = |why: String| EventError::Malformed { kind, why };
    match kind {
        Kind::RestToken => {
            let event: ApiGatewayCustomAuthorizerRequest =
                serde_json::from_value(event).map_err(|e| malformed(e.to_string()))?;
            let arn = rest_arn(event.method_arn.as_deref()).map_err(malformed)?;
            Ok(Call {
                kind,
                token: event
                    .authorization_token
                    .as_deref()
                    .and_then(bearer)
                    .map(str::to_owned),
                api_keys: Vec::new(),
                authorization_bearer: false,
                method: arn.method().to_owned(),
                path: arn.path().to_owned(),
                arn: Some(arn),
                client_cert: None,
            })
        }
        Kind::RestRequest => {
            let event: ApiGatewayCustomAuthorizerRequestTypeRequest =
                serde_json::from_value(event).map_err(|e| malformed(e.to_string()))?;
            let arn = rest_arn(event.method_arn.as_deref()).map_err(malformed)?;
            // The multi-value headers first: they hold every value, where `headers` keeps the
            // last one only.
            let token = bearer_header(&event.multi_value_headers)
                .or_else(|| bearer_header(&event.headers))
                .flatten();
            let headers = if event.multi_value_headers.is_empty() {
                &event.headers
            } else {
                &event.multi_value_headers
            };
            Ok(Call {
                kind,
                token,
                api_keys: api_key_headers(headers),
                authorization_bearer: has_bearer_authorization(headers),
                method: arn.method().to_owned(),
                path: arn.path().to_owned(),
                arn: Some(arn),
                client_cert,
            })
        }
        Kind::HttpApi => {
            let event: ApiGatewayV2CustomAuthorizerV2Request =
                serde_json::from_value(event).map_err(|e| malformed(e.to_string()))?;
            // The header when it is there; else an identity source that is a bearer credential.
            let token = bearer_header(&event.headers).unwrap_or_else(|| {
                event
                    .identity_source
                    .iter()
                    .flatten()
                    .find_map(|value| bearer(value))
                    .map(str::to_owned)
            });
            let arn = event.route_arn.as_deref().and_then(MethodArn::parse);
            let (method, path) = match &arn {
                Some(arn) => (arn.method().to_owned(), arn.path().to_owned()),
                None => {
                    let raw = event
                        .raw_path
                        .as_deref()
                        .ok_or_else(|| malformed("neither routeArn nor rawPath".into()))?;
                    let stage = event.request_context.stage.as_deref().unwrap_or("$default");
                    let path = match edge::lambda::strip_stage(raw, stage) {
                        _ if stage == "$default" => raw,
                        Some("") => "/",
                        Some(rest) => rest,
                        None => raw,
                    };
                    (
                        event.request_context.http.method.as_str().to_owned(),
                        path.to_owned(),
                    )
                }
            };
            Ok(Call {
                kind,
                token,
                api_keys: api_key_headers(&event.headers),
                authorization_bearer: has_bearer_authorization(&event.headers),
                method,
                path,
                arn,
                client_cert,
            })
        }
    }
}

/// The thumbprint of the certificate in the event's request context, if any; a PEM that is not
/// one certificate is no certificate (a bound token then is refused, never wrongly allowed).
fn client_cert(kind: Kind, event: &Value) -> Option<String> {
    let pointer = match kind {
        Kind::RestToken => return None,
        Kind::RestRequest => "/requestContext/identity/clientCert/clientCertPem",
        Kind::HttpApi => "/requestContext/authentication/clientCert/clientCertPem",
    };
    let pem = event.pointer(pointer)?.as_str()?;
    let mut certs = edge::certificates_from_pem(pem).ok()?;
    (!certs.is_empty()).then(|| certs.swap_remove(0).x5t_s256)
}

fn rest_arn(text: Option<&str>) -> Result<MethodArn, String> {
    let text = text.ok_or("no methodArn")?;
    MethodArn::parse(text).ok_or_else(|| format!("methodArn {text:?} is not an execute-api ARN"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const ARN: &str = "arn:aws:execute-api:us-east-1:123456789012:abcdef123/prod/GET/v1/orders/o1";

    #[test]
    fn a_bearer_value_is_the_scheme_in_any_case_then_the_token() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer  abc "), Some("abc"));
        assert_eq!(bearer("BEARER abc"), Some("abc"));
        assert_eq!(bearer("Bearer"), None);
        assert_eq!(bearer("Bearer "), None);
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("abc"), None);
    }

    #[test]
    fn a_token_event_gives_the_token_and_the_call_from_its_arn() {
        let call =
            read(json!({ "type": "TOKEN", "authorizationToken": "Bearer t1", "methodArn": ARN }))
                .unwrap();
        assert_eq!(call.kind, Kind::RestToken);
        assert_eq!(call.token.as_deref(), Some("t1"));
        assert_eq!(
            (call.method.as_str(), call.path.as_str()),
            ("GET", "/v1/orders/o1")
        );
        assert_eq!(call.arn.unwrap().as_str(), ARN);
        let call =
            read(json!({ "type": "TOKEN", "authorizationToken": "Basic x", "methodArn": ARN }))
                .unwrap();
        assert_eq!(call.token, None);
        let call = read(json!({ "type": "TOKEN", "methodArn": ARN })).unwrap();
        assert_eq!(call.token, None);
        assert!(matches!(
            read(json!({ "type": "TOKEN", "authorizationToken": "Bearer t" })),
            Err(EventError::Malformed {
                kind: Kind::RestToken,
                ..
            })
        ));
        assert!(matches!(
            read(json!({ "type": "TOKEN", "authorizationToken": "Bearer t", "methodArn": "x" })),
            Err(EventError::Malformed { .. })
        ));
    }

    #[test]
    fn a_request_event_takes_the_authorization_header_in_any_case() {
        for name in ["authorization", "Authorization", "AUTHORIZATION"] {
            let call = read(json!({
                "type": "REQUEST", "methodArn": ARN,
                "headers": { name: "Bearer t2", "accept": "*/*" },
                "requestContext": {}
            }))
            .unwrap();
            assert_eq!(call.kind, Kind::RestRequest);
            assert_eq!(call.token.as_deref(), Some("t2"), "{name}");
            assert_eq!(call.path, "/v1/orders/o1");
        }
        let call = read(json!({
            "type": "REQUEST", "methodArn": ARN, "headers": null,
            "multiValueHeaders": { "Authorization": ["Bearer t3"] }, "requestContext": {}
        }))
        .unwrap();
        assert_eq!(call.token.as_deref(), Some("t3"));
        let call =
            read(json!({ "type": "REQUEST", "methodArn": ARN, "requestContext": {} })).unwrap();
        assert_eq!(call.token, None);
    }

    #[test]
    fn an_http_api_event_takes_the_header_or_an_identity_source_and_leaves_out_the_stage() {
        let event = |headers: Value, identity: Value, route_arn: Value| {
            json!({
                "version": "2.0", "type": "REQUEST", "routeArn": route_arn,
                "identitySource": identity, "routeKey": "$default",
                "rawPath": "/prod/v1/orders/o1", "headers": headers,
                "requestContext": {
                    "stage": "prod",
                    "http": { "method": "GET", "path": "/prod/v1/orders/o1" }
                }
            })
        };
        let call = read(event(
            json!({ "Authorization": "Bearer h" }),
            json!(["Bearer h"]),
            json!(ARN),
        ))
        .unwrap();
        assert_eq!(call.kind, Kind::HttpApi);
        assert_eq!(call.token.as_deref(), Some("h"));
        assert_eq!(
            (call.method.as_str(), call.path.as_str()),
            ("GET", "/v1/orders/o1")
        );
        let call = read(event(json!({}), json!(["x", "Bearer i"]), Value::Null)).unwrap();
        assert_eq!(call.token.as_deref(), Some("i"));
        // Without routeArn: the method and rawPath, less the stage.
        assert_eq!(
            (call.method.as_str(), call.path.as_str()),
            ("GET", "/v1/orders/o1")
        );
        assert_eq!(call.arn, None);
        let call = read(event(
            json!({ "authorization": "Basic x" }),
            json!(["Bearer i"]),
            json!(ARN),
        ))
        .unwrap();
        assert_eq!(call.token, None, "the header decides when it is there");
        let mut default_stage = event(json!({}), Value::Null, Value::Null);
        default_stage["rawPath"] = json!("/v1/me");
        default_stage["requestContext"]["stage"] = json!("$default");
        let call = read(default_stage).unwrap();
        assert_eq!(call.path, "/v1/me");
        assert_eq!(call.token, None);
    }

    #[test]
    fn request_events_carry_every_api_key_header_and_whether_a_bearer_is_beside_it() {
        let call = read(json!({
            "type": "REQUEST", "methodArn": ARN,
            "headers": { "X-API-Key": "pak_a" }, "requestContext": {}
        }))
        .unwrap();
        assert_eq!(call.api_keys, ["pak_a"]);
        assert!(!call.authorization_bearer);
        let call = read(json!({
            "type": "REQUEST", "methodArn": ARN, "headers": { "x-api-key": "pak_b" },
            "multiValueHeaders": { "x-api-key": ["pak_a", "pak_b"], "authorization": ["Bearer "] },
            "requestContext": {}
        }))
        .unwrap();
        assert_eq!(call.api_keys, ["pak_a", "pak_b"]);
        assert!(
            call.authorization_bearer,
            "an empty bearer is still a bearer"
        );
        let call = read(json!({
            "version": "2.0", "type": "REQUEST", "routeArn": ARN, "rawPath": "/v1/me",
            "headers": { "x-api-key": "pak_c", "authorization": "Basic x" },
            "requestContext": { "http": { "method": "GET", "path": "/v1/me" } }
        }))
        .unwrap();
        assert_eq!(call.api_keys, ["pak_c"]);
        assert!(!call.authorization_bearer, "another scheme is no bearer");
        let call = read(
            json!({ "type": "TOKEN", "authorizationToken": "Bearer pak_d", "methodArn": ARN }),
        )
        .unwrap();
        assert_eq!(call.token.as_deref(), Some("pak_d"));
        assert!(call.api_keys.is_empty());
    }

    #[test]
    fn other_events_are_not_authorizer_events() {
        for event in [
            json!({}),
            json!({ "version": "2.0", "routeKey": "$default", "rawPath": "/" }),
            json!({ "type": "REQUEST" }),
            json!({ "source": "aws.events", "detail-type": "Scheduled Event" }),
            json!("text"),
        ] {
            assert_eq!(
                read(event.clone()).unwrap_err(),
                EventError::Unrecognised,
                "{event}"
            );
        }
    }
}
