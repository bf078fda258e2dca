//! The rules of the control plane, independent of gRPC: each module owns one
//! resource, uses `db` for storage and hands domain types upward (`stream`, the
//! stream built from its row; `health`, ingest health and its limits). `publish`
//! queues committed events for the replica's hub (`live`, whose lifecycle feed
//! `follow` reads the durable log) and for Redis pub/sub, and drops what it changed
//! from the `stream_cache`; `webhooks`
//! delivers the log to owners' endpoints. Recording: `recording` decides which
//! publishes are recorded and collects their pieces, `remux` turns them into assets
//! (`asset`, `assets`), and `garbage` deletes the store files nothing points at any
//! more.

pub mod analytics;
pub mod asset;
pub mod assets;
pub mod audit;
pub mod events;
pub mod follow;
pub mod garbage;
pub mod health;
pub mod ingest;
pub mod lifecycle;
pub mod live;
pub mod playback;
pub mod publish;
pub mod reaper;
pub mod recording;
pub mod remux;
pub mod sessions;
pub mod stream;
pub mod stream_cache;
pub mod streams;
pub mod title;
pub mod watch;
pub mod webhooks;

// The lifecycle state and the playback policy are defined beside the columns they are
// stored in (`db::status`, `db::policy`), each with its one mapping to the stored
// value, so that queries name states without string literals; here they are the
// service's domain types.
pub use crate::db::{
    policy::PlaybackPolicy,
    status::{AssetStatus, StreamStatus},
};
pub use stream::Stream;
