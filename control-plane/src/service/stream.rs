//! The stream as the rules hand it upward: a typed status, policy and ingest
//! health, the playback URLs of its current broadcast, and only the publishing node
//! that is publishing now. Built from its row in one place ([`Stream::from_row`]) and
//! converted to protos by `grpc`; the key hash and the connection bookkeeping stay
//! below, in the row.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{
    db::streams::StreamRow,
    service::{PlaybackPolicy, StreamStatus, events::Playback, health::Health},
};

/// One stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Stream {
    /// Public id.
    pub id: Uuid,
    /// Owning principal.
    pub owner: String,
    /// Title.
    pub title: String,
    /// Lifecycle state.
    pub status: StreamStatus,
    /// When the current key was issued.
    pub key_issued_at: DateTime<Utc>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// First publish.
    pub started_at: Option<DateTime<Utc>>,
    /// Completion.
    pub ended_at: Option<DateTime<Utc>>,
    /// End of the reconnect window while INTERRUPTED.
    pub reconnect_deadline: Option<DateTime<Utc>>,
    /// Ingest node publishing the stream; `None` unless ACTIVE (an interrupted stream
    /// may remember its lost connection, but nobody is publishing).
    pub ingest_node: Option<String>,
    /// Where the last broadcast plays; `None` before the first publish.
    pub playback: Option<Playback>,
    /// Latest ingest health reading, if any was stored and still reads.
    pub ingest_health: Option<Health>,
    /// Who may play it.
    pub playback_policy: PlaybackPolicy,
    /// Cap on concurrent viewers.
    pub max_viewers: Option<i32>,
    /// Whether broadcasts are recorded into assets.
    pub record: bool,
}

impl Stream {
    /// Builds the stream from its stored row.
    pub fn from_row(row: StreamRow) -> Self {
        let status = StreamStatus::from_db(&row.status);
        let playback = row.hls_url.map(|hls_url| Playback {
            hls_url,
            dash_url: row.dash_url.unwrap_or_default(),
            hls_master_url: row.hls_master_url.unwrap_or_default(),
        });
        Self {
            id: row.id,
            owner: row.owner,
            title: row.title,
            status,
            key_issued_at: row.key_issued_at,
            created_at: row.created_at,
            updated_at: row.updated_at,
            started_at: row.started_at,
            ended_at: row.ended_at,
            reconnect_deadline: row.reconnect_deadline,
            ingest_node: row.ingest_node.filter(|_| status == StreamStatus::Active),
            playback,
            ingest_health: row
                .ingest_health
                .and_then(|value| serde_json::from_value(value).ok()),
            playback_policy: PlaybackPolicy::from_db(&row.playback_policy),
            max_viewers: row.max_viewers,
            record: row.record,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(status: StreamStatus) -> StreamRow {
        let now = Utc::now();
        StreamRow {
            id: Uuid::now_v7(),
            owner: "alice".into(),
            title: "t".into(),
            status: status.as_db().into(),
            key_hash: vec![0; 32],
            key_issued_at: now,
            created_at: now,
            updated_at: now,
            started_at: None,
            ended_at: None,
            reconnect_deadline: None,
            ingest_node: Some("ingest-0".into()),
            last_ingest_at: None,
            hls_url: None,
            dash_url: None,
            hls_master_url: None,
            ingest_health: Some(serde_json::json!({"not": "health"})),
            ingest_client: Some("7".into()),
            playback_policy: PlaybackPolicy::Signed.as_db().into(),
            max_viewers: Some(10),
            record: false,
        }
    }

    #[test]
    fn only_an_active_stream_names_its_node() {
        let active = Stream::from_row(row(StreamStatus::Active));
        assert_eq!(active.status, StreamStatus::Active);
        assert_eq!(active.ingest_node.as_deref(), Some("ingest-0"));
        assert_eq!(active.playback_policy, PlaybackPolicy::Signed);
        let interrupted = Stream::from_row(row(StreamStatus::Interrupted));
        assert_eq!(interrupted.ingest_node, None);
    }

    #[test]
    fn playback_needs_an_hls_url_and_unreadable_health_is_none() {
        let mut stored = row(StreamStatus::Active);
        let stream = Stream::from_row(stored.clone());
        assert_eq!(stream.playback, None);
        assert_eq!(stream.ingest_health, None);
        stored.hls_url = Some("http://o/hls/x.m3u8".into());
        let stream = Stream::from_row(stored);
        let playback = stream.playback.unwrap();
        assert_eq!(playback.hls_url, "http://o/hls/x.m3u8");
        assert_eq!(playback.dash_url, "");
        assert_eq!(playback.hls_master_url, "");
    }
}
