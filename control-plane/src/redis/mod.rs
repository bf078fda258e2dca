//! Redis: what is live. `sessions` holds viewer sessions and counters (one Lua
//! script, so one round trip, per operation); `fanout` carries events between
//! replicas over pub/sub; `availability` is whether Redis answers now. Every key and
//! channel starts with a configurable prefix, so several deployments (or tests) can
//! share one Redis. Redis is never needed to start or to decide a publish: the pool
//! connects lazily and calls fail fast with [`unavailable`] while it is away.

pub mod availability;
pub mod fanout;
pub mod sessions;

use std::time::Duration;

use bb8_redis::RedisConnectionManager;
use redis::{ConnectionInfo, IntoConnectionInfo, RedisResult, io::tcp::TcpSettings};

/// Pool of multiplexed Redis connections.
pub type RedisPool = bb8::Pool<RedisConnectionManager>;

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
}

/// Returns the connection settings of `url` with TCP_NODELAY on: redis-rs leaves it
/// off, and a command written in pieces then waits for Redis's delayed ACK (40 ms).
pub fn connection_info(url: &str) -> RedisResult<ConnectionInfo> {
    Ok(url
        .into_connection_info()?
        .set_tcp_settings(TcpSettings::default().set_nodelay(true)))
}

/// Builds the pool without connecting: connections are made on first use, so the
/// control plane starts (and decides publishes) while Redis is away. Fails only on a
/// malformed URL.
pub fn pool(url: &str, size: u32) -> anyhow::Result<RedisPool> {
    let manager = RedisConnectionManager::new(connection_info(url)?)?;
    Ok(bb8::Pool::builder()
        .max_size(size)
        .min_idle(Some(0))
        .connection_timeout(Duration::from_secs(2))
        .test_on_check_out(true)
        .build_unchecked(manager))
}

/// Sends one PING through the pool within `timeout`.
pub async fn ping(pool: &RedisPool, timeout: Duration) -> RedisResult<()> {
    let attempt = async {
        let mut conn = pool.get().await.map_err(pool_error)?;
        redis::cmd("PING").query_async::<String>(&mut *conn).await?;
        Ok(())
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .unwrap_or_else(|_| Err(unavailable("PING timed out")))
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
