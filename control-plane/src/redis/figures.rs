//! The viewer figures of a stream as [`super::sessions`] reads them from Redis and
//! seeds them back from PostgreSQL.

/// Viewer figures of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Figures {
    /// Live sessions.
    pub count: i64,
    /// Highest live count seen.
    pub peak: i64,
    /// Approximate distinct viewers.
    pub uniques: i64,
    /// Accumulated watch time, milliseconds (updated at heartbeats and leaves).
    pub watch_ms: i64,
}

/// A stream's viewer figures as last persisted in PostgreSQL, to seed Redis with
/// after it lost them (restart, flush).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Seed {
    /// Persisted peak.
    pub peak: i64,
    /// Persisted watch time, milliseconds.
    pub watch_ms: i64,
    /// Persisted HyperLogLog of viewers (Redis's own encoding); empty if none.
    pub uniques_hll: Vec<u8>,
}

/// A stream's figures together with its HyperLogLog, for persisting.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// The figures.
    pub figures: Figures,
    /// The HyperLogLog of viewers (Redis's own encoding); empty if none.
    pub uniques_hll: Vec<u8>,
}
