//! One typed configuration, read once from flags and `NOVA_*` environment variables.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `NOVA_HOOKS_ADDR` | `127.0.0.1:8090` | where nginx sends its callbacks |
//! | `NOVA_HOOKS_METRICS_ADDR` | (unset: on `NOVA_HOOKS_ADDR`) | a private listener for `/metrics`, so the callback port can be closed to everything but nginx |
//! | `NOVA_HOOKS_SECRET` | (none) | shared secret nginx passes as `?secret=` (URL-safe characters; also marks the ABR transcoder so it is not counted as a viewer); without one, only loopback callers are accepted |
//! | `NOVA_CONTROL_PLANE_URL` | `http://127.0.0.1:50051` | control-plane gRPC; `https://` for TLS |
//! | `NOVA_CONTROL_PLANE_CA` | (system trust store) | PEM CA verifying an `https://` control plane |
//! | `NOVA_SERVICE_TOKEN` | (required) | token for the control plane (at least 16 characters) |
//! | `NOVA_INGEST_NODE` | `ingest-local` | this ingest node's identifier |
//! | `NOVA_ORIGIN_URL` | `http://127.0.0.1:8080` | public base URL of this node's HLS/DASH origin |
//! | `NOVA_RELAY_URL` | `rtmp://127.0.0.2:1935/stream` | internal RTMP application accepted publishes are relayed into |
//! | `NOVA_INGEST_APP` | `live` | RTMP application broadcasters publish to |
//! | `NOVA_ABR` | `false` | whether nginx transcodes into renditions |
//! | `NOVA_STAT_URL` | `http://127.0.0.1:8081/stat` | nginx `rtmp_stat` page; empty turns the poller off |
//! | `NOVA_STAT_INTERVAL` | `5s` | time between /stat polls |
//! | `NOVA_UPSTREAM_TIMEOUT` | `2s` | deadline of each control-plane call, retries of heartbeats included; must stay under 2.5 s, the read timeout of nginx's on_update guard |
//! | `NOVA_UPDATE_GRACE` | `5m` | how long admitted broadcasters stay on air while the control plane cannot be reached (their heartbeats are retried meanwhile); `0s` cuts them off at the first failed heartbeat |
//! | `NOVA_PUBLISH_FAILURES` | `10` | refused publishes one address may make before it is refused at once, without asking the control plane |
//! | `NOVA_PUBLISH_FAILURE_REFILL` | `6s` | one more refused publish is allowed per address after this long |
//! | `NOVA_HLS_DIR` | (none) | nginx's HLS output folder, watched for segment generation time; unset turns it off |
//! | `NOVA_RECORD_URL` | `rtmp://127.0.0.2:1935/record` | nginx's recording application: accepted publishes of streams that record are relayed into it (it records, then pushes into `NOVA_RELAY_URL`'s application) |
//! | `NOVA_RECORD_DIR` | (none: recording off) | nginx's `record_path`, where the recording application writes pieces; handed pieces wait in its `done/` folder until the control plane has them |
//! | `NOVA_ASSET_STORE`, `NOVA_ASSET_S3_*` | (none: recording off) | the asset store recorded pieces are put in, and which the VOD origin reads (see `nova_store::config`) |
//! | `NOVA_HTTP_HEADER_TIMEOUT` | `10s` | time a connection has to send a request head; also bounds idle keep-alive connections (read by `nova_runtime::http`) |
//! | `NOVA_HTTP_IDLE_TIMEOUT` | `60s` | a connection that moves no byte for this long is closed (read by `nova_runtime::http`) |
//! | `NOVA_LOG_FORMAT` | `text` | `text` or `json` |

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::Parser;
pub use nova_runtime::{ConfigError, LogArgs, LogFormat, Secret, UpstreamArgs, parse_duration};
pub use nova_store::StoreArgs;

/// Ingest-hooks configuration; see the module docs for every variable.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "nova-ingest-hooks",
    version,
    about = "nginx-rtmp callbacks → Nova control plane"
)]
pub struct Config {
    /// Callback listen address.
    #[arg(long, env = "NOVA_HOOKS_ADDR", default_value = "127.0.0.1:8090")]
    pub listen: SocketAddr,
    /// Serve `/metrics` on this address alone, off the callback listener (which then
    /// answers 404 there); unset keeps it on `NOVA_HOOKS_ADDR`.
    #[arg(long, env = "NOVA_HOOKS_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,
    /// Shared secret nginx passes as `?secret=`.
    #[arg(long, env = "NOVA_HOOKS_SECRET", hide_env_values = true)]
    pub secret: Option<Secret>,
    /// Control-plane URL, CA and service token (`NOVA_CONTROL_PLANE_URL`,
    /// `NOVA_CONTROL_PLANE_CA`, `NOVA_SERVICE_TOKEN`).
    #[command(flatten)]
    pub control_plane: UpstreamArgs,
    /// This ingest node's identifier.
    #[arg(long, env = "NOVA_INGEST_NODE", default_value = "ingest-local")]
    pub ingest_node: String,
    /// Public base URL of this node's HLS/DASH origin.
    #[arg(long, env = "NOVA_ORIGIN_URL", default_value = "http://127.0.0.1:8080")]
    pub origin_url: String,
    /// Internal RTMP application accepted publishes are relayed into.
    #[arg(
        long,
        env = "NOVA_RELAY_URL",
        default_value = "rtmp://127.0.0.2:1935/stream"
    )]
    pub relay_url: String,
    /// RTMP application broadcasters publish to.
    #[arg(long, env = "NOVA_INGEST_APP", default_value = "live")]
    pub ingest_app: String,
    /// Whether nginx transcodes into renditions (adaptive bitrate).
    #[arg(long, env = "NOVA_ABR", default_value_t = false, action = clap::ArgAction::Set)]
    pub abr: bool,
    /// nginx `rtmp_stat` URL; empty turns the poller off.
    #[arg(
        long,
        env = "NOVA_STAT_URL",
        default_value = "http://127.0.0.1:8081/stat"
    )]
    pub stat_url: String,
    /// Time between /stat polls.
    #[arg(long, env = "NOVA_STAT_INTERVAL", default_value = "5s", value_parser = parse_duration)]
    pub stat_interval: Duration,
    /// Deadline of each control-plane call.
    #[arg(long, env = "NOVA_UPSTREAM_TIMEOUT", default_value = "2s", value_parser = parse_duration)]
    pub upstream_timeout: Duration,
    /// How long admitted broadcasters stay on air while the control plane cannot be
    /// reached.
    #[arg(long, env = "NOVA_UPDATE_GRACE", default_value = "5m", value_parser = parse_duration)]
    pub update_grace: Duration,
    /// Refused publishes one address may make before it is refused at once.
    #[arg(long, env = "NOVA_PUBLISH_FAILURES", default_value = "10")]
    pub publish_failures: std::num::NonZeroU32,
    /// One more refused publish is allowed per address after this long.
    #[arg(long, env = "NOVA_PUBLISH_FAILURE_REFILL", default_value = "6s", value_parser = parse_duration)]
    pub publish_failure_refill: Duration,
    /// nginx's HLS output folder, watched for segment generation time.
    #[arg(long, env = "NOVA_HLS_DIR")]
    pub hls_dir: Option<std::path::PathBuf>,
    /// nginx's recording application, which publishes of streams that record are
    /// relayed into.
    #[arg(
        long,
        env = "NOVA_RECORD_URL",
        default_value = "rtmp://127.0.0.2:1935/record"
    )]
    pub record_url: String,
    /// nginx's `record_path`; unset turns recording off on this node.
    #[arg(long, env = "NOVA_RECORD_DIR")]
    pub record_dir: Option<PathBuf>,
    /// The asset store recorded pieces go to and the VOD origin reads.
    #[command(flatten)]
    pub store: StoreArgs,
    /// Log settings (`NOVA_LOG_FORMAT`).
    #[command(flatten)]
    pub log: LogArgs,
}

impl Config {
    /// Reads flags and environment, then checks what clap cannot. Errors name the
    /// variable and never echo a secret. `--help` and `--version` print to stdout
    /// and exit 0; a flag clap cannot parse prints usage to stderr and exits 2.
    pub fn load() -> Result<Self, ConfigError> {
        let config = Self::try_parse().unwrap_or_else(|e| e.exit());
        config.validate()?;
        Ok(config)
    }

    /// Returns the name of the RTMP application at the end of an `rtmp://` URL.
    pub fn app_of(url: &str) -> &str {
        url.trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or_default()
    }

    /// Checks values clap cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.control_plane.validate()?;
        if let Some(secret) = &self.secret {
            secret.require_len("NOVA_HOOKS_SECRET", 16)?;
            let url_safe =
                |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~');
            if !secret.expose().bytes().all(url_safe) {
                return Err(ConfigError::invalid(
                    "NOVA_HOOKS_SECRET",
                    "use only A-Z a-z 0-9 - _ . ~ (it travels in nginx's callback URLs)",
                ));
            }
        }
        if self.upstream_timeout >= Duration::from_millis(2500) {
            return Err(ConfigError::invalid(
                "NOVA_UPSTREAM_TIMEOUT",
                "must stay under 2.5 s (the read timeout of nginx's on_update guard, itself under netcall_timeout 3 s)",
            ));
        }
        if !self.relay_url.starts_with("rtmp://") {
            return Err(ConfigError::invalid(
                "NOVA_RELAY_URL",
                "must be an rtmp:// URL",
            ));
        }
        if !self.record_url.starts_with("rtmp://") {
            return Err(ConfigError::invalid(
                "NOVA_RECORD_URL",
                "must be an rtmp:// URL",
            ));
        }
        if self.record_dir.as_ref().is_some_and(|d| !d.is_absolute()) {
            return Err(ConfigError::invalid(
                "NOVA_RECORD_DIR",
                "must be an absolute folder (nginx's record_path)",
            ));
        }
        if !(self.origin_url.starts_with("http://") || self.origin_url.starts_with("https://")) {
            return Err(ConfigError::invalid(
                "NOVA_ORIGIN_URL",
                "must be an http:// or https:// URL",
            ));
        }
        Ok(())
    }
}
