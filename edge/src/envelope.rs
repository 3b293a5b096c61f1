//! The HTTP envelope: the layers every request of every service passes through, applied by one
//! function, so the services' 404, 405, 408, 413, 431 and 503 answers (in the format each
//! service gives, see [`crate::refusal`]), security headers, client address and certificate,
//! request ids and trace spans are the same by construction. A new
//! entry point (a Lambda function, a mutual-TLS listener) wraps the same router in the same
//! envelope.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::Response;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::metrics::Metrics;
use crate::problem::with_retry_after;
use crate::refusal::{Refusal, RefusalFormat, RefusalLayer};
use crate::{
    ClientCas, ClientIdentityLayer, HeaderLimitLayer, HeaderLimits, PerClientRequestLimitLayer,
    SecurityHeadersLayer, Transport,
};

/// What every request of a service is held to.
#[derive(Debug, Clone)]
pub struct Envelope {
    /// Bodies larger than this are refused with 413 (a backstop: handlers read less).
    pub max_body_bytes: usize,
    /// A request not answered within this is answered 408.
    pub timeout: Duration,
    /// Requests in flight in the whole server; more are answered 503 at once, not queued.
    pub max_concurrent: usize,
    /// Requests in flight from one client address; more are answered 503 at once.
    pub requests_per_client: usize,
    /// Sizes of request headers; more is answered 431.
    pub headers: HeaderLimits,
    /// The server speaks TLS itself, so responses carry HSTS.
    pub hsts: bool,
    /// Proxies whose `X-Forwarded-For` names the client address, and whose RFC 9440
    /// `Client-Cert` carries the client's certificate.
    pub trusted_proxies: Arc<[IpAddr]>,
    /// The roots client certificates are verified against (see [`crate::mtls`]).
    pub client_cas: Option<ClientCas>,
    /// `Cache-Control` for responses that set none (the partner API's data is the caller's own).
    pub default_cache_control: Option<HeaderValue>,
    /// Where every request's duration (and, for services that ask, its count) is recorded; off
    /// by default.
    pub metrics: Metrics,
    /// How the refusals made before a handler answers are written; RFC 9457 problems by
    /// default.
    pub refusals: RefusalFormat,
}

impl Envelope {
    /// The envelope of a server meeting the network through `transport`.
    pub fn new(
        transport: &Transport,
        timeout: Duration,
        max_concurrent: usize,
        max_body_bytes: usize,
    ) -> Envelope {
        Envelope {
            max_body_bytes,
            timeout,
            max_concurrent,
            requests_per_client: transport.limits.requests_per_client,
            headers: transport.headers,
            hsts: transport.tls.is_some(),
            trusted_proxies: transport.trusted_proxies.clone().into(),
            client_cas: transport.client_cas.clone(),
            default_cache_control: None,
            metrics: Metrics::off(),
            refusals: RefusalFormat::default(),
        }
    }

    /// Refusals are written by `format` (see [`crate::refusal`]).
    pub fn with_refusal_format(mut self, format: RefusalFormat) -> Envelope {
        self.refusals = format;
        self
    }

    /// Requests are timed (and counted) in `metrics`; see [`crate::metrics`].
    pub fn with_metrics(mut self, metrics: Metrics) -> Envelope {
        self.metrics = metrics;
        self
    }

    /// Responses that set no `Cache-Control` get `no-store`.
    pub fn no_store_by_default(mut self) -> Envelope {
        self.default_cache_control = Some(HeaderValue::from_static("no-store"));
        self
    }

    /// `router` inside the envelope. The layers are listed from the innermost out: a request
    /// meets the last one first.
    pub fn wrap(&self, router: Router) -> Router {
        let request_id = HeaderName::from_static("x-request-id");
        let router = router
            // Bounds on every request: body size (413), total time (408) and requests in flight
            // (503, shed at once rather than queued).
            .layer(RequestBodyLimitLayer::new(self.max_body_bytes))
            .layer(TimeoutLayer::with_status_code(
                StatusCode::REQUEST_TIMEOUT,
                self.timeout,
            ))
            .layer(
                tower::ServiceBuilder::new()
                    .layer(HandleErrorLayer::new(|_: tower::BoxError| async {
                        let busy = Refusal::new(
                            StatusCode::SERVICE_UNAVAILABLE,
                            "too many requests in flight",
                        );
                        with_retry_after(busy.into_response(), Duration::from_secs(1))
                    }))
                    .load_shed()
                    // Global: `Router::layer` wraps each route, and the bound is for the server.
                    .layer(tower::limit::GlobalConcurrencyLimitLayer::new(
                        self.max_concurrent,
                    )),
            )
            // Per client address, so one flooding address cannot take every global slot (503).
            .layer(PerClientRequestLimitLayer::new(self.requests_per_client))
            // Oversized headers (431) are refused before they take a slot of their client's.
            .layer(HeaderLimitLayer::new(self.headers))
            .layer(SecurityHeadersLayer { hsts: self.hsts })
            .layer(ClientIdentityLayer::new(
                &self.trusted_proxies,
                self.client_cas.clone(),
            ))
            // Every refusal above, and axum's (404, 405, rejections), in the service's format.
            .layer(RefusalLayer::new(self.refusals.clone()));
        let router = match &self.default_cache_control {
            Some(value) => router.layer(SetResponseHeaderLayer::if_not_present(
                header::CACHE_CONTROL,
                value.clone(),
            )),
            None => router,
        };
        let router = router
            .layer(PropagateRequestIdLayer::new(request_id.clone()))
            .layer(
                TraceLayer::new_for_http()
                    .make_span_with(|request: &Request<_>| {
                        // The path only: a query string could carry anything a client pasted
                        // into it. `route` is the matched template (`/v1/orders/{id}`), the same
                        // for every id; `client_id` is recorded once a request is authenticated.
                        let id = request
                            .headers()
                            .get("x-request-id")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("");
                        let route = request
                            .extensions()
                            .get::<MatchedPath>()
                            .map_or("unmatched", MatchedPath::as_str);
                        tracing::info_span!("request", method = %request.method(),
                                            path = %request.uri().path(), route,
                                            request_id = %id, client_id = tracing::field::Empty)
                    })
                    .on_request(())
                    // A failure is logged once, by whoever knows its cause (the handler's error
                    // type); the `access` line below carries every status.
                    .on_failure(())
                    // One line per answered request (`RUST_LOG=…,access=off` silences it).
                    .on_response(
                        |response: &Response, latency: Duration, _: &tracing::Span| {
                            tracing::info!(
                                target: "access",
                                status = response.status().as_u16(),
                                duration_ms = latency.as_secs_f64() * 1000.0,
                                "answered"
                            );
                        },
                    ),
            )
            .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
            // Credentials: never shown by a layer that logs headers (`X-API-Key`: the partner
            // API's API keys).
            .layer(SetSensitiveRequestHeadersLayer::new([
                header::AUTHORIZATION,
                header::COOKIE,
                HeaderName::from_static("x-api-key"),
            ]));
        // Outermost, so a request's time includes every bound above and every refusal they make
        // (408, 413, 431, 503) is counted with its status. `Router::layer` wraps each route, so
        // the matched route template is known here.
        match self.metrics.layer() {
            Some(layer) => router.layer(layer),
            None => router,
        }
    }
}
