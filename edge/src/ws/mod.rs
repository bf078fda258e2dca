//! Live events for browsers. `watch` keeps one upstream WatchEvents per edge process,
//! reconnecting with backoff and resuming after the last delivered cursor (`resume`
//! decides what is news); `hub` fans each event out as one serialised frame shared
//! by every socket of its stream; `queue` is the bounded per-socket queue (stale
//! counts are dropped, lifecycle events never; too far behind closes the socket);
//! `sessions` joins, heartbeats (one batched call per edge) and leaves viewer
//! sessions, the joins of sockets opening together sent together (`joins`); `slots` caps the sockets of one edge and of one client; `origin` is the
//! optional Origin allowlist; `setup` opens a socket (one JoinSession, the stream
//! read shared with the sockets opening on it, a bounded number of sockets at once,
//! transient failures retried); `socket`
//! serves one WebSocket.

pub mod hub;
pub mod joins;
pub mod origin;
pub mod queue;
pub mod resume;
pub mod sessions;
pub mod setup;
pub mod slots;
pub mod socket;
pub mod watch;
