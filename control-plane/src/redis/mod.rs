//! Redis: what is live. `sessions` holds viewer sessions and counters (one Lua
//! script, so one round trip, per operation); `fanout` carries events between
//! replicas over pub/sub. Every key and channel starts with a configurable prefix, so
//! several deployments (or tests) can share one Redis.

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

/// Connects the pool; fails fast when Redis cannot be reached.
pub async fn connect(url: &str, size: u32) -> anyhow::Result<RedisPool> {
    let manager = RedisConnectionManager::new(connection_info(url)?)?;
    let pool = bb8::Pool::builder()
        .max_size(size)
        .connection_timeout(Duration::from_secs(5))
        .test_on_check_out(true)
        .build(manager)
        .await?;
    {
        let mut conn = pool.get().await?;
        let _: String = redis::cmd("PING").query_async(&mut *conn).await?;
    }
    Ok(pool)
}
