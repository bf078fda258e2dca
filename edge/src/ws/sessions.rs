//! The viewer sessions of this edge's sockets: joined on open, left on close, and
//! renewed together in one batched Heartbeat call per interval. If the control plane
//! reports sessions gone (say Redis was flushed), they are all rejoined within that
//! interval in bulk: found in one pass under the lock, then one BatchJoinSessions
//! call per [`joins::MAX_BATCH`] sockets (see [`joins::ask`]).

use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use std::net::IpAddr;

use futures::StreamExt;
use sha2::{Digest, Sha256};

use nova_proto::v1::{
    HeartbeatRequest, JoinSessionRequest, JoinSessionResponse, LeaveSessionRequest, Stream,
    ViewerKind,
};
use nova_runtime::shutdown;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::Status;

use crate::{
    cache::AnswerCache,
    ratelimit::client_key,
    upstream::Upstream,
    ws::joins::{self, Joins},
};

/// Sessions per Heartbeat call (the control plane's cap).
const HEARTBEAT_BATCH: usize = 10_000;
/// Retried LeaveSession calls in flight at once.
const LEAVE_CONCURRENCY: usize = 64;
/// Failed leaves kept for retrying; beyond that, sessions are left to expire.
const MAX_UNLEFT: usize = 100_000;
/// Most streams whose read the sockets share at once (see [`ViewerSessions::streams`]).
const STREAM_KEYS: usize = 10_000;

/// One socket's session.
#[derive(Debug, Clone)]
struct Entry {
    /// Current session id.
    session_id: String,
    /// Stream resource name.
    stream: String,
    /// Viewer id for unique counting.
    viewer: String,
}

/// Sessions of this edge.
#[derive(Clone)]
pub struct ViewerSessions {
    /// Control plane.
    upstream: Upstream,
    /// The sockets' joins, coalesced.
    joins: Joins,
    /// This edge's id.
    node: String,
    /// Socket handle → its session.
    entries: Arc<Mutex<HashMap<u64, Entry>>>,
    /// Next socket handle.
    next: Arc<AtomicU64>,
    /// Sessions of closed sockets whose LeaveSession failed, retried each heartbeat.
    unleft: Arc<Mutex<Vec<String>>>,
    /// Places for sockets making their set-up calls (see `ws::setup`).
    setups: Arc<Semaphore>,
    /// The streams sockets open on, read once per lifecycle generation and interval.
    streams: AnswerCache<Stream, Status>,
    /// Key of the viewer-id hash (derived from the service token, so every edge of a
    /// deployment derives the same id for a client and nobody else can).
    viewer_key: [u8; 32],
}

impl ViewerSessions {
    /// Builds the registry; `secret` keys the viewer ids this edge derives; a
    /// stream read for a socket's snapshot is shared for at most `stream_ttl`.
    pub fn new(upstream: Upstream, node: String, secret: &str, stream_ttl: Duration) -> Self {
        let viewer_key = Sha256::new()
            .chain_update(b"nova viewer id v1\0")
            .chain_update(secret.as_bytes())
            .finalize()
            .into();
        Self {
            joins: Joins::new(upstream.clone()),
            upstream,
            node,
            entries: Arc::default(),
            next: Arc::default(),
            unleft: Arc::default(),
            setups: Arc::new(Semaphore::new(crate::ws::setup::SETUP_CONCURRENCY)),
            streams: AnswerCache::new(stream_ttl, STREAM_KEYS),
            viewer_key,
        }
    }

    /// Returns the viewer id of the client at `ip` (its IPv4 address or IPv6 /64,
    /// hashed with a secret key): chosen by the edge, never by the client, so
    /// unique-viewer counts cannot be inflated beyond the addresses a client holds,
    /// and the address itself is not stored.
    pub fn viewer_id(&self, ip: IpAddr) -> String {
        let key = match client_key(ip) {
            IpAddr::V4(v4) => v4.octets().to_vec(),
            IpAddr::V6(v6) => v6.octets().to_vec(),
        };
        let digest = Sha256::new()
            .chain_update(self.viewer_key)
            .chain_update(key)
            .finalize();
        digest[..16].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Waits for one of the places of sockets making their set-up calls; the place
    /// is freed when the permit drops. (`None` only if the semaphore were closed,
    /// which it never is.)
    pub async fn setup_place(&self) -> Option<OwnedSemaphorePermit> {
        self.setups.clone().acquire_owned().await.ok()
    }

    /// The streams sockets open on, shared by the sockets that register within one
    /// lifecycle generation of the hub (key `<name>@<generation>`, see
    /// `Hub::generation`) and `NOVA_STREAM_CACHE`: a crowd opening on one stream
    /// costs one GetStream, and no socket's snapshot misses a lifecycle event.
    pub fn streams(&self) -> &AnswerCache<Stream, Status> {
        &self.streams
    }

    /// Joins `stream` as `viewer` (in one call with the sockets opening meanwhile,
    /// see [`Joins`]); returns the socket's handle and the control plane's answer
    /// (the new count and peak).
    pub async fn join(
        &self,
        stream: &str,
        viewer: &str,
    ) -> Result<(u64, JoinSessionResponse), Status> {
        let answer = self.joins.join(self.join_request(stream, viewer)).await?;
        let session_id = answer.session_id.clone();
        let handle = self.next.fetch_add(1, Ordering::Relaxed);
        self.lock().insert(
            handle,
            Entry {
                session_id,
                stream: stream.to_owned(),
                viewer: viewer.to_owned(),
            },
        );
        Ok((handle, answer))
    }

    /// Leaves the session of socket `handle`.
    pub async fn leave(&self, handle: u64) {
        let Some(entry) = self.lock().remove(&handle) else {
            return;
        };
        self.leave_upstream(entry.session_id).await;
    }

    /// Ends `session_id` at the control plane; when it cannot be reached, keeps the
    /// id to retry at the next heartbeat, so a viewer who left during an outage stops
    /// counting soon after the control plane is back rather than at session expiry.
    async fn leave_upstream(&self, session_id: String) {
        let request = LeaveSessionRequest {
            session_id: session_id.clone(),
        };
        if let Err(status) = self.upstream.sessions.clone().leave_session(request).await {
            let mut unleft = self.unleft.lock().unwrap_or_else(|p| p.into_inner());
            if unleft.len() < MAX_UNLEFT {
                tracing::debug!(grpc.code = ?status.code(), "leaving a session failed; retrying at the next heartbeat");
                unleft.push(session_id);
            } else {
                tracing::warn!(grpc.code = ?status.code(), "leaving a session failed; it will expire by itself");
            }
        }
    }

    /// Retries the leaves that failed, concurrently.
    async fn retry_leaves(&self) {
        let unleft = std::mem::take(&mut *self.unleft.lock().unwrap_or_else(|p| p.into_inner()));
        futures::stream::iter(unleft)
            .for_each_concurrent(LEAVE_CONCURRENCY, |id| self.leave_upstream(id))
            .await;
    }

    /// Returns how many sessions are open.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Tells whether no session is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Renews every session each `interval` until shutdown.
    pub async fn run_heartbeats(self, interval: Duration, stop: shutdown::Signal) {
        let mut ticker = shutdown::Ticker::new(interval, stop);
        while ticker.tick().await {
            self.heartbeat_once().await;
        }
    }

    async fn heartbeat_once(&self) {
        self.retry_leaves().await;
        let session_ids: Vec<String> = self.lock().values().map(|e| e.session_id.clone()).collect();
        for batch in session_ids.chunks(HEARTBEAT_BATCH) {
            let request = HeartbeatRequest {
                session_ids: batch.to_vec(),
            };
            match self.upstream.sessions.clone().heartbeat(request).await {
                Ok(answer) => self.rejoin(answer.into_inner().expired_session_ids).await,
                Err(status) => {
                    tracing::warn!(grpc.code = ?status.code(), "session heartbeat failed; retrying next interval")
                }
            }
        }
    }

    /// Rejoins the sessions the control plane reported gone (Redis flushed, or the
    /// control plane lost them), all of them in this interval: the sockets are found
    /// in one pass under the lock, then rejoined with one BatchJoinSessions call per
    /// [`joins::MAX_BATCH`] outside it.
    async fn rejoin(&self, gone: Vec<String>) {
        if gone.is_empty() {
            return;
        }
        let gone: HashSet<String> = gone.into_iter().collect();
        let found: Vec<(u64, Entry)> = self
            .lock()
            .iter()
            .filter(|(_, e)| gone.contains(&e.session_id))
            .map(|(h, e)| (*h, e.clone()))
            .collect();
        tracing::info!(
            sessions.gone = gone.len(),
            sessions.rejoining = found.len(),
            "rejoining viewer sessions the control plane lost"
        );
        for batch in found.chunks(joins::MAX_BATCH) {
            let requests = batch
                .iter()
                .map(|(_, entry)| self.join_request(&entry.stream, &entry.viewer))
                .collect();
            let mut failed = None;
            for ((handle, _), answer) in
                batch.iter().zip(joins::ask(&self.upstream, requests).await)
            {
                match answer {
                    Ok(joined) => self.replace_session(*handle, joined.session_id).await,
                    Err(status) => {
                        failed.get_or_insert((0, status)).0 += 1;
                    }
                }
            }
            if let Some((n, status)) = failed {
                tracing::warn!(grpc.code = ?status.code(), sessions = n, "rejoining expired sessions failed; retrying next interval");
            }
        }
    }

    /// Records a socket's rejoined session; when the socket closed meanwhile, leaves
    /// the new session at once so it is not counted until it expires.
    async fn replace_session(&self, handle: u64, session_id: String) {
        let orphan = match self.lock().get_mut(&handle) {
            Some(entry) => {
                entry.session_id = session_id;
                None
            }
            None => Some(session_id),
        };
        if let Some(session_id) = orphan {
            let request = LeaveSessionRequest { session_id };
            let _ = self.upstream.sessions.clone().leave_session(request).await;
        }
    }

    /// The JoinSession request of a socket of this edge on `stream` as `viewer`.
    fn join_request(&self, stream: &str, viewer: &str) -> JoinSessionRequest {
        JoinSessionRequest {
            name: stream.to_owned(),
            viewer_id: viewer.to_owned(),
            kind: ViewerKind::Web.into(),
            node: self.node.clone(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}
