//! Nova Streaming ingest-hooks: nginx-rtmp's HTTP callbacks in, control-plane gRPC out.
//!
//! `routes` takes each kind of callback on its own URL (`POST /rtmp/publish`, …),
//! checks the shared secret and parses the form into one typed
//! [`callback::Callback`] that client arguments cannot steer; `hooks` answers each
//! kind, calling the control plane through `upstream`, with `budget` refusing
//! addresses that keep failing to publish and `outage` keeping admitted broadcasters
//! on air for a bounded grace while the control plane is out of reach; `stat` polls nginx `/stat` for ingest
//! health; `playback` answers nginx's `auth_request` for every HLS/DASH file and VOD
//! asset file; `recordings` hands the pieces nginx's recording application closes
//! over to the asset store and the control plane. `error` maps every failure to
//! the HTTP status nginx acts on.

pub mod budget;
pub mod callback;
pub mod config;
pub mod error;
pub mod hooks;
pub mod metrics;
pub mod outage;
pub mod playback;
pub mod recordings;
pub mod routes;
pub mod segments;
pub mod server;
pub mod stat;
pub mod state;
pub mod upstream;

pub use config::Config;
pub use nova_runtime::{shutdown, telemetry};
pub use server::{IngestHooks, start};
