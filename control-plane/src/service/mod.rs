//! The rules of the control plane, independent of gRPC: each module owns one
//! resource and uses `db` for storage.

pub mod status;
pub mod streams;

pub use status::StreamStatus;
