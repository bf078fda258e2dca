//! Which Redis the control plane talks to, chosen by `NOVA_REDIS_URL`: one primary
//! (`redis://`, `rediss://`) through a bb8 pool of multiplexed connections shared
//! by the calls in flight (see [`super::pool`]), or a Redis Cluster
//! (`redis+cluster://`, `rediss+cluster://`) through one multiplexed cluster
//! connection that routes each command to the node owning its key's slot.
//! [`Redis::get`] hands out a [`Conn`] that is a [`ConnectionLike`] either way, so
//! scripts, pipelines and commands do not care which one they run on.

use std::time::Duration;

use redis::{
    Cmd, ConnectionInfo, Pipeline, RedisFuture, RedisResult, Value, aio::ConnectionLike,
    cluster_async::ClusterConnection,
};

use super::{RedisPool, cluster};

/// Where Redis is, as parsed from `NOVA_REDIS_URL` (holds credentials: never log it).
#[derive(Clone)]
pub enum Target {
    /// One primary.
    Single(Box<ConnectionInfo>),
    /// A cluster, reached first through these seed nodes.
    Cluster(Vec<ConnectionInfo>),
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Single(_) => f.write_str("Target::Single"),
            Self::Cluster(seeds) => write!(f, "Target::Cluster({} seeds)", seeds.len()),
        }
    }
}

impl Target {
    /// Parses a Redis URL; the error never echoes it.
    pub fn parse(url: &str) -> anyhow::Result<Self> {
        match cluster::seeds(url) {
            Some(seeds) => Ok(Self::Cluster(seeds?)),
            None => Ok(Self::Single(Box::new(super::connection_info(url)?))),
        }
    }

    /// Returns true for a cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(self, Self::Cluster(_))
    }
}

/// Connections to Redis: a pool for one primary, a shared cluster connection for a
/// cluster. Cheap to clone; connects lazily, so Redis is never needed to start.
#[derive(Clone)]
pub enum Redis {
    /// One primary.
    Single(RedisPool),
    /// A cluster.
    Cluster(cluster::Cluster),
}

impl Redis {
    /// Prepares connections to `target` without connecting; a pool of `size` for one
    /// primary. Fails only on a configuration the redis crate refuses.
    pub fn new(target: &Target, size: u32) -> anyhow::Result<Self> {
        Ok(match target {
            Target::Single(info) => Self::Single(super::pool((**info).clone(), size)?),
            Target::Cluster(seeds) => Self::Cluster(cluster::Cluster::new(seeds)?),
        })
    }

    /// Returns true for a cluster: calls touching several streams are then split per
    /// stream, since a script may only touch keys of one slot.
    pub fn is_cluster(&self) -> bool {
        matches!(self, Self::Cluster(_))
    }

    /// Returns a connection.
    pub async fn get(&self) -> RedisResult<Conn> {
        match self {
            Self::Single(pool) => {
                let pooled = pool.get().await.map_err(super::pool_error)?;
                Ok(Conn::Single(pooled.share()))
            }
            Self::Cluster(cluster) => Ok(Conn::Cluster(cluster.get().await?)),
        }
    }

    /// Sends one PING (to every primary of a cluster) within `timeout`. On a cluster,
    /// a failure drops the shared connection so the next call starts from a fresh slot
    /// map: after a failover that is what finds the promoted replica.
    pub async fn ping(&self, timeout: Duration) -> RedisResult<()> {
        let attempt = async {
            let mut conn = self.get().await?;
            redis::cmd("PING").query_async::<()>(&mut conn).await
        };
        let result = tokio::time::timeout(timeout, attempt)
            .await
            .unwrap_or_else(|_| Err(super::unavailable("PING timed out")));
        if result.is_err()
            && let Self::Cluster(cluster) = self
        {
            cluster.reset().await;
        }
        result
    }
}

/// One connection from [`Redis::get`].
pub enum Conn {
    /// A handle on a connection of the pool (which is back in the pool already).
    Single(super::pool::Shared),
    /// A clone of the shared cluster connection.
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(conn) => conn.req_packed_command(cmd),
            Self::Cluster(conn) => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(conn) => conn.req_packed_commands(pipeline, offset, count),
            Self::Cluster(conn) => conn.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(conn) => conn.get_db(),
            Self::Cluster(conn) => conn.get_db(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_chooses_the_mode_and_debug_output_hides_credentials() {
        let single = Target::parse("redis://:hunter2-secret@127.0.0.1:6379/").unwrap();
        assert!(!single.is_cluster());
        let cluster = Target::parse("redis+cluster://u:hunter2-secret@a:1,b:2/").unwrap();
        assert!(cluster.is_cluster());
        for target in [&single, &cluster] {
            let shown = format!("{target:?}");
            assert!(!shown.contains("hunter2"), "{shown}");
        }
        assert_eq!(format!("{cluster:?}"), "Target::Cluster(2 seeds)");
        let err = Target::parse("redis+cluster://hunter2-secret/").unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
        assert!(Target::parse("http://127.0.0.1/").is_err());
    }
}
