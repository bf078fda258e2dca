//! Edge metrics on `/metrics`: open WebSockets and HTTP rate/errors/duration per
//! route template.

use std::sync::{
    Arc,
    atomic::{AtomicI64, Ordering},
};

use nova_runtime::metrics::{Metrics, Red};
use opentelemetry::metrics::UpDownCounter;

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
        Ok(Self {
            metrics,
            sockets,
            open: Arc::default(),
            http,
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
