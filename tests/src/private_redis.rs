//! A Redis server of one test's own, for faults the shared test engines must not
//! see: restart it empty, flush it, or start a control plane before it exists.

use std::{net::SocketAddr, process::Command, time::Duration};

use nova_stack::{redis::Redis, wait::free_port};

/// A private redis-server on a free loopback port (no persistence: a restart comes
/// back empty); stopped when dropped.
pub struct PrivateRedis {
    /// The server.
    redis: Redis,
    /// Its folder.
    _dir: tempfile::TempDir,
}

impl PrivateRedis {
    /// Describes a server on a free port without starting it.
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("nova-redis-")
            .tempdir()
            .expect("temp dir");
        let redis = Redis::new(dir.path(), free_port().expect("free port"));
        Self { redis, _dir: dir }
    }

    /// Starts a server on a free port.
    pub fn started() -> Self {
        let this = Self::new();
        this.start();
        this
    }

    /// Starts the server (empty) and waits until it accepts connections.
    pub fn start(&self) {
        self.redis.start().expect("start the private redis-server");
    }

    /// Stops the server.
    pub fn stop(&self) {
        self.redis.stop().expect("stop the private redis-server");
    }

    /// Stops the server, waits `down`, and starts it again, empty.
    pub async fn restart_empty(&self, down: Duration) {
        self.stop();
        tokio::time::sleep(down).await;
        self.start();
    }

    /// Runs `FLUSHALL`.
    pub fn flush_all(&self) {
        let out = Command::new("redis-cli")
            .args(["-p", &self.redis.port().to_string(), "FLUSHALL"])
            .output()
            .expect("run redis-cli");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "OK",
            "FLUSHALL: {out:?}"
        );
    }

    /// Returns the connection URL.
    pub fn url(&self) -> String {
        self.redis.url()
    }

    /// Returns the address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.redis.port()))
    }
}

impl Default for PrivateRedis {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        let _ = self.redis.stop();
    }
}
