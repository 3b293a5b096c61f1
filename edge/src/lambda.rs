//! AWS Lambda as an entry point: a service's router, in its envelope, answering Lambda
//! invocations instead of connections. The AWS runtime crates (`lambda_runtime`, `lambda_http`)
//! speak the Runtime API and translate API Gateway (HTTP API payload 2.0, REST API payload 1.0),
//! Application Load Balancer and function URL events to and from HTTP; this module adds only what
//! they leave to us:
//!
//! - the REST or HTTP API stage is not part of the route (`/prod/v1/me` is `/v1/me`), without the
//!   operator setting `AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH`;
//! - the client address comes from the event (API Gateway's `sourceIp`, the load balancer's
//!   `X-Forwarded-For`), as [`crate::ClientIp`], so per-address limits work as on a server;
//! - the client certificate of API Gateway's mutual TLS comes from the event too (HTTP API:
//!   `requestContext.authentication.clientCert.clientCertPem`; REST API:
//!   `requestContext.identity.clientCert.clientCertPem`), and reaches the envelope as a TLS
//!   listener's would, to become a [`crate::ClientCertificate`]; `Client-Cert` fields a client
//!   sends are not believed here;
//! - events that are not HTTP requests (an EventBridge schedule) go to a handler of their own.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;

use axum::Router;
use lambda_http::request::{LambdaRequest, RequestContext};
use lambda_http::{Adapter, LambdaEvent, RequestExt};
use rustls::pki_types::pem::PemObject;
use serde_json::Value;
use tower::{Service, ServiceExt};

use crate::ClientIp;
use crate::mtls::{MAX_CHAIN, PeerCertificates};

/// Whether this process was started by Lambda (or an emulator of its Runtime API).
pub fn is_lambda() -> bool {
    std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some()
}

/// Logs, once at start, that limits are per instance: on Lambda, instances come and go with load,
/// each with fresh counters, so without Redis neither the rate limit nor the lockouts mean much.
pub fn warn_limits_per_instance(variable: &str) {
    tracing::warn!(
        "{variable} is not set: under AWS Lambda the rate limits and lockouts are per instance, \
         and instances come and go with load; set {variable} to share them through Redis"
    );
}

/// What a function does with an event that is not an HTTP request.
pub type EventHandler =
    Box<dyn Fn(Value) -> Pin<Box<dyn Future<Output = anyhow::Result<Value>> + Send>> + Send + Sync>;

/// Whether `event` is an EventBridge scheduled event.
pub fn is_scheduled_event(event: &Value) -> bool {
    event["source"] == "aws.events" && event["detail-type"] == "Scheduled Event"
}

/// Answers Lambda invocations with `router` until the runtime stops. HTTP events go to the
/// router; any other event goes to `other` when given, and is an error otherwise.
pub async fn serve(router: Router, other: Option<EventHandler>) -> anyhow::Result<()> {
    let other = Arc::new(other);
    let handler = lambda_http::service_fn(move |event: LambdaEvent<Value>| {
        let router = router.clone();
        let other = other.clone();
        async move { handle(router, other.as_ref().as_ref(), event).await }
    });
    lambda_runtime::run(handler)
        .await
        .map_err(|err| anyhow::anyhow!("the Lambda runtime stopped: {err}"))
}

async fn handle(
    router: Router,
    other: Option<&EventHandler>,
    event: LambdaEvent<Value>,
) -> Result<Value, lambda_http::Error> {
    let LambdaEvent { payload, context } = event;
    let request = match serde_json::from_value::<LambdaRequest>(payload.clone()) {
        Ok(request) => request,
        Err(_) => {
            return match other {
                Some(handler) => Ok(handler(payload).await?),
                None => Err("this function answers HTTP events only".into()),
            };
        }
    };
    let certificates = client_certificates(&request, &payload);
    let service = tower::service_fn(move |request: lambda_http::Request| {
        let router = router.clone();
        let certificates = certificates.clone();
        async move {
            let mut request = prepare(request);
            if let Some(certificates) = certificates {
                request.extensions_mut().insert(certificates);
            }
            router.oneshot(request.map(axum::body::Body::new)).await
        }
    });
    let mut adapter = Adapter::from(service);
    let response = adapter
        .ready()
        .await?
        .call(LambdaEvent::new(request, context))
        .await?;
    Ok(serde_json::to_value(response)?)
}

/// The chain API Gateway's mutual TLS reports in the event (it verified the chain against its
/// truststore and the client's possession of the key). lambda_http's types carry the HTTP API's
/// field but not the REST API's, so both are read from the event as received.
fn client_certificates(request: &LambdaRequest, payload: &Value) -> Option<PeerCertificates> {
    let pointer = match request {
        LambdaRequest::ApiGatewayV2(_) => "/requestContext/authentication/clientCert/clientCertPem",
        LambdaRequest::ApiGatewayV1(_) => "/requestContext/identity/clientCert/clientCertPem",
        _ => return None,
    };
    let pem = payload.pointer(pointer)?.as_str()?;
    let chain = rustls::pki_types::CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>();
    match chain {
        Ok(chain) if !chain.is_empty() && chain.len() <= MAX_CHAIN => {
            Some(PeerCertificates::new(chain))
        }
        Ok(chain) => {
            tracing::debug!(
                certificates = chain.len(),
                "ignoring the event's client certificate"
            );
            None
        }
        Err(error) => {
            tracing::debug!(%error, "ignoring the event's client certificate: malformed PEM");
            None
        }
    }
}

/// Takes the stage out of the path and puts the event's client address where the envelope and
/// the handlers look for it.
fn prepare(mut request: lambda_http::Request) -> lambda_http::Request {
    let context = request.request_context_ref().cloned();
    if let Some(ip) = context.as_ref().and_then(|c| client_ip(c, &request)) {
        request.extensions_mut().insert(ClientIp(ip));
    }
    if let Some(stage) = context.as_ref().and_then(stage_of) {
        let path = request.uri().path();
        if let Some(rest) = strip_stage(path, &stage) {
            let rest = if rest.is_empty() { "/" } else { rest };
            let path_and_query = match request.uri().query() {
                Some(query) => format!("{rest}?{query}"),
                None => rest.to_owned(),
            };
            let mut parts = request.uri().clone().into_parts();
            if let Ok(pq) = path_and_query.parse() {
                parts.path_and_query = Some(pq);
                if let Ok(uri) = axum::http::Uri::from_parts(parts) {
                    *request.uri_mut() = uri;
                }
            }
        }
    }
    request
}

/// The stage lambda_http put in front of the path: API Gateway's stage unless it is `$default`
/// or the operator asked lambda_http to leave it out.
fn stage_of(context: &RequestContext) -> Option<String> {
    if std::env::var_os("AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH").is_some() {
        return None;
    }
    let stage = match context {
        RequestContext::ApiGatewayV1(c) => c.stage.clone(),
        RequestContext::ApiGatewayV2(c) => c.stage.clone(),
        _ => None,
    }?;
    (stage != "$default" && !stage.is_empty()).then_some(stage)
}

/// `path` without its leading `/{stage}` segment, when it has one.
pub fn strip_stage<'a>(path: &'a str, stage: &str) -> Option<&'a str> {
    let rest = path.strip_prefix('/')?.strip_prefix(stage)?;
    (rest.is_empty() || rest.starts_with('/')).then_some(rest)
}

/// The client's address as the event reports it.
fn client_ip(context: &RequestContext, request: &lambda_http::Request) -> Option<IpAddr> {
    match context {
        RequestContext::ApiGatewayV2(c) => c.http.source_ip.as_deref()?.parse().ok(),
        RequestContext::ApiGatewayV1(c) => c.identity.source_ip.as_deref()?.parse().ok(),
        // The load balancer appends the address it saw to X-Forwarded-For: the last entry.
        RequestContext::Alb(_) => request
            .headers()
            .get_all("x-forwarded-for")
            .iter()
            .next_back()?
            .to_str()
            .ok()?
            .rsplit(',')
            .next()?
            .trim()
            .parse()
            .ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Extension;
    use axum::routing::get;
    use serde_json::json;
    use test_support::lambda::events::{HttpAnswer, HttpRequest};

    use crate::{ClientCertificate, Envelope, Transport};

    /// A router in the envelope that says which certificate its request came with.
    fn whoami() -> Router {
        let router = Router::new().route(
            "/whoami",
            get(|cert: Option<Extension<ClientCertificate>>| async move {
                cert.map_or("none".to_owned(), |Extension(c)| c.x5t_s256().to_owned())
            }),
        );
        Envelope::new(
            &Transport::default(),
            std::time::Duration::from_secs(5),
            8,
            1024,
        )
        .wrap(router)
    }

    async fn invoke(event: Value) -> String {
        let response = handle(
            whoami(),
            None,
            LambdaEvent::new(event, lambda_runtime::Context::default()),
        )
        .await
        .unwrap();
        let answer = HttpAnswer::from_response(&response);
        assert_eq!(answer.status, 200, "{response}");
        String::from_utf8(answer.body).unwrap()
    }

    /// What API Gateway reports of a client certificate under mutual TLS.
    fn client_cert(pem: &str) -> Value {
        json!({
            "clientCertPem": pem,
            "subjectDN": "CN=acme-client",
            "issuerDN": "CN=acme-client",
            "serialNumber": "01",
            "validity": { "notBefore": "May 28 12:30:02 2019 GMT", "notAfter": "Aug  5 09:36:04 2021 GMT" }
        })
    }

    #[tokio::test]
    async fn api_gateway_client_certificates_reach_the_envelope() {
        let certified =
            rcgen::generate_simple_self_signed(vec!["acme.example".to_owned()]).unwrap();
        let pem = certified.cert.pem();
        let x5t = crate::certificates_from_pem(&pem).unwrap()[0]
            .x5t_s256
            .clone();

        let mut http_api = HttpRequest::get("/whoami").http_api();
        http_api["requestContext"]["authentication"] = json!({ "clientCert": client_cert(&pem) });
        assert_eq!(invoke(http_api).await, x5t);

        let mut rest_api = HttpRequest::get("/whoami").rest_api();
        rest_api["requestContext"]["identity"]["clientCert"] = client_cert(&pem);
        assert_eq!(invoke(rest_api).await, x5t);

        let mut malformed = HttpRequest::get("/whoami").http_api();
        malformed["requestContext"]["authentication"] = json!({ "clientCert": client_cert("-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n") });
        assert_eq!(invoke(malformed).await, "none");
    }

    #[tokio::test]
    async fn a_client_cert_field_sent_through_api_gateway_is_not_believed() {
        let certified =
            rcgen::generate_simple_self_signed(vec!["acme.example".to_owned()]).unwrap();
        let field = format!(
            ":{}:",
            base64::Engine::encode(
                &base64::engine::general_purpose::STANDARD,
                certified.cert.der()
            )
        );
        let event = HttpRequest::get("/whoami")
            .header("client-cert", &field)
            .http_api();
        assert_eq!(invoke(event).await, "none");
        let event = HttpRequest::get("/whoami")
            .header("client-cert", &field)
            .rest_api();
        assert_eq!(invoke(event).await, "none");
    }

    #[test]
    fn only_a_whole_leading_stage_segment_is_taken_out() {
        assert_eq!(strip_stage("/prod/v1/me", "prod"), Some("/v1/me"));
        assert_eq!(strip_stage("/prod", "prod"), Some(""));
        assert_eq!(strip_stage("/production/v1", "prod"), None);
        assert_eq!(strip_stage("/v1/me", "prod"), None);
        assert_eq!(strip_stage("/v1/v1/me", "v1"), Some("/v1/me"));
    }
}
