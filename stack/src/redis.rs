//! A private Redis instance on loopback: no persistence, its own pid file.

use std::{
    fs,
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use anyhow::{Context, bail};

use crate::{process, wait};

/// A private Redis server.
#[derive(Debug)]
pub struct Redis {
    /// Folder holding the pid file and log.
    root: PathBuf,
    /// TCP port on 127.0.0.1.
    port: u16,
}

impl Redis {
    /// Describes a server with its files under `root`, listening on `port`.
    pub fn new(root: &Path, port: u16) -> Self {
        Self {
            root: root.to_owned(),
            port,
        }
    }

    /// Returns the port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Returns the connection URL.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    fn pid_file(&self) -> PathBuf {
        self.root.join("redis.pid")
    }

    /// Starts the server and waits (at most 20 s) until it accepts connections.
    pub fn start(&self) -> anyhow::Result<()> {
        fs::create_dir_all(&self.root)?;
        let log = self.root.join("redis.log");
        let status = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--daemonize", "yes", "--maxclients", "10000"])
            .arg("--dir")
            .arg(&self.root)
            .arg("--pidfile")
            .arg(self.pid_file())
            .arg("--logfile")
            .arg(&log)
            .status()
            .context("cannot run redis-server: run scripts/install-deps.sh")?;
        if !status.success() {
            bail!("redis-server exited with {status}; see {}", log.display());
        }
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        wait::until(
            &format!("Redis on {addr} (log: {})", log.display()),
            Duration::from_secs(20),
            || wait::accepts(addr) && self.pid_file().exists(),
        )
    }

    /// Stops the server if its pid file names a live process.
    pub fn stop(&self) -> anyhow::Result<()> {
        process::stop_pid_file(&self.pid_file(), Duration::from_secs(10))
    }
}
