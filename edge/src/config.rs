//! One typed configuration, read once from flags and `NOVA_*` environment variables.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `NOVA_EDGE_ADDR` | `127.0.0.1:8080` | HTTP listen address |
//! | `NOVA_EDGE_METRICS_ADDR` | (unset: on `NOVA_EDGE_ADDR`) | a private listener for `/metrics` |
//! | `NOVA_CONTROL_PLANE_URL` | `http://127.0.0.1:50051` | control-plane gRPC; `https://` for TLS |
//! | `NOVA_CONTROL_PLANE_CA` | (system trust store) | PEM CA verifying an `https://` control plane |
//! | `NOVA_SERVICE_TOKEN` | (required) | token for the control plane (at least 16 characters) |
//! | `NOVA_EDGE_NODE` | `edge-local` | this edge's id (viewer sessions carry it) |
//! | `NOVA_JWT_HS256_SECRET` | (none) | HS256 secret verifying bearer JWTs; several, comma-separated, during a rotation (each ≥ 32 characters) |
//! | `NOVA_JWT_RS256_PUBLIC_KEY` | (none) | path of a PEM RS256 public key verifying bearer JWTs, or of a folder whose `*.pem` files are each one key |
//! | `NOVA_JWT_ISSUER` / `NOVA_JWT_AUDIENCE` | (none) | required `iss` / `aud`, when set |
//! | `NOVA_CORS_ORIGINS` | `*` | allowed browser origins, comma-separated |
//! | `NOVA_JWT_MAX_LIFETIME` | `24h` | longest accepted token lifetime (`exp - iat`, or `exp - now` without `iat`) |
//! | `NOVA_MUTATIONS_PER_MINUTE` | `60` | per-client rate limit on POST/DELETE (burst: as many) |
//! | `NOVA_READS_PER_MINUTE` | `600` | per-client rate limit on REST GETs (burst: a tenth) |
//! | `NOVA_LIST_CACHE` | `1s` | how long the edge reuses an anonymous `GET /streams` answer (`0s`: never) |
//! | `NOVA_STREAM_CACHE` | `1s` | how long the edge reuses the anonymous view of one stream, `GET /streams/{id}`, and the stream read a socket's snapshot shows (within one lifecycle generation: a socket opening after a lifecycle event reads again) (`0s`: never) |
//! | `NOVA_TRUSTED_PROXIES` | (none) | proxies whose `X-Forwarded-For` names the client, e.g. `10.0.0.0/8` |
//! | `NOVA_MAX_BODY_BYTES` | `16384` | largest request body |
//! | `NOVA_WEB_DIR` | `edge/web` of the source tree | the viewer page's files |
//! | `NOVA_WS_MAX_SOCKETS` | `10000` | most sockets this edge holds; more get 503 (each is a file descriptor and ~15 KiB, docs/benchmarks.md G1) |
//! | `NOVA_WS_OPENS_PER_MINUTE` | `60` | per-client rate of WebSocket opens (burst: a third) |
//! | `NOVA_WS_MAX_SOCKETS_PER_IP` | `100` | most sockets one client (IPv4 address, IPv6 /64) holds on this edge |
//! | `NOVA_WS_ALLOWED_ORIGINS` | (unset: any) | browser origins allowed to open WebSockets, comma-separated; others get 403 |
//! | `NOVA_WS_QUEUE` | `64` | lifecycle events a socket may fall behind before it is closed |
//! | `NOVA_SESSION_HEARTBEAT` | `10s` | how often the edge renews its viewers' sessions (one batched call) |
//! | `NOVA_EDGE_DRAIN_TIMEOUT` | `10s` | on SIGTERM, how long sockets get to close (1001) and leave their sessions before the process exits |
//! | `NOVA_HTTP_HEADER_TIMEOUT` | `10s` | time a connection has to send a request head; also bounds idle keep-alive connections |
//! | `NOVA_HTTP_IDLE_TIMEOUT` | `60s` | a connection that moves no byte for this long is closed (stalled bodies, unread answers) |
//! | `NOVA_LOG_FORMAT` | `text` | `text` or `json` |
//!
//! At least one JWT key must be given; without one, mutations are refused.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::Parser;

use crate::{ratelimit::TrustedProxies, ws::origin::AllowedOrigins};
pub use nova_runtime::{ConfigError, LogArgs, LogFormat, Secret, UpstreamArgs, parse_duration};

/// Edge configuration; see the module docs for every variable.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "nova-edge",
    version,
    about = "Nova Streaming edge (REST + WebSocket)"
)]
pub struct Config {
    /// HTTP listen address.
    #[arg(long, env = "NOVA_EDGE_ADDR", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Control-plane URL, CA and service token (`NOVA_CONTROL_PLANE_URL`,
    /// `NOVA_CONTROL_PLANE_CA`, `NOVA_SERVICE_TOKEN`).
    #[command(flatten)]
    pub control_plane: UpstreamArgs,
    /// This edge's id.
    #[arg(long, env = "NOVA_EDGE_NODE", default_value = "edge-local")]
    pub node: String,
    /// HS256 secret verifying bearer JWTs; several, comma-separated, while rotating.
    #[arg(long, env = "NOVA_JWT_HS256_SECRET", hide_env_values = true)]
    pub jwt_hs256_secret: Option<Secret>,
    /// Path of a PEM RS256 public key verifying bearer JWTs, or of a folder of them.
    #[arg(long, env = "NOVA_JWT_RS256_PUBLIC_KEY")]
    pub jwt_rs256_public_key: Option<PathBuf>,
    /// Required JWT issuer.
    #[arg(long, env = "NOVA_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,
    /// Required JWT audience.
    #[arg(long, env = "NOVA_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,
    /// Longest accepted token lifetime.
    #[arg(long, env = "NOVA_JWT_MAX_LIFETIME", default_value = "24h", value_parser = parse_duration)]
    pub jwt_max_lifetime: Duration,
    /// Allowed browser origins, comma-separated, or `*`.
    #[arg(long, env = "NOVA_CORS_ORIGINS", default_value = "*")]
    pub cors_origins: String,
    /// Per-IP rate limit on mutations, per minute.
    #[arg(long, env = "NOVA_MUTATIONS_PER_MINUTE", default_value_t = 60)]
    pub mutations_per_minute: u32,
    /// Per-IP rate limit on REST GETs, per minute.
    #[arg(long, env = "NOVA_READS_PER_MINUTE", default_value_t = 600)]
    pub reads_per_minute: u32,
    /// How long an anonymous stream list is reused.
    #[arg(long, env = "NOVA_LIST_CACHE", default_value = "1s", value_parser = parse_duration)]
    pub list_cache: Duration,
    /// How long the anonymous view of one stream (`GET /streams/{id}`) is reused.
    #[arg(long, env = "NOVA_STREAM_CACHE", default_value = "1s", value_parser = parse_duration)]
    pub stream_cache: Duration,
    /// Per-IP rate of WebSocket opens, per minute.
    #[arg(long, env = "NOVA_WS_OPENS_PER_MINUTE", default_value_t = 60)]
    pub ws_opens_per_minute: u32,
    /// Most sockets one client address holds on this edge.
    #[arg(long, env = "NOVA_WS_MAX_SOCKETS_PER_IP", default_value_t = 100)]
    pub ws_max_sockets_per_ip: usize,
    /// Origins allowed to open WebSockets (comma-separated); unset allows any.
    #[arg(long, env = "NOVA_WS_ALLOWED_ORIGINS", value_parser = AllowedOrigins::parse)]
    pub ws_allowed_origins: Option<AllowedOrigins>,
    /// Serve `/metrics` on this address alone, off the public listener (which then
    /// answers 404 there); unset keeps it on `NOVA_EDGE_ADDR`.
    #[arg(long, env = "NOVA_EDGE_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,
    /// Proxies (comma-separated addresses or CIDR networks) whose `X-Forwarded-For`
    /// names the client for rate limiting; empty trusts none.
    #[arg(long, env = "NOVA_TRUSTED_PROXIES", default_value = "", value_parser = TrustedProxies::parse)]
    pub trusted_proxies: TrustedProxies,
    /// Largest request body in bytes.
    #[arg(long, env = "NOVA_MAX_BODY_BYTES", default_value_t = 16 * 1024)]
    pub max_body_bytes: usize,
    /// The viewer page's files.
    #[arg(long, env = "NOVA_WEB_DIR", default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/web"))]
    pub web_dir: PathBuf,
    /// Most sockets this edge holds at once; more get 503 with `Retry-After`.
    #[arg(long, env = "NOVA_WS_MAX_SOCKETS", default_value_t = 10_000)]
    pub ws_max_sockets: usize,
    /// Lifecycle events a socket may fall behind before it is closed.
    #[arg(long, env = "NOVA_WS_QUEUE", default_value_t = 64)]
    pub ws_queue: usize,
    /// How often the edge renews its viewers' sessions.
    #[arg(long, env = "NOVA_SESSION_HEARTBEAT", default_value = "10s", value_parser = parse_duration)]
    pub session_heartbeat: Duration,
    /// How long shutdown waits for sockets and background tasks to finish.
    #[arg(long, env = "NOVA_EDGE_DRAIN_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub drain_timeout: Duration,
    /// Header-read and idle timeouts of the public and metrics listeners.
    #[command(flatten)]
    pub http: nova_runtime::http::HttpLimits,
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

    /// Checks values clap cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.control_plane.validate()?;
        self.http.validate()?;
        if let Some(secrets) = &self.jwt_hs256_secret {
            let mut any = false;
            for secret in crate::auth::hs256_secrets(secrets.expose()) {
                any = true;
                Secret::from(secret).require_len("NOVA_JWT_HS256_SECRET", 32)?;
            }
            if !any {
                secrets.require_len("NOVA_JWT_HS256_SECRET", 32)?;
            }
        }
        for (var, zero) in [
            ("NOVA_WS_QUEUE", self.ws_queue == 0),
            ("NOVA_WS_MAX_SOCKETS", self.ws_max_sockets == 0),
            (
                "NOVA_WS_MAX_SOCKETS_PER_IP",
                self.ws_max_sockets_per_ip == 0,
            ),
            ("NOVA_WS_OPENS_PER_MINUTE", self.ws_opens_per_minute == 0),
            ("NOVA_READS_PER_MINUTE", self.reads_per_minute == 0),
            ("NOVA_MUTATIONS_PER_MINUTE", self.mutations_per_minute == 0),
        ] {
            if zero {
                return Err(ConfigError::NotPositive(var));
            }
        }
        if self.jwt_max_lifetime.is_zero() {
            return Err(ConfigError::NotPositive("NOVA_JWT_MAX_LIFETIME"));
        }
        Ok(())
    }
}
