//! Prometheus metrics through OpenTelemetry: one registry and meter per service
//! instance (no globals, so tests can run several in one process), the text
//! exposition for `/metrics`, and the request-rate/errors/duration instruments every
//! tier records.

use std::time::Duration;

use opentelemetry::{
    KeyValue,
    metrics::{Counter, Histogram, Meter, MeterProvider as _},
};
use opentelemetry_sdk::metrics::SdkMeterProvider;
use prometheus::{Encoder, TextEncoder};

/// Bucket boundaries for request and callback durations, in seconds.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The metrics of one service instance.
#[derive(Clone)]
pub struct Metrics {
    /// Where OpenTelemetry exports to.
    registry: prometheus::Registry,
    /// Keeps the pipeline alive.
    provider: SdkMeterProvider,
    /// Creates instruments.
    meter: Meter,
}

/// What went wrong setting up metrics.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// The OpenTelemetry Prometheus exporter refused its set-up.
    #[error("metrics exporter: {0}")]
    Exporter(String),
    /// A `NOVA_HTTP_*` limit of the metrics listener did not parse.
    #[error(transparent)]
    Limits(#[from] crate::http::HttpError),
    /// The metrics address could not be bound.
    #[error("cannot listen on {addr} ({var}): {source}")]
    Listen {
        /// The address.
        addr: std::net::SocketAddr,
        /// The variable that chose it.
        var: String,
        /// Why.
        source: std::io::Error,
    },
}

impl Metrics {
    /// Builds the pipeline for `service` (e.g. `control-plane`).
    pub fn new(service: &'static str) -> Result<Self, MetricsError> {
        let registry = prometheus::Registry::new();
        let exporter = opentelemetry_prometheus::exporter()
            .with_registry(registry.clone())
            .without_target_info()
            .scope_info_enabled(false)
            .build()
            .map_err(|e| MetricsError::Exporter(e.to_string()))?;
        let provider = SdkMeterProvider::builder().with_reader(exporter).build();
        let meter = provider.meter(service);
        Ok(Self {
            registry,
            provider,
            meter,
        })
    }

    /// Returns the meter for creating instruments.
    pub fn meter(&self) -> &Meter {
        &self.meter
    }

    /// Renders every metric in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        if let Err(err) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing_fallback(&err.to_string());
        }
        String::from_utf8(out).unwrap_or_default()
    }

    /// Flushes and stops the pipeline.
    pub fn shutdown(&self) {
        let _ = self.provider.shutdown();
    }

    /// Builds the RED instruments of one protocol (`grpc` or `http`).
    pub fn red(&self, protocol: &'static str) -> Red {
        Red {
            requests: self
                .meter
                .u64_counter(format!("nova_streaming_{protocol}_server_requests"))
                .with_description(format!("{protocol} requests handled, by route and outcome"))
                .build(),
            duration: self
                .meter
                .f64_histogram(format!("nova_streaming_{protocol}_server_duration"))
                .with_unit("s")
                .with_description(format!(
                    "{protocol} request duration until the response starts"
                ))
                .with_boundaries(LATENCY_BUCKETS.to_vec())
                .build(),
        }
    }
}

fn tracing_fallback(message: &str) {
    // The runtime crate does not depend on tracing; print once to stderr.
    #[allow(clippy::print_stderr)]
    {
        eprintln!("metrics encoding failed: {message}");
    }
}

/// Rate, errors and duration of requests.
#[derive(Clone)]
pub struct Red {
    /// `…_requests_total{route, method, status}` (HTTP) or `{method, code}` (gRPC).
    requests: Counter<u64>,
    /// `…_duration_seconds{route, method}` (HTTP) or `{method}` (gRPC).
    duration: Histogram<f64>,
}

impl Red {
    /// Records one HTTP request to `route` (a template, never a raw path) with
    /// `method` that answered `status` after `elapsed`.
    pub fn record_http(&self, route: &str, method: &'static str, status: &str, elapsed: Duration) {
        let labels = [
            KeyValue::new("route", route.to_owned()),
            KeyValue::new("method", method),
        ];
        self.duration.record(elapsed.as_secs_f64(), &labels);
        let [route, method] = labels;
        self.requests.add(
            1,
            &[route, method, KeyValue::new("status", status.to_owned())],
        );
    }

    /// Records one gRPC call of `method` (`/package.Service/Method`) that ended with
    /// `code` after `elapsed`.
    pub fn record_grpc(&self, method: &str, code: &'static str, elapsed: Duration) {
        let method = KeyValue::new("method", method.to_owned());
        self.duration
            .record(elapsed.as_secs_f64(), std::slice::from_ref(&method));
        self.requests.add(1, &[method, KeyValue::new("code", code)]);
    }
}

/// Axum middleware recording [`Red`] for every request, labelled by route template
/// (`/api/v1/streams/{id}`, never the raw path), method and status.
pub async fn track_http(
    axum::extract::State(red): axum::extract::State<Red>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method: &'static str = match request.method().as_str() {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        _ => "OTHER",
    };
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    red.record_http(
        &route,
        method,
        response.status().as_str(),
        started.elapsed(),
    );
    response
}

/// Axum handler body for `GET /metrics`.
pub fn exposition(metrics: &Metrics) -> axum::response::Response {
    use axum::response::IntoResponse;
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        metrics.render(),
    )
        .into_response()
}

/// Serves `GET /metrics` of `metrics` alone on `addr` until `stop`, with the
/// connection limits of `NOVA_HTTP_HEADER_TIMEOUT` / `NOVA_HTTP_IDLE_TIMEOUT` read
/// from the environment; returns the bound address. `var` names the setting in the
/// error when the address is taken.
pub async fn serve(
    metrics: Metrics,
    addr: std::net::SocketAddr,
    var: &str,
    stop: crate::shutdown::Signal,
) -> Result<std::net::SocketAddr, MetricsError> {
    let limits = crate::http::HttpLimits::from_env()?;
    serve_with_limits(metrics, addr, var, stop, limits).await
}

/// Like [`serve`], with explicit connection limits.
pub async fn serve_with_limits(
    metrics: Metrics,
    addr: std::net::SocketAddr,
    var: &str,
    stop: crate::shutdown::Signal,
    limits: crate::http::HttpLimits,
) -> Result<std::net::SocketAddr, MetricsError> {
    let listen = |source| MetricsError::Listen {
        addr,
        var: var.to_owned(),
        source,
    };
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(listen)?;
    let bound = listener.local_addr().map_err(listen)?;
    let registry = metrics.clone();
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let metrics = metrics.clone();
            async move { exposition(&metrics) }
        }),
    );
    tokio::spawn(async move {
        crate::http::serve(listener, app, stop.wait(), limits, &registry).await;
    });
    Ok(bound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_get_units_and_totals() {
        let metrics = Metrics::new("test").unwrap();
        metrics
            .red("http")
            .record_http("/x/{id}", "GET", "200", Duration::from_millis(3));
        let text = metrics.render();
        assert!(text.contains("nova_streaming_http_server_requests_total{method=\"GET\",route=\"/x/{id}\",status=\"200\"} 1"), "{text}");
        assert!(text.contains("nova_streaming_http_server_duration_seconds_bucket{method=\"GET\",route=\"/x/{id}\",le=\"0.005\"} 1"), "{text}");
        assert!(!text.contains("otel_scope"), "{text}");
    }
}
