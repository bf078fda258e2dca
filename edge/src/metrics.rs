//! Edge metrics on `/metrics`: open WebSockets and HTTP rate/errors/duration per
//! route template.

use std::sync::{
    Arc,
    atomic::{AtomicI64, Ordering},
};

use nova_runtime::metrics::{Metrics, Red};
use opentelemetry::{
    KeyValue,
    metrics::{Counter, UpDownCounter},
};

/// The edge's instruments.
#[derive(Clone)]
pub struct EdgeMetrics {
    /// The registry behind `/metrics`.
    metrics: Metrics,
    /// `nova_streaming_websocket_connections`.
    sockets: UpDownCounter<i64>,
    /// The same figure, readable in-process.
    open: Arc<AtomicI64>,
    /// HTTP RED.
    http: Red,
    /// `nova_streaming_websocket_failures_total{reason}`.
    failures: Counter<u64>,
}

/// Why a WebSocket failed (the `reason` label; a fixed set).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketFailure {
    /// The control plane could not be reached (close 1011).
    Unavailable,
    /// The client read too slowly (close 4408).
    TooSlow,
    /// The client went silent (no pong within the idle limit).
    Idle,
    /// Sending to the client failed (connection reset).
    SendFailed,
    /// The edge held its maximum of sockets (`NOVA_WS_MAX_SOCKETS`; answered 503).
    Full,
}

impl SocketFailure {
    fn label(self) -> &'static str {
        match self {
            Self::Unavailable => "unavailable",
            Self::TooSlow => "too_slow",
            Self::Idle => "idle",
            Self::SendFailed => "send_failed",
            Self::Full => "full",
        }
    }
}

impl EdgeMetrics {
    /// Creates the instruments.
    pub fn new() -> Result<Self, String> {
        let metrics = Metrics::new("edge")?;
        let sockets = metrics
            .meter()
            .i64_up_down_counter("nova_streaming_websocket_connections")
            .with_description("Open viewer WebSocket connections on this edge")
            .build();
        sockets.add(0, &[]);
        let http = metrics.red("http");
        let failures = metrics
            .meter()
            .u64_counter("nova_streaming_websocket_failures")
            .with_description(
                "WebSocket connections that failed or were dropped by the server, by reason",
            )
            .build();
        for reason in [
            SocketFailure::Unavailable,
            SocketFailure::TooSlow,
            SocketFailure::Idle,
            SocketFailure::SendFailed,
            SocketFailure::Full,
        ] {
            failures.add(0, &[KeyValue::new("reason", reason.label())]);
        }
        Ok(Self {
            metrics,
            sockets,
            open: Arc::default(),
            http,
            failures,
        })
    }

    /// Records a socket that opened.
    pub fn socket_opened(&self) {
        self.sockets.add(1, &[]);
        self.open.fetch_add(1, Ordering::Relaxed);
    }

    /// Records a socket that closed.
    pub fn socket_closed(&self) {
        self.sockets.add(-1, &[]);
        self.open.fetch_sub(1, Ordering::Relaxed);
    }

    /// Counts a failed socket.
    pub fn socket_failed(&self, failure: SocketFailure) {
        self.failures
            .add(1, &[KeyValue::new("reason", failure.label())]);
    }

    /// Returns the open sockets.
    pub fn sockets(&self) -> i64 {
        self.open.load(Ordering::Relaxed)
    }

    /// Returns the HTTP RED instruments.
    pub fn http(&self) -> Red {
        self.http.clone()
    }

    /// Returns the registry.
    pub fn registry(&self) -> &Metrics {
        &self.metrics
    }
}
