//! The rules of the control plane, independent of gRPC: each module owns one
//! resource and uses `db` for storage.

pub mod events;
pub mod ingest;
pub mod lifecycle;
pub mod reaper;
pub mod status;
pub mod streams;

pub use status::StreamStatus;
