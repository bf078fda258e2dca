//! Edge metrics on `/metrics`: open WebSockets, refusals by reason, and HTTP
//! rate/errors/duration per route template.

use std::sync::{
    Arc,
    atomic::{AtomicI64, Ordering},
};

use nova_runtime::metrics::{Metrics, MetricsError, Red};
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
    /// `nova_streaming_edge_refusals_total{reason}`.
    refusals: Counter<u64>,
}

/// Why the edge refused a request before serving it (the `reason` label; a fixed
/// set).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A client's mutations went over `NOVA_MUTATIONS_PER_MINUTE` (429).
    MutationRate,
    /// A client's REST GETs went over `NOVA_READS_PER_MINUTE` (429).
    ReadRate,
    /// A client's WebSocket opens went over `NOVA_WS_OPENS_PER_MINUTE` (429).
    WsOpenRate,
    /// A client held `NOVA_WS_MAX_SOCKETS_PER_IP` sockets already (429).
    WsClientSockets,
    /// The edge held `NOVA_WS_MAX_SOCKETS` sockets already (503).
    WsFull,
    /// The WebSocket's `Origin` is not in `NOVA_WS_ALLOWED_ORIGINS` (403).
    WsOrigin,
}

impl Refusal {
    /// Every refusal, for zero-initialising the series.
    pub const ALL: [Self; 6] = [
        Self::MutationRate,
        Self::ReadRate,
        Self::WsOpenRate,
        Self::WsClientSockets,
        Self::WsFull,
        Self::WsOrigin,
    ];

    /// Returns the `reason` label.
    pub fn label(self) -> &'static str {
        match self {
            Self::MutationRate => "mutation_rate",
            Self::ReadRate => "read_rate",
            Self::WsOpenRate => "ws_open_rate",
            Self::WsClientSockets => "ws_client_sockets",
            Self::WsFull => "ws_full",
            Self::WsOrigin => "ws_origin",
        }
    }
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
    pub fn new() -> Result<Self, MetricsError> {
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
        let refusals = metrics
            .meter()
            .u64_counter("nova_streaming_edge_refusals")
            .with_description("Requests the edge refused before serving them, by reason")
            .build();
        for reason in Refusal::ALL {
            refusals.add(0, &[KeyValue::new("reason", reason.label())]);
        }
        Ok(Self {
            metrics,
            sockets,
            open: Arc::default(),
            http,
            failures,
            refusals,
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

    /// Counts a refused request.
    pub fn refused(&self, reason: Refusal) {
        self.refusals
            .add(1, &[KeyValue::new("reason", reason.label())]);
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
