//! Nova Streaming edge: REST and WebSocket for browsers, over the control plane.
//!
//! `routes` serves `/api/v1` (streams, metrics), health and the viewer page; `ws`
//! serves live events on WebSockets from one upstream WatchEvents per process;
//! `upstream` holds the gRPC clients; `auth` verifies bearer JWTs; `error` maps
//! every failure (gRPC codes included) to one JSON error shape.

pub mod auth;
pub mod cache;
pub mod config;
pub mod error;
pub mod extract;
#[cfg(test)]
mod fake_control_plane;
pub mod json;
pub mod malloc;
pub mod metrics;
pub mod ratelimit;
pub mod routes;
pub mod server;
pub mod state;
pub mod upstream;
pub mod ws;

pub use config::Config;
pub use nova_runtime::{shutdown, telemetry};
pub use server::{Edge, start};
