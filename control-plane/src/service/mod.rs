//! The rules of the control plane, independent of gRPC: each module owns one
//! resource and uses `db` for storage.

pub mod analytics;
pub mod events;
pub mod ingest;
pub mod lifecycle;
pub mod live;
pub mod reaper;
pub mod sessions;
pub mod status;
pub mod streams;
pub mod watch;

pub use status::StreamStatus;
