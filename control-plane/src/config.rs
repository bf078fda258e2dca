//! One typed configuration, read once from flags and `NOVA_*` environment variables.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `NOVA_GRPC_ADDR` | `127.0.0.1:50051` | gRPC listen address |
//! | `NOVA_TLS_CERT` / `NOVA_TLS_KEY` | (none: plaintext) | PEM certificate chain and key: gRPC is served over TLS |
//! | `NOVA_METRICS_ADDR` | `127.0.0.1:9464` | Prometheus `/metrics` listen address |
//! | `NOVA_DATABASE_URL` | `postgres://postgres@127.0.0.1:5432/nova` | PostgreSQL; TLS by `sslmode` / `sslrootcert` as in libpq (see `db::tls`) |
//! | `NOVA_DB_POOL_SIZE` | `16` | PostgreSQL connections per process, and the most connections to a single Redis primary (shared by the calls in flight) |
//! | `NOVA_SERVICE_TOKEN` | (required) | admin token(s) callers send as `authorization: Bearer …`: every method, may act for users; several may be given comma-separated, for rotation |
//! | `NOVA_EDGE_SERVICE_TOKEN` | (none) | token(s) of the edge role: streams for users, sessions, analytics, events; not IngestService |
//! | `NOVA_INGEST_SERVICE_TOKEN` | (none) | token(s) of the ingest role (ingest-hooks): IngestService and RTMP players' sessions only, never a principal |
//! | `NOVA_REDIS_URL` | `redis://127.0.0.1:6379/` | one Redis primary; `rediss://` for TLS (system trust store). A Redis Cluster: `redis+cluster://[user:password@]host:port[,host:port…]/` (`rediss+cluster://` for TLS), any few of its nodes as seeds |
//! | `NOVA_REDIS_PREFIX` | `nova` | prefix of every Redis key and channel (no `{` or `}`: keys carry a hash tag) |
//! | `NOVA_SESSION_TTL` | `30s` | a viewer session without a heartbeat for this long expires |
//! | `NOVA_SAMPLE_INTERVAL` | `5s` | time between metric samples of live streams |
//! | `NOVA_COUNT_WINDOW` | `250ms` | `viewer_count_changed` is sent at most once per window per stream |
//! | `NOVA_RTMP_URL` | `rtmp://127.0.0.1:1935/live` | RTMP ingest address handed to broadcasters |
//! | `NOVA_RECONNECT_WINDOW` | `30s` | how long an interrupted stream waits for its broadcaster |
//! | `NOVA_INGEST_TIMEOUT` | `15s` | an active stream without ingest updates for this long is interrupted (3 × nginx's update interval) |
//! | `NOVA_INGEST_LOST_WINDOW` | `5m` | reconnect window of a stream interrupted because its ingest went silent (at least `NOVA_RECONNECT_WINDOW`): keep it at or above ingest-hooks' `NOVA_UPDATE_GRACE`, so a broadcaster the hooks keep on air through an outage is never completed under it |
//! | `NOVA_STREAM_CACHE` | `1s` | how long a stream row is reused for GetStream, JoinSession and viewer figures (`0s`: never; see `service::stream_cache`) |
//! | `NOVA_REAPER_INTERVAL` | `1s` | time between reaper sweeps |
//! | `NOVA_SHUTDOWN_GRACE` | `10s` | how long in-flight calls may finish on shutdown |
//! | `NOVA_HTTP_HEADER_TIMEOUT` | `10s` | the metrics listener: time a connection has to send a request head (read by `nova_runtime::http`) |
//! | `NOVA_HTTP_IDLE_TIMEOUT` | `60s` | the metrics listener: a connection that moves no byte for this long is closed (read by `nova_runtime::http`) |
//! | `NOVA_WEBHOOK_ALLOW_PRIVATE` | `false` | deliver webhooks to private, loopback, link-local and other non-public addresses too (the dev stack sets it; see docs/webhooks.md) |
//! | `NOVA_WEBHOOK_ALLOWED_CIDRS` | (none) | non-public address ranges webhooks may still reach, comma-separated (`10.1.0.0/16,fd00::/8`) |
//! | `NOVA_WEBHOOK_TIMEOUT` | `10s` | one delivery attempt (connect, send, answer) gives up after this long |
//! | `NOVA_WEBHOOK_CONCURRENCY` | `16` | endpoints one replica delivers to at once |
//! | `NOVA_WEBHOOK_MAX_AGE` | `24h` | an event is retried until it is this old, then given up |
//! | `NOVA_WEBHOOK_RETRY_MIN` / `NOVA_WEBHOOK_RETRY_MAX` | `10s` / `1h` | first retry delay, doubling per failure up to the maximum, with jitter |
//! | `NOVA_WEBHOOK_DISABLE_FAILURES` | `20` | consecutive failed attempts that, once they also span `NOVA_WEBHOOK_DISABLE_AFTER`, disable an endpoint |
//! | `NOVA_WEBHOOK_DISABLE_AFTER` | `24h` | how long an endpoint must have failed before it is disabled |
//! | `NOVA_WEBHOOK_POLL_INTERVAL` | `1s` | how often a replica looks for endpoints with events to deliver (lifecycle events also wake it) |
//! | `NOVA_WEBHOOK_SECRET_GRACE` | `24h` | after a secret rotation, deliveries are signed with the old secret too for this long |
//! | `NOVA_WEBHOOK_ATTEMPT_RETENTION` | `720h` | delivery attempts older than this are deleted |
//! | `NOVA_ASSET_STORE`, `NOVA_ASSET_S3_*` | (none: recording off) | the asset store (`file:///folder` or `s3://bucket`; see `nova_store::config`): recorded pieces and assets |
//! | `NOVA_VOD_URL` | `http://127.0.0.1:8088/vod` | public base URL of the VOD origin; asset URLs are `<NOVA_VOD_URL>/<asset id>/index.m3u8` and `…/download.mp4` |
//! | `NOVA_ASSET_RETENTION` | (none: kept) | READY and ERRORED assets older than this are deleted, e.g. `30d` |
//! | `NOVA_RECORDING_WAIT` | `10m` | how long a completed stream's asset waits for recorded pieces that have not arrived before it is remuxed without them |
//! | `NOVA_REMUX_ATTEMPTS` | `3` | remux attempts per asset (crashed ones included) before it is ERRORED |
//! | `NOVA_REMUX_LEASE` | `30s` | a remux job whose worker stops renewing its lease for this long is taken by another worker |
//! | `NOVA_REMUX_TIMEOUT` | `1h` | longest ffmpeg run of one attempt |
//! | `NOVA_REMUX_DIR` | `<temp dir>/nova-remux` | parent of the remux work folders (one per attempt, removed after it) |
//! | `NOVA_FFMPEG` | `ffmpeg` | the ffmpeg binary the remux runs |
//! | `NOVA_LOG_FORMAT` | `text` | `text` or `json` |
//! | `NOVA_MIGRATE_ONLY` | `false` | migrate the database and exit (`--migrate-only`) |
//! | `RUST_LOG` | `info` | log filter |

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::Parser;
use ipnet::IpNet;
pub use nova_runtime::{ConfigError, LogArgs, LogFormat, Secret, parse_duration};
pub use nova_store::StoreArgs;

use crate::auth::{ServiceTokens, TokenError};

/// Control-plane configuration; see the module docs for every variable.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "nova-control-plane",
    version,
    about = "Nova Streaming control plane (gRPC)"
)]
pub struct Config {
    /// gRPC listen address.
    #[arg(long, env = "NOVA_GRPC_ADDR", default_value = "127.0.0.1:50051")]
    pub grpc_addr: SocketAddr,
    /// Certificate chain (PEM) for serving gRPC over TLS; needs `NOVA_TLS_KEY`.
    #[arg(long, env = "NOVA_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// Private key (PEM) of `NOVA_TLS_CERT`.
    #[arg(long, env = "NOVA_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Prometheus `/metrics` listen address.
    #[arg(long, env = "NOVA_METRICS_ADDR", default_value = "127.0.0.1:9464")]
    pub metrics_addr: SocketAddr,
    /// PostgreSQL connection URL.
    #[arg(
        long,
        env = "NOVA_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/nova",
        hide_env_values = true
    )]
    pub database_url: Secret,
    /// PostgreSQL connections per process, and the most connections to a single
    /// Redis primary (shared by the calls in flight).
    #[arg(long, env = "NOVA_DB_POOL_SIZE", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub db_pool_size: u32,
    /// Redis: `redis://host:port/` (one primary; `rediss://` for TLS) or
    /// `redis+cluster://host:port,host:port/` (a Redis Cluster reached through these
    /// seed nodes; `rediss+cluster://` for TLS).
    #[arg(
        long,
        env = "NOVA_REDIS_URL",
        default_value = "redis://127.0.0.1:6379/",
        hide_env_values = true
    )]
    pub redis_url: Secret,
    /// Prefix of every Redis key and channel; no `{` or `}`, since every key of a
    /// stream carries the stream's hash tag.
    #[arg(long, env = "NOVA_REDIS_PREFIX", default_value = "nova", value_parser = parse_prefix)]
    pub redis_prefix: String,
    /// A viewer session without a heartbeat for this long expires.
    #[arg(long, env = "NOVA_SESSION_TTL", default_value = "30s", value_parser = parse_duration)]
    pub session_ttl: Duration,
    /// Time between metric samples of live streams.
    #[arg(long, env = "NOVA_SAMPLE_INTERVAL", default_value = "5s", value_parser = parse_duration)]
    pub sample_interval: Duration,
    /// `viewer_count_changed` is sent at most once per window per stream.
    #[arg(long, env = "NOVA_COUNT_WINDOW", default_value = "250ms", value_parser = parse_duration)]
    pub count_window: Duration,
    /// Admin service tokens (every method, may act for users), comma-separated; each
    /// at least 16 characters. Required to serve; `--migrate-only` needs none.
    #[arg(long, env = "NOVA_SERVICE_TOKEN", hide_env_values = true)]
    pub service_token: Option<Secret>,
    /// Tokens of the edge role, comma-separated.
    #[arg(long, env = "NOVA_EDGE_SERVICE_TOKEN", hide_env_values = true)]
    pub edge_service_token: Option<Secret>,
    /// Tokens of the ingest role (ingest-hooks), comma-separated.
    #[arg(long, env = "NOVA_INGEST_SERVICE_TOKEN", hide_env_values = true)]
    pub ingest_service_token: Option<Secret>,
    /// RTMP ingest address given to broadcasters (the key is appended as the last segment).
    #[arg(
        long,
        env = "NOVA_RTMP_URL",
        default_value = "rtmp://127.0.0.1:1935/live"
    )]
    pub rtmp_url: String,
    /// How long an interrupted stream waits for its broadcaster to come back.
    #[arg(long, env = "NOVA_RECONNECT_WINDOW", default_value = "30s", value_parser = parse_duration)]
    pub reconnect_window: Duration,
    /// An active stream without ingest updates for this long is interrupted.
    #[arg(long, env = "NOVA_INGEST_TIMEOUT", default_value = "15s", value_parser = parse_duration)]
    pub ingest_timeout: Duration,
    /// Reconnect window of a stream interrupted because its ingest went silent (at
    /// least `reconnect_window`).
    #[arg(long, env = "NOVA_INGEST_LOST_WINDOW", default_value = "5m", value_parser = parse_duration)]
    pub ingest_lost_window: Duration,
    /// How long a stream row read for GetStream, JoinSession and viewer figures is
    /// reused (`0s`: never); this replica's own changes drop it at once.
    #[arg(long, env = "NOVA_STREAM_CACHE", default_value = "1s", value_parser = parse_duration)]
    pub stream_cache: Duration,
    /// Time between reaper sweeps.
    #[arg(long, env = "NOVA_REAPER_INTERVAL", default_value = "1s", value_parser = parse_duration)]
    pub reaper_interval: Duration,
    /// Grace period for in-flight calls on shutdown, e.g. `10s`, `500ms`.
    #[arg(long, env = "NOVA_SHUTDOWN_GRACE", default_value = "10s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,
    /// Outgoing webhooks.
    #[command(flatten)]
    pub webhooks: WebhookConfig,
    /// The asset store (recorded pieces and assets); none turns recording off.
    #[command(flatten)]
    pub store: StoreArgs,
    /// Public base URL of the VOD origin (`…/vod`).
    #[arg(
        long,
        env = "NOVA_VOD_URL",
        default_value = "http://127.0.0.1:8088/vod"
    )]
    pub vod_url: String,
    /// Finished assets older than this are deleted; unset keeps them.
    #[arg(long, env = "NOVA_ASSET_RETENTION", value_parser = parse_duration)]
    pub asset_retention: Option<Duration>,
    /// How long a completed stream's asset waits for missing recorded pieces.
    #[arg(long, env = "NOVA_RECORDING_WAIT", default_value = "10m", value_parser = parse_duration)]
    pub recording_wait: Duration,
    /// Remux attempts per asset, crashed ones included.
    #[arg(long, env = "NOVA_REMUX_ATTEMPTS", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub remux_attempts: u32,
    /// A remux job whose worker stops renewing for this long is taken by another.
    #[arg(long, env = "NOVA_REMUX_LEASE", default_value = "30s", value_parser = parse_duration)]
    pub remux_lease: Duration,
    /// Longest ffmpeg run of one remux attempt.
    #[arg(long, env = "NOVA_REMUX_TIMEOUT", default_value = "1h", value_parser = parse_duration)]
    pub remux_timeout: Duration,
    /// Parent folder of remux work folders; unset is `<temp dir>/nova-remux`.
    #[arg(long, env = "NOVA_REMUX_DIR")]
    pub remux_dir: Option<PathBuf>,
    /// The ffmpeg binary.
    #[arg(long, env = "NOVA_FFMPEG", default_value = "ffmpeg")]
    pub ffmpeg: PathBuf,
    /// Log settings (`NOVA_LOG_FORMAT`).
    #[command(flatten)]
    pub log: LogArgs,
    /// Apply pending migrations, then exit instead of serving (a Kubernetes Job).
    #[arg(long, env = "NOVA_MIGRATE_ONLY")]
    pub migrate_only: bool,
}

/// Outgoing webhooks: where they may go, how long an attempt and an event may take,
/// retries, and when a failing endpoint is disabled.
#[derive(Debug, Clone, clap::Args)]
pub struct WebhookConfig {
    /// Deliver to private, loopback, link-local and other non-public addresses too.
    #[arg(long = "webhook-allow-private", env = "NOVA_WEBHOOK_ALLOW_PRIVATE")]
    pub allow_private: bool,
    /// Non-public address ranges deliveries may still reach, comma-separated.
    #[arg(
        long = "webhook-allowed-cidrs",
        env = "NOVA_WEBHOOK_ALLOWED_CIDRS",
        value_delimiter = ','
    )]
    pub allowed_cidrs: Vec<IpNet>,
    /// One delivery attempt gives up after this long.
    #[arg(long = "webhook-timeout", env = "NOVA_WEBHOOK_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Endpoints one replica delivers to at once.
    #[arg(long = "webhook-concurrency", env = "NOVA_WEBHOOK_CONCURRENCY", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub concurrency: u32,
    /// An event is retried until it is this old.
    #[arg(long = "webhook-max-age", env = "NOVA_WEBHOOK_MAX_AGE", default_value = "24h", value_parser = parse_duration)]
    pub max_age: Duration,
    /// Delay before the first retry; it doubles per failure.
    #[arg(long = "webhook-retry-min", env = "NOVA_WEBHOOK_RETRY_MIN", default_value = "10s", value_parser = parse_duration)]
    pub retry_min: Duration,
    /// Longest delay between retries.
    #[arg(long = "webhook-retry-max", env = "NOVA_WEBHOOK_RETRY_MAX", default_value = "1h", value_parser = parse_duration)]
    pub retry_max: Duration,
    /// Consecutive failed attempts that can disable an endpoint.
    #[arg(long = "webhook-disable-failures", env = "NOVA_WEBHOOK_DISABLE_FAILURES", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    pub disable_failures: u32,
    /// How long an endpoint must have failed before it is disabled.
    #[arg(long = "webhook-disable-after", env = "NOVA_WEBHOOK_DISABLE_AFTER", default_value = "24h", value_parser = parse_duration)]
    pub disable_after: Duration,
    /// How often a replica looks for endpoints with events to deliver.
    #[arg(long = "webhook-poll-interval", env = "NOVA_WEBHOOK_POLL_INTERVAL", default_value = "1s", value_parser = parse_duration)]
    pub poll_interval: Duration,
    /// After a secret rotation, the old secret also signs for this long.
    #[arg(long = "webhook-secret-grace", env = "NOVA_WEBHOOK_SECRET_GRACE", default_value = "24h", value_parser = parse_duration)]
    pub secret_grace: Duration,
    /// Delivery attempts older than this are deleted.
    #[arg(long = "webhook-attempt-retention", env = "NOVA_WEBHOOK_ATTEMPT_RETENTION", default_value = "720h", value_parser = parse_duration)]
    pub attempt_retention: Duration,
}

impl Default for WebhookConfig {
    /// The documented defaults (what the variables give when unset).
    fn default() -> Self {
        Self {
            allow_private: false,
            allowed_cidrs: Vec::new(),
            timeout: Duration::from_secs(10),
            concurrency: 16,
            max_age: Duration::from_secs(24 * 3600),
            retry_min: Duration::from_secs(10),
            retry_max: Duration::from_secs(3600),
            disable_failures: 20,
            disable_after: Duration::from_secs(24 * 3600),
            poll_interval: Duration::from_secs(1),
            secret_grace: Duration::from_secs(24 * 3600),
            attempt_retention: Duration::from_secs(720 * 3600),
        }
    }
}

/// Accepts a Redis prefix without braces (they would move the keys' hash tag).
fn parse_prefix(prefix: &str) -> Result<String, ConfigError> {
    if prefix.contains(['{', '}']) {
        Err(ConfigError::invalid(
            "NOVA_REDIS_PREFIX",
            "must not contain { or } (every key of a stream carries a {hash tag})",
        ))
    } else {
        Ok(prefix.to_owned())
    }
}

impl Config {
    /// Reads flags and environment, then checks what clap cannot. Errors name the
    /// variable and never echo a secret. `--help` and `--version` print to stdout
    /// and exit 0; a flag clap cannot parse prints usage to stderr and exits 2.
    pub fn load() -> Result<Self, TokenError> {
        let config = Self::try_parse().unwrap_or_else(|e| e.exit());
        if !config.migrate_only {
            config.service_tokens()?;
        }
        Ok(config)
    }

    /// Returns the remux worker's settings.
    pub fn remux(&self) -> crate::service::remux::RemuxSettings {
        crate::service::remux::RemuxSettings {
            attempts: self.remux_attempts,
            lease: self.remux_lease.max(Duration::from_millis(300)),
            wait: self.recording_wait,
            dir: self
                .remux_dir
                .clone()
                .unwrap_or_else(|| std::env::temp_dir().join("nova-remux")),
            timeout: self.remux_timeout,
            ffmpeg: self.ffmpeg.clone(),
            poll: Duration::from_secs(1),
            retention: self.asset_retention.filter(|r| !r.is_zero()),
        }
    }

    /// Returns the accepted service tokens and their roles, or why one of the token
    /// variables is unusable.
    pub fn service_tokens(&self) -> Result<ServiceTokens, TokenError> {
        ServiceTokens::parse(
            self.service_token
                .as_ref()
                .ok_or(TokenError::Missing("NOVA_SERVICE_TOKEN"))?,
            self.edge_service_token.as_ref(),
            self.ingest_service_token.as_ref(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_tokens_are_read_from_their_variables() {
        let config = Config::try_parse_from([
            "nova-control-plane",
            "--service-token",
            "admin-token-0123456789",
            "--edge-service-token",
            "admin-token-0123456789",
        ])
        .unwrap();
        let err = config.service_tokens().err().unwrap();
        assert_eq!(
            err.to_string(),
            "NOVA_SERVICE_TOKEN and NOVA_EDGE_SERVICE_TOKEN share a token: give each service its own"
        );
    }

    #[test]
    fn a_redis_prefix_with_braces_is_refused() {
        let err = Config::try_parse_from(["nova-control-plane", "--redis-prefix", "nova{x}"])
            .unwrap_err();
        assert!(err.to_string().contains("must not contain { or }"), "{err}");
    }

    #[test]
    fn webhook_defaults_match_the_documented_ones() {
        let parsed = Config::try_parse_from(["nova-control-plane"])
            .unwrap()
            .webhooks;
        let documented = WebhookConfig::default();
        assert_eq!(format!("{parsed:?}"), format!("{documented:?}"));
        let config = Config::try_parse_from([
            "nova-control-plane",
            "--webhook-allowed-cidrs",
            "10.1.0.0/16,fd00::/8",
            "--webhook-allow-private",
        ])
        .unwrap();
        assert_eq!(config.webhooks.allowed_cidrs.len(), 2);
        assert!(config.webhooks.allow_private);
    }

    #[test]
    fn debug_output_hides_secrets() {
        let config = Config::try_parse_from([
            "nova-control-plane",
            "--service-token",
            "super-secret-token-123",
            "--database-url",
            "postgres://u:pw@127.0.0.1/db",
        ])
        .unwrap();
        let shown = format!("{config:?}");
        assert!(!shown.contains("super-secret-token-123"), "{shown}");
        assert!(!shown.contains("pw@"), "{shown}");
    }
}
