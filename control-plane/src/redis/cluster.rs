//! Redis Cluster: the `redis+cluster://` URL, and one shared, lazily made
//! [`ClusterConnection`] (multiplexed, routed by key slot, cheap to clone) that is
//! dropped and made again from the seeds whenever the availability probe fails, so a
//! failover is picked up from a fresh slot map even when nothing else would have
//! asked the cluster for one.

use std::{sync::Arc, time::Duration};

use redis::{
    ConnectionInfo, IntoConnectionInfo, RedisResult,
    cluster::{ClusterClient, ClusterClientBuilder},
    cluster_async::ClusterConnection,
};
use tokio::sync::Mutex;

/// Scheme of a cluster URL.
pub const SCHEME: &str = "redis+cluster://";
/// Scheme of a cluster URL over TLS.
pub const TLS_SCHEME: &str = "rediss+cluster://";

/// Longest wait for a node to accept a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest wait for one answer of one node.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
/// Retries of one request (redirections, reconnections) before it fails: few, so a
/// call during a failover fails fast instead of queueing.
const RETRIES: u32 = 3;

/// Why a `redis+cluster://` URL is unusable. Never carries the URL (it may hold a
/// password).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UrlError {
    /// No `host:port` between the scheme and the path.
    #[error("a cluster URL lists its seed nodes: redis+cluster://host:port[,host:port…]/")]
    NoSeeds,
    /// A seed is not `host:port`.
    #[error("seed node {0} of the cluster URL is not host:port")]
    BadSeed(usize),
    /// A path or query the cluster cannot honour (clusters have database 0 only).
    #[error("a cluster URL takes no database number or query (Redis Cluster has database 0 only)")]
    Path,
    /// The redis crate refused a seed.
    #[error("seed node {0} of the cluster URL: {1}")]
    Seed(usize, String),
}

/// Returns the seed nodes of a `redis+cluster://[user:password@]host:port[,host:port…][/]`
/// (or `rediss+cluster://`) URL, or `None` when `url` is not a cluster URL. The
/// credentials apply to every node; a password holding `,` or `@` must be
/// percent-encoded.
pub fn seeds(url: &str) -> Option<Result<Vec<ConnectionInfo>, UrlError>> {
    let (scheme, rest) = if let Some(rest) = url.strip_prefix(SCHEME) {
        ("redis", rest)
    } else if let Some(rest) = url.strip_prefix(TLS_SCHEME) {
        ("rediss", rest)
    } else {
        return None;
    };
    Some(parse_seeds(scheme, rest))
}

fn parse_seeds(scheme: &str, rest: &str) -> Result<Vec<ConnectionInfo>, UrlError> {
    let (authority, path) = match rest.find(['/', '?']) {
        Some(at) => rest.split_at(at),
        None => (rest, ""),
    };
    if !matches!(path, "" | "/" | "/0") {
        return Err(UrlError::Path);
    }
    let (credentials, hosts) = match authority.rsplit_once('@') {
        Some((credentials, hosts)) => (format!("{credentials}@"), hosts),
        None => (String::new(), authority),
    };
    if hosts.is_empty() {
        return Err(UrlError::NoSeeds);
    }
    hosts
        .split(',')
        .enumerate()
        .map(|(i, host)| {
            let n = i + 1;
            match host.rsplit_once(':') {
                Some((h, p)) if !h.is_empty() && p.parse::<u16>().is_ok() => {}
                _ => return Err(UrlError::BadSeed(n)),
            }
            format!("{scheme}://{credentials}{host}/")
                .into_connection_info()
                .map(|info| info.set_tcp_settings(super::tcp_settings()))
                .map_err(|e| UrlError::Seed(n, e.to_string()))
        })
        .collect()
}

/// Returns a cluster client for `seeds` with short timeouts and TCP_NODELAY; with
/// `push`, one that speaks RESP3 and hands pub/sub messages (and the library's
/// disconnection notices) to `push`: the cluster client receives pub/sub only so.
pub fn client(
    seeds: &[ConnectionInfo],
    push: Option<tokio::sync::mpsc::UnboundedSender<redis::PushInfo>>,
) -> RedisResult<ClusterClient> {
    let mut builder = ClusterClientBuilder::new(seeds.to_vec())
        .tcp_settings(super::tcp_settings())
        .connection_timeout(CONNECT_TIMEOUT)
        .response_timeout(RESPONSE_TIMEOUT)
        .overall_response_timeout(Some(RESPONSE_TIMEOUT * 2))
        .retries(RETRIES);
    if let Some(push) = push {
        builder = builder
            .use_protocol(redis::ProtocolVersion::RESP3)
            .push_sender(push);
    }
    builder.build()
}

/// The shared cluster connection, made on first use; cheap to clone.
#[derive(Clone)]
pub struct Cluster(Arc<Shared>);

/// What the clones of a [`Cluster`] share.
struct Shared {
    /// Builds connections from the seeds.
    client: ClusterClient,
    /// The connection, while one is believed healthy.
    conn: Mutex<Option<ClusterConnection>>,
}

impl Cluster {
    /// Prepares connections to the cluster at `seeds` without connecting.
    pub fn new(seeds: &[ConnectionInfo]) -> RedisResult<Self> {
        Ok(Self(Arc::new(Shared {
            client: client(seeds, None)?,
            conn: Mutex::new(None),
        })))
    }

    /// Returns the shared connection, connecting first if there is none.
    pub async fn get(&self) -> RedisResult<ClusterConnection> {
        let mut slot = self.0.conn.lock().await;
        if let Some(conn) = slot.as_ref() {
            return Ok(conn.clone());
        }
        let conn = tokio::time::timeout(CONNECT_TIMEOUT * 2, self.0.client.get_async_connection())
            .await
            .unwrap_or_else(|_| Err(super::unavailable("connecting to the cluster timed out")))?;
        *slot = Some(conn.clone());
        Ok(conn)
    }

    /// Drops the shared connection: the next call connects again from the seeds,
    /// with a fresh slot map (in-flight calls keep their clone).
    pub async fn reset(&self) {
        self.0.conn.lock().await.take();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(url: &str) -> Vec<String> {
        seeds(url)
            .unwrap()
            .unwrap()
            .iter()
            .map(|i| i.addr().to_string())
            .collect()
    }

    #[test]
    fn seeds_are_read_from_the_url() {
        assert_eq!(
            addrs("redis+cluster://127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003/"),
            ["127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003"]
        );
        assert_eq!(addrs("redis+cluster://h:1"), ["h:1"]);
        let infos = seeds("redis+cluster://u:p%40ss@a:1,b:2/").unwrap().unwrap();
        assert!(
            infos
                .iter()
                .all(|i| i.redis_settings().password() == Some("p@ss"))
        );
        assert!(seeds("redis://127.0.0.1:6379/").is_none());
    }

    #[test]
    fn bad_cluster_urls_are_refused_without_echoing_them() {
        assert_eq!(
            seeds("redis+cluster:///").unwrap().unwrap_err(),
            UrlError::NoSeeds
        );
        assert_eq!(
            seeds("redis+cluster://a:1,secret/").unwrap().unwrap_err(),
            UrlError::BadSeed(2)
        );
        assert_eq!(
            seeds("redis+cluster://a:1/3").unwrap().unwrap_err(),
            UrlError::Path
        );
    }
}
