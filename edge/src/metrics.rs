//! Prometheus metrics of one service: its own registry (never the process-global recorder, so
//! that services sharing a process — the demo launcher, the end-to-end tests — each count only
//! their own traffic), the request-duration histogram every request adds to in the
//! [`crate::Envelope`], and the `/metrics` listener, which is never the partner-facing one.
//!
//! Label values are chosen by the services, never by a client: routes are the matched route
//! templates (`/v1/orders/{id}`), not paths; methods outside the standard ones are `other`;
//! statuses are the server's own. The number of series therefore stays bounded whatever is sent.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use arc_swap::ArcSwap;
use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use metrics::{Counter, Histogram, Key, KeyName, Label, Metadata, Recorder, SharedString, Unit};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};
use tokio::net::TcpListener;

/// The name of the request-duration histogram, the same on every service.
pub const REQUEST_DURATION: &str = "http_request_duration_seconds";

/// The `route` of a request that matched no route (a 404 from the fallback).
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// Upper bounds of the duration buckets, in seconds: from well under a millisecond (a cached
/// token check) to the 10 s request timeout.
const DURATION_BUCKETS: [f64; 16] = [
    0.0005, 0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
    10.0,
];

/// How often histogram samples are folded into their buckets when nobody scrapes: bounds the
/// memory samples take between scrapes.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// A service's metrics, or none (`Metrics::off`: no listener configured, or under AWS Lambda).
/// When off, counters are no-ops and the envelope adds no layer. Cheap to clone.
#[derive(Clone, Default)]
pub struct Metrics(Option<Arc<Registry>>);

struct Registry {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    /// The histogram (and request counter) of each (route, method, status) seen so far.
    series: RequestSeries,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("on", &self.is_on())
            .finish()
    }
}

impl Metrics {
    /// A registry whose every series carries `service="{service}"`. With `requests_total`, the
    /// envelope also counts requests by `route` and `status` under that name.
    pub fn new(service: &'static str, requests_total: Option<&'static str>) -> Metrics {
        let recorder = PrometheusBuilder::new()
            .add_global_label("service", service)
            .set_buckets_for_metric(Matcher::Full(REQUEST_DURATION.into()), &DURATION_BUCKETS)
            .expect("the bucket list is not empty")
            .build_recorder();
        recorder.describe_histogram(
            KeyName::from_const_str(REQUEST_DURATION),
            Some(Unit::Seconds),
            SharedString::const_str(
                "Time from a request's arrival in the service to its response, by matched route",
            ),
        );
        if let Some(name) = requests_total {
            recorder.describe_counter(
                KeyName::from_const_str(name),
                None,
                SharedString::const_str("Requests answered, by matched route and status"),
            );
        }
        let handle = recorder.handle();
        Metrics(Some(Arc::new(Registry {
            recorder,
            handle,
            series: RequestSeries {
                requests_total,
                known: ArcSwap::default(),
                adding: Mutex::new(()),
            },
        })))
    }

    /// No metrics: every counter is a no-op.
    pub fn off() -> Metrics {
        Metrics(None)
    }

    pub fn is_on(&self) -> bool {
        self.0.is_some()
    }

    /// The counter `name` with these labels (registered on first use). Services take the handles
    /// of their fixed label sets once, at start; a no-op when off.
    pub fn counter(&self, name: &'static str, labels: &[(&'static str, &'static str)]) -> Counter {
        match &self.0 {
            Some(registry) => registry
                .recorder
                .register_counter(&key(name, labels), &METADATA),
            None => Counter::noop(),
        }
    }

    /// Adds `# HELP` text for the counter `name`.
    pub fn describe_counter(&self, name: &'static str, help: &'static str) {
        if let Some(registry) = &self.0 {
            registry.recorder.describe_counter(
                KeyName::from_const_str(name),
                None,
                SharedString::const_str(help),
            );
        }
    }

    /// Everything recorded so far in the Prometheus text format (empty when off).
    pub fn render(&self) -> String {
        self.0
            .as_ref()
            .map(|registry| registry.handle.render())
            .unwrap_or_default()
    }

    /// The layer that times every request (the [`crate::Envelope`] adds it when metrics are on).
    pub(crate) fn layer(&self) -> Option<RequestMetricsLayer> {
        self.0
            .as_ref()
            .map(|registry| RequestMetricsLayer(registry.clone()))
    }

    /// The router of the metrics listener: `GET /metrics`, and 404 for anything else.
    pub fn router(&self) -> Router {
        let metrics = self.clone();
        Router::new()
            .route(
                "/metrics",
                axum::routing::get(move || async move { exposition(metrics.render()) })
                    .fallback(crate::problem::not_found),
            )
            .fallback(crate::problem::not_found)
    }

    /// Serves [`Metrics::router`] on `listener` (plaintext, with the same connection bounds as
    /// every other listener) until `shutdown` completes. Meanwhile folds histogram samples into
    /// their buckets every few seconds, so memory stays bounded between scrapes.
    pub async fn serve(
        &self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let upkeep = self.0.as_ref().map(|registry| {
            let handle = registry.handle.clone();
            tokio::spawn(async move {
                let mut every = tokio::time::interval(UPKEEP_INTERVAL);
                loop {
                    every.tick().await;
                    handle.run_upkeep();
                }
            })
        });
        let served = crate::serve(
            listener,
            self.router(),
            &crate::Transport::default(),
            shutdown,
        )
        .await;
        if let Some(upkeep) = upkeep {
            upkeep.abort();
        }
        served
    }
}

/// The metrics listener of a `*_METRICS_BIND` setting (named `setting` in the error), or none
/// when it is unset.
pub async fn listen(
    bind: Option<SocketAddr>,
    setting: &str,
) -> anyhow::Result<Option<TcpListener>> {
    match bind {
        Some(bind) => TcpListener::bind(bind)
            .await
            .map(Some)
            .with_context(|| format!("cannot listen on {bind} ({setting})")),
        None => Ok(None),
    }
}

/// Refuses a metrics address that is one of the service's own (`taken`, each with the name of
/// its setting): metrics are for operators, on a listener of their own. Port 0 (any free port)
/// never collides; an unspecified address (`0.0.0.0`) collides with every address on its port.
pub fn check_bind(
    metrics: SocketAddr,
    setting: &str,
    taken: &[(SocketAddr, &str)],
) -> anyhow::Result<()> {
    for (bind, name) in taken {
        let same_ip = metrics.ip() == bind.ip()
            || metrics.ip().is_unspecified()
            || bind.ip().is_unspecified();
        if metrics.port() != 0 && metrics.port() == bind.port() && same_ip {
            anyhow::bail!(
                "{setting} ({metrics}) is the address of {name} ({bind}): metrics are served on \
                 a listener of their own, never on the partner-facing one; choose another port"
            );
        }
    }
    Ok(())
}

/// The Prometheus text exposition format, version 0.0.4.
fn exposition(body: String) -> Response {
    let mut response = body.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

static METADATA: Metadata<'static> =
    Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()));

fn key(name: &'static str, labels: &[(&'static str, &'static str)]) -> Key {
    Key::from_parts(
        name,
        labels
            .iter()
            .map(|(k, v)| Label::from_static_parts(k, v))
            .collect::<Vec<_>>(),
    )
}

/// The label of a request method: the standard ones by name, anything else `other`.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::HEAD => "HEAD",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// The handles of each (route, method, status) seen, found without a lock or an allocation once
/// a combination has been seen: a snapshot map read through `ArcSwap`, replaced (copied, with
/// the new series) under a mutex the few times a new combination appears.
struct RequestSeries {
    requests_total: Option<&'static str>,
    known: ArcSwap<HashMap<Box<str>, Vec<SeriesHandles>>>,
    adding: Mutex<()>,
}

#[derive(Clone)]
struct SeriesHandles {
    method: &'static str,
    status: u16,
    duration: Histogram,
    requests: Option<Counter>,
}

impl RequestSeries {
    fn record(
        &self,
        recorder: &PrometheusRecorder,
        route: &str,
        method: &'static str,
        status: u16,
        elapsed: f64,
    ) {
        let known = self.known.load();
        let found = known.get(route).and_then(|series| {
            series
                .iter()
                .find(|s| s.method == method && s.status == status)
        });
        let record = |handles: &SeriesHandles| {
            handles.duration.record(elapsed);
            if let Some(requests) = &handles.requests {
                requests.increment(1);
            }
        };
        match found {
            Some(handles) => record(handles),
            None => {
                drop(known);
                record(&self.add(recorder, route, method, status));
            }
        }
    }

    /// Registers the series of a combination not seen before (another request may have just
    /// done so: the recorder hands both the same handles).
    fn add(
        &self,
        recorder: &PrometheusRecorder,
        route: &str,
        method: &'static str,
        status: u16,
    ) -> SeriesHandles {
        let _adding = self.adding.lock().unwrap_or_else(|p| p.into_inner());
        let route_label = SharedString::from(route.to_owned());
        let status_label = SharedString::from(status.to_string());
        let duration = recorder.register_histogram(
            &Key::from_parts(
                REQUEST_DURATION,
                vec![
                    Label::new("route", route_label.clone()),
                    Label::from_static_parts("method", method),
                    Label::new("status", status_label.clone()),
                ],
            ),
            &METADATA,
        );
        let requests = self.requests_total.map(|name| {
            recorder.register_counter(
                &Key::from_parts(
                    name,
                    vec![
                        Label::new("route", route_label),
                        Label::new("status", status_label),
                    ],
                ),
                &METADATA,
            )
        });
        let handles = SeriesHandles {
            method,
            status,
            duration,
            requests,
        };
        let mut known = HashMap::clone(&self.known.load());
        known.entry(route.into()).or_default().push(handles.clone());
        self.known.store(Arc::new(known));
        handles
    }
}

/// Times each request from its arrival in the envelope to its response, and counts it, by
/// matched route template, method and status.
#[derive(Clone)]
pub(crate) struct RequestMetricsLayer(Arc<Registry>);

impl<S> tower::Layer<S> for RequestMetricsLayer {
    type Service = RequestMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestMetrics {
            inner,
            registry: self.0.clone(),
        }
    }
}

#[derive(Clone)]
pub(crate) struct RequestMetrics<S> {
    inner: S,
    registry: Arc<Registry>,
}

impl<S> tower::Service<Request> for RequestMetrics<S>
where
    S: tower::Service<Request, Response = Response>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let started = Instant::now();
        let route = request.extensions().get::<MatchedPath>().cloned();
        let method = method_label(request.method());
        let registry = self.registry.clone();
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await?;
            let route = route.as_ref().map_or(UNMATCHED_ROUTE, MatchedPath::as_str);
            registry.series.record(
                &registry.recorder,
                route,
                method,
                response.status().as_u16(),
                started.elapsed().as_secs_f64(),
            );
            Ok(response)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_metrics_address_may_not_be_a_service_address() {
        let auth: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let taken = [(auth, "AUTH_BIND")];
        let err = check_bind(auth, "AUTH_METRICS_BIND", &taken)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("AUTH_METRICS_BIND") && err.contains("AUTH_BIND"),
            "{err}"
        );
        for overlapping in ["0.0.0.0:8080", "127.0.0.1:8080"] {
            assert!(check_bind(overlapping.parse().unwrap(), "M", &taken).is_err());
        }
        let everywhere = [("0.0.0.0:8080".parse().unwrap(), "AUTH_BIND")];
        assert!(check_bind(auth, "M", &everywhere).is_err());
        for apart in ["127.0.0.1:9090", "10.0.0.1:8080", "127.0.0.1:0"] {
            assert!(
                check_bind(apart.parse().unwrap(), "M", &taken).is_ok(),
                "{apart}"
            );
        }
        let any_port = [("127.0.0.1:0".parse().unwrap(), "AUTH_BIND")];
        assert!(check_bind("127.0.0.1:0".parse().unwrap(), "M", &any_port).is_ok());
    }

    #[test]
    fn counters_are_no_ops_when_off_and_each_registry_counts_its_own() {
        let off = Metrics::off();
        off.counter("c_total", &[("k", "v")]).increment(1);
        assert_eq!(off.render(), "");
        assert!(off.layer().is_none());
        let one = Metrics::new("one", None);
        let two = Metrics::new("two", None);
        one.counter("c_total", &[("k", "v")]).increment(2);
        one.counter("c_total", &[("k", "v")]).increment(1);
        two.counter("c_total", &[("k", "w")]).increment(5);
        let text = one.render();
        assert!(
            text.contains("c_total{service=\"one\",k=\"v\"} 3")
                || text.contains("c_total{k=\"v\",service=\"one\"} 3"),
            "{text}"
        );
        assert!(!text.contains("k=\"w\""), "{text}");
        assert!(two.render().contains("service=\"two\""));
    }

    #[test]
    fn unusual_methods_share_one_label() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::from_bytes(b"BREW").unwrap()), "other");
    }
}
