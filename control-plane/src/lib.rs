//! Nova Streaming control plane: the tonic gRPC core.
//!
//! `grpc` adapts requests to the rules in `service`, which store state through `db`
//! (diesel-async over PostgreSQL) and keep what is live in `redis` (sessions,
//! counters, pub/sub fan-out between replicas). `auth` checks the service token, holds
//! each caller's role to its method allowlist and names the calling principal; `error`
//! maps every failure to a `tonic::Status` once. `health` probes Redis, whose absence
//! degrades sessions and counts but not publishing. `server` wires it all and is what
//! `main.rs` and the tests start.

pub mod auth;
pub mod config;
pub mod db;
pub mod error;
pub mod grpc;
pub mod health;
pub mod keys;
pub mod metrics;
pub mod redis;
pub mod server;
pub mod service;
pub mod state;

pub use config::Config;
pub use nova_runtime::{shutdown, telemetry};
pub use server::{ControlPlane, start};
