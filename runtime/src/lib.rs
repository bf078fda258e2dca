//! What every Nova Streaming binary shares: `shutdown` (one signal fanned out to
//! every task), `telemetry` (tracing set-up), `metrics` (Prometheus through
//! OpenTelemetry, RED instruments), `grpc` (the service-token interceptor), and
//! `config` value types (secrets that never print, durations like `250ms`).

pub mod config;
pub mod grpc;
pub mod metrics;
pub mod shutdown;
pub mod telemetry;

pub use config::{LogFormat, Secret, parse_duration};
