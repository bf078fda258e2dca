//! The rules of the control plane, independent of gRPC: each module owns one
//! resource and uses `db` for storage. `publish` queues committed events for the
//! replica's hub (`live`, whose lifecycle feed `follow` reads the durable log) and
//! for Redis pub/sub, and drops what it changed from the `stream_cache`; `webhooks`
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
pub mod ingest;
pub mod lifecycle;
pub mod live;
pub mod playback;
pub mod policy;
pub mod publish;
pub mod reaper;
pub mod recording;
pub mod remux;
pub mod sessions;
pub mod status;
pub mod stream_cache;
pub mod streams;
pub mod title;
pub mod watch;
pub mod webhooks;

pub use policy::PlaybackPolicy;
pub use status::StreamStatus;
