//! What every Nova Streaming binary shares: `shutdown` (one signal fanned out to
//! every task), `telemetry` (tracing set-up), `metrics` (Prometheus through
//! OpenTelemetry, RED instruments), `grpc` (endpoints with TLS, the service-token
//! interceptor), `http` (the one HTTP/1.1 server with header-read and idle
//! timeouts every listener uses), and `config` (value types such as secrets that never
//! print and durations like `250ms`, and the control-plane and log settings several
//! binaries flatten into their configs).

pub mod config;
pub mod grpc;
pub mod http;
pub mod metrics;
pub mod shutdown;
pub mod telemetry;

pub use config::{
    ConfigError, LogArgs, LogFormat, MIN_TOKEN_LEN, Secret, UpstreamArgs, parse_duration,
};

/// An error and its causes on one line ("error performing TLS handshake: invalid peer
/// certificate: …"); many libraries keep the reason in the source chain.
pub fn causes(err: &dyn std::error::Error) -> String {
    let mut line = err.to_string();
    let mut cause = err.source();
    while let Some(c) = cause {
        line.push_str(": ");
        line.push_str(&c.to_string());
        cause = c.source();
    }
    line
}
