//! Redis: what is live. `connection` is which Redis (one primary or a Redis
//! Cluster, chosen by URL; `cluster` holds the cluster specifics); `sessions` holds
//! viewer sessions and counters (one Lua script from `scripts`, so one round trip,
//! per operation; `figures` are what it reads back); `fanout` carries events between
//! replicas over pub/sub; `availability` is whether Redis answers now. Every key and channel starts with a
//! configurable prefix, so several deployments (or tests) can share one Redis, and
//! every key of a stream carries the stream's hash tag (`{<stream id>}`), so on a
//! cluster they share one slot and each script touches one slot only. Redis is never
//! needed to start or to decide a publish: connections are made lazily and calls fail
//! fast with [`unavailable`] while it is away.

pub mod availability;
pub mod cluster;
pub mod connection;
pub mod fanout;
pub mod figures;
pub mod pool;
mod scripts;
pub mod sessions;

use std::time::Duration;

pub use connection::{Conn, Redis, Target};
use redis::{ConnectionInfo, IntoConnectionInfo, RedisResult, io::tcp::TcpSettings};

/// Pool of multiplexed connections to one Redis primary.
pub type RedisPool = bb8::Pool<pool::Manager>;

/// Key and channel names under one prefix.
#[derive(Debug, Clone)]
pub struct Keys {
    /// Prefix of every key, e.g. `nova`.
    prefix: String,
}

impl Keys {
    /// Names things under `prefix`.
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
        }
    }

    /// Returns the prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Channel carrying lifecycle events (JSON [`fanout::Wire`]).
    pub fn events_channel(&self) -> String {
        format!("{}:events", self.prefix)
    }

    /// Channel carrying viewer-count changes (JSON [`fanout::Wire`]).
    pub fn counts_channel(&self) -> String {
        format!("{}:counts", self.prefix)
    }

    /// Key `what` of a stream: `<prefix>:{<stream id>}:<what>`; the hash tag puts
    /// every key of one stream in one cluster slot. The Lua scripts build the same
    /// names (`scripts::COMMON`).
    fn stream_key(&self, stream_id: &str, what: &str) -> String {
        format!("{}:{{{stream_id}}}:{what}", self.prefix)
    }

    /// Sorted set of a stream's live sessions, scored by expiry.
    pub fn live(&self, stream_id: &str) -> String {
        self.stream_key(stream_id, "live")
    }

    /// A stream's peak count.
    pub fn peak(&self, stream_id: &str) -> String {
        self.stream_key(stream_id, "peak")
    }

    /// Sorted set of the streams that may hold sessions, scored by the latest expiry
    /// any of their sessions was given (the sweeper's work list). Kept outside the
    /// scripts, since on a cluster it lives in a slot of its own.
    pub fn index(&self) -> String {
        format!("{}:live-index", self.prefix)
    }
}

/// Returns the TCP settings of every Redis connection: TCP_NODELAY on, since
/// redis-rs leaves it off, and a command written in pieces then waits for Redis's
/// delayed ACK (40 ms).
pub fn tcp_settings() -> TcpSettings {
    TcpSettings::default().set_nodelay(true)
}

/// Returns the connection settings of `url` with [`tcp_settings`].
pub fn connection_info(url: &str) -> RedisResult<ConnectionInfo> {
    Ok(url.into_connection_info()?.set_tcp_settings(tcp_settings()))
}

/// Builds a pool for one primary without connecting: connections are made on first
/// use, so the control plane starts (and decides publishes) while Redis is away.
pub fn pool(info: ConnectionInfo, size: u32) -> anyhow::Result<RedisPool> {
    let manager = pool::Manager::new(info)?;
    Ok(bb8::Pool::builder()
        .max_size(size)
        .min_idle(Some(0))
        .connection_timeout(Duration::from_secs(2))
        // Tests only connections that may be stale (see `pool`), not every check-out.
        .test_on_check_out(true)
        .build_unchecked(manager))
}

/// Returns the error of a call refused because Redis is away.
pub fn unavailable(detail: &'static str) -> redis::RedisError {
    redis::RedisError::from((redis::ErrorKind::Io, "Redis unavailable", detail.to_owned()))
}

/// Turns a pool error into a Redis error.
pub fn pool_error(err: bb8::RunError<redis::RedisError>) -> redis::RedisError {
    match err {
        bb8::RunError::User(e) => e,
        bb8::RunError::TimedOut => unavailable("timed out waiting for a Redis connection"),
    }
}
