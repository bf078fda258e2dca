//! Viewer-session rules: who may join what, batched heartbeats, idempotent leaves,
//! and the viewer figures of a stream. Storage is [`crate::redis::sessions`].

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{
    db::DbPool,
    error::{Error, Result},
    redis::sessions::{Figures, NewSession, SessionStore, new_session_id, now_ms},
    service::{StreamStatus, stream_cache::StreamCache},
};

/// Most sessions one Heartbeat call may carry.
pub const MAX_HEARTBEAT_BATCH: usize = 10_000;

/// Most streams one BatchGetViewerCounts call may name.
pub const MAX_COUNT_BATCH: usize = 1_000;

/// How a viewer watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViewerKind {
    /// Browser on the edge.
    Web,
    /// RTMP player on nginx.
    Rtmp,
    /// HLS/DASH player authorised at a media origin by a playback token.
    Playback,
}

impl ViewerKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Web => "web",
            Self::Rtmp => "rtmp",
            Self::Playback => "playback",
        }
    }
}

/// A started session.
#[derive(Debug, Clone)]
pub struct Joined {
    /// Session id.
    pub session_id: String,
    /// Expiry unless heartbeated.
    pub expire_at: DateTime<Utc>,
    /// Live viewers including this one.
    pub count: i64,
    /// The stream's peak of live viewers, this one included.
    pub peak: i64,
}

/// Session operations.
#[derive(Clone)]
pub struct Sessions {
    /// PostgreSQL, to check the stream.
    pool: DbPool,
    /// Redis sessions.
    store: SessionStore,
    /// Recently read stream rows.
    cache: StreamCache,
}

impl Sessions {
    /// Builds the service.
    pub fn new(pool: DbPool, store: SessionStore, cache: StreamCache) -> Self {
        Self { pool, store, cache }
    }

    /// Returns the session store (for the sampler and sweeper).
    pub fn store(&self) -> &SessionStore {
        &self.store
    }

    /// Starts a session on a stream that exists and has not completed. A playback
    /// (token) session on a stream with a viewer cap is started only while the
    /// stream has fewer live viewers than the cap, in the same Redis script that
    /// counts them; otherwise nothing is recorded and the call is
    /// `ResourceExhausted`.
    pub async fn join(
        &self,
        stream_id: Uuid,
        viewer_id: &str,
        kind: ViewerKind,
        node: &str,
    ) -> Result<Joined> {
        if viewer_id.len() > 128 {
            return Err(Error::invalid(
                "viewer_id",
                "must be at most 128 characters",
            ));
        }
        if node.is_empty() || node.len() > 128 {
            return Err(Error::invalid("node", "must be 1 to 128 characters"));
        }
        let row = self
            .cache
            .get(&self.pool, stream_id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("streams/{stream_id}")))?;
        if row.status == StreamStatus::Completed {
            return Err(Error::FailedPrecondition("the stream has completed".into()));
        }
        let session_id = new_session_id(stream_id);
        let viewer = if viewer_id.is_empty() {
            session_id.as_str()
        } else {
            viewer_id
        };
        let stream = stream_id.to_string();
        let cap = match kind {
            ViewerKind::Playback => row.max_viewers.filter(|n| *n > 0),
            ViewerKind::Web | ViewerKind::Rtmp => None,
        };
        let (count, peak) = self
            .store
            .join(&NewSession {
                session_id: &session_id,
                stream_id: &stream,
                viewer_id: viewer,
                kind: kind.as_str(),
                node,
                max: cap.map_or(0, i64::from),
            })
            .await?
            .ok_or_else(|| {
                Error::ResourceExhausted(format!(
                    "the stream has its maximum of {} viewers; retry later",
                    cap.unwrap_or_default()
                ))
            })?;
        Ok(Joined {
            session_id,
            expire_at: self.expiry(),
            count,
            peak,
        })
    }

    /// Keeps sessions alive; returns the ones already gone and the new expiry.
    pub async fn heartbeat(&self, session_ids: &[String]) -> Result<(Vec<String>, DateTime<Utc>)> {
        if session_ids.len() > MAX_HEARTBEAT_BATCH {
            return Err(Error::invalid(
                "session_ids",
                format!("at most {MAX_HEARTBEAT_BATCH} per call"),
            ));
        }
        if session_ids.iter().any(|id| id.is_empty() || id.len() > 64) {
            return Err(Error::invalid(
                "session_ids",
                "each must be 1 to 64 characters",
            ));
        }
        if session_ids.is_empty() {
            return Ok((Vec::new(), self.expiry()));
        }
        let expired = self.store.heartbeat(session_ids).await?;
        Ok((expired, self.expiry()))
    }

    /// Ends a session (unknown or already ended: no-op); returns the stream's count.
    pub async fn leave(&self, session_id: &str) -> Result<i64> {
        if session_id.is_empty() || session_id.len() > 64 {
            return Err(Error::invalid("session_id", "must be 1 to 64 characters"));
        }
        Ok(self.store.leave(session_id).await?.1)
    }

    /// Returns the viewer figures of an existing stream.
    pub async fn figures(&self, stream_id: Uuid) -> Result<Figures> {
        self.cache
            .get(&self.pool, stream_id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("streams/{stream_id}")))?;
        Ok(self.store.figures(&stream_id.to_string()).await?)
    }

    /// Returns the live count and peak of each stream, in order, in one Redis round
    /// trip and without reading the database (unknown streams report zeros).
    pub async fn counts(&self, stream_ids: &[Uuid]) -> Result<Vec<(i64, i64)>> {
        if stream_ids.len() > MAX_COUNT_BATCH {
            return Err(Error::invalid(
                "names",
                format!("at most {MAX_COUNT_BATCH} per call"),
            ));
        }
        let ids: Vec<String> = stream_ids.iter().map(Uuid::to_string).collect();
        Ok(self.store.counts(&ids).await?)
    }

    fn expiry(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(now_ms() + self.store.ttl_ms()).unwrap_or_else(Utc::now)
    }
}
