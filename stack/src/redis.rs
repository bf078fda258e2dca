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
    /// Server certificate and key (PEM) when the port speaks TLS only.
    tls: Option<(PathBuf, PathBuf)>,
}

impl Redis {
    /// Describes a server with its files under `root`, listening on `port`.
    pub fn new(root: &Path, port: u16) -> Self {
        Self {
            root: root.to_owned(),
            port,
            tls: None,
        }
    }

    /// Makes the port speak TLS only, with this certificate and key (PEM); clients
    /// are not asked for certificates.
    #[must_use]
    pub fn with_tls(mut self, cert: &Path, key: &Path) -> Self {
        self.tls = Some((cert.to_owned(), key.to_owned()));
        self
    }

    /// Returns the port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Returns the connection URL.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        format!("{scheme}://127.0.0.1:{}/", self.port)
    }

    fn pid_file(&self) -> PathBuf {
        self.root.join("redis.pid")
    }

    /// Starts the server and waits (at most 20 s) until it accepts connections.
    pub fn start(&self) -> anyhow::Result<()> {
        fs::create_dir_all(&self.root)?;
        let log = self.root.join("redis.log");
        let mut command = Command::new("redis-server");
        match &self.tls {
            None => command.args(["--port", &self.port.to_string()]),
            Some((cert, key)) => command
                .args(["--port", "0", "--tls-port", &self.port.to_string()])
                .arg("--tls-cert-file")
                .arg(cert)
                .arg("--tls-key-file")
                .arg(key)
                .args(["--tls-auth-clients", "no"]),
        };
        let status = command
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
