//! Edge figures: open WebSockets (exported on /metrics by the observability work).

use std::sync::{
    Arc,
    atomic::{AtomicI64, Ordering},
};

/// Counters of this edge.
#[derive(Clone, Default)]
pub struct EdgeMetrics {
    /// Open WebSocket connections.
    sockets: Arc<AtomicI64>,
}

impl EdgeMetrics {
    /// Records a socket that opened.
    pub fn socket_opened(&self) {
        self.sockets.fetch_add(1, Ordering::Relaxed);
    }

    /// Records a socket that closed.
    pub fn socket_closed(&self) {
        self.sockets.fetch_sub(1, Ordering::Relaxed);
    }

    /// Returns the open sockets.
    pub fn sockets(&self) -> i64 {
        self.sockets.load(Ordering::Relaxed)
    }
}
