//! Events as stored in the durable log, serialised to the `kind` and `payload`
//! columns: [`Event`], the lifecycle that watchers (WatchEvents, WebSockets) see, and
//! [`Notice`], what is logged for webhooks only (a stream created or its key rotated,
//! in `stream_events`; a webhook endpoint disabled, in `account_events`).

use diesel_async::AsyncPgConnection;
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use uuid::Uuid;

use crate::{db::events, error::Result};

/// Playback addresses carried by `stream_started`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Playback {
    /// HLS media playlist.
    pub hls_url: String,
    /// DASH manifest.
    pub dash_url: String,
    /// HLS master playlist; empty without ABR.
    #[serde(default)]
    pub hls_master_url: String,
}

impl Playback {
    /// The URLs as the stream row stores them (no master playlist without ABR).
    pub fn as_stored(&self) -> crate::db::streams::PlaybackUrls<'_> {
        crate::db::streams::PlaybackUrls {
            hls: &self.hls_url,
            dash: &self.dash_url,
            hls_master: Some(self.hls_master_url.as_str()).filter(|m| !m.is_empty()),
        }
    }
}

/// One rendition, as carried by `quality_changed` and ingest health.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rendition {
    /// Name, e.g. `src`, `360p`.
    pub name: String,
    /// Width in pixels.
    pub width: i32,
    /// Height in pixels.
    pub height: i32,
    /// Bitrate in kb/s.
    pub bitrate_kbps: i64,
}

/// What happened to a stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// A broadcaster went live (first publish or resume).
    StreamStarted {
        /// True when an interrupted stream resumed.
        resumed: bool,
        /// Where to watch.
        playback: Playback,
    },
    /// The broadcaster left (`interrupted`) or the stream completed (`completed`).
    StreamEnded {
        /// State after the event.
        status: String,
        /// Why: `ended_by_owner`, `publisher_disconnected`, `ingest_lost`,
        /// `reconnect_window_closed`.
        reason: String,
    },
    /// The renditions or source quality changed.
    QualityChanged {
        /// Renditions now produced.
        renditions: Vec<Rendition>,
    },
    /// A recording of the stream became a READY asset.
    AssetReady {
        /// The asset.
        asset_id: uuid::Uuid,
        /// Playing time, milliseconds.
        duration_ms: i64,
        /// Bytes stored.
        size_bytes: i64,
    },
    /// A recording of the stream could not be made into an asset.
    AssetErrored {
        /// The asset.
        asset_id: uuid::Uuid,
        /// Why; never holds a stream key.
        reason: String,
    },
}

impl Event {
    /// Returns the `kind` column value.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::StreamStarted { .. } => "stream_started",
            Self::StreamEnded { .. } => "stream_ended",
            Self::QualityChanged { .. } => "quality_changed",
            Self::AssetReady { .. } => "asset_ready",
            Self::AssetErrored { .. } => "asset_errored",
        }
    }

    /// Returns the `payload` column value: the event's fields without the tag.
    pub fn payload(&self) -> serde_json::Value {
        untagged(self)
    }

    /// Rebuilds an event from its stored columns; `None` for unknown kinds.
    pub fn from_stored(kind: &str, payload: &serde_json::Value) -> Option<Self> {
        tagged(kind, payload)
    }

    /// Builds a `stream_ended` event.
    pub fn ended(status: super::StreamStatus, reason: &str) -> Self {
        Self::StreamEnded {
            status: status.as_db().to_owned(),
            reason: reason.to_owned(),
        }
    }
}

/// What is logged for webhooks only: never sent to stream watchers, which skip the
/// kinds they do not know.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Notice {
    /// A stream was created (`stream_events`).
    StreamCreated {
        /// Its title.
        title: String,
        /// Its playback policy, as stored (`public`, `signed`).
        playback_policy: String,
        /// Its viewer cap, if any.
        max_viewers: Option<i32>,
    },
    /// A stream's key was replaced (`stream_events`); the key is never logged.
    StreamKeyRotated,
    /// A webhook endpoint was disabled after a run of failed deliveries
    /// (`account_events`).
    WebhookDisabled {
        /// The endpoint.
        webhook_id: Uuid,
        /// Consecutive failed attempts when it was disabled.
        failures: i32,
    },
}

impl Notice {
    /// Returns the `kind` column value.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::StreamCreated { .. } => "stream_created",
            Self::StreamKeyRotated => "stream_key_rotated",
            Self::WebhookDisabled { .. } => "webhook_disabled",
        }
    }

    /// Returns the `payload` column value: the notice's fields without the tag.
    pub fn payload(&self) -> serde_json::Value {
        untagged(self)
    }

    /// Rebuilds a notice from its stored columns; `None` for other kinds.
    pub fn from_stored(kind: &str, payload: &serde_json::Value) -> Option<Self> {
        tagged(kind, payload)
    }

    /// Logs a notice about stream `stream_id`; call it inside the change's transaction.
    pub async fn log_for_stream(
        &self,
        conn: &mut AsyncPgConnection,
        stream_id: Uuid,
    ) -> Result<()> {
        events::append(conn, stream_id, self.kind(), self.payload()).await?;
        Ok(())
    }

    /// Logs a notice about `owner`'s account; call it inside the change's transaction.
    pub async fn log_for_account(&self, conn: &mut AsyncPgConnection, owner: &str) -> Result<()> {
        events::append_account(conn, owner, self.kind(), self.payload()).await?;
        Ok(())
    }
}

/// Serialises an internally tagged enum and drops its `type` tag (the `kind` column).
fn untagged<T: Serialize>(value: &T) -> serde_json::Value {
    let mut value = serde_json::to_value(value).unwrap_or_default();
    if let Some(map) = value.as_object_mut() {
        map.remove("type");
    }
    value
}

/// Rebuilds an internally tagged enum from its `kind` and `payload` columns.
fn tagged<T: DeserializeOwned>(kind: &str, payload: &serde_json::Value) -> Option<T> {
    let mut value = payload.clone();
    value
        .as_object_mut()?
        .insert("type".into(), serde_json::Value::String(kind.into()));
    serde_json::from_value(value).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_round_trip_and_are_not_lifecycle_events() {
        let notices = [
            Notice::StreamCreated {
                title: "t".into(),
                playback_policy: "public".into(),
                max_viewers: None,
            },
            Notice::StreamKeyRotated,
            Notice::WebhookDisabled {
                webhook_id: Uuid::now_v7(),
                failures: 3,
            },
        ];
        for notice in notices {
            let payload = notice.payload();
            assert!(payload.get("type").is_none());
            assert_eq!(
                Notice::from_stored(notice.kind(), &payload),
                Some(notice.clone())
            );
            assert_eq!(Event::from_stored(notice.kind(), &payload), None);
        }
        assert_eq!(Notice::StreamKeyRotated.payload(), serde_json::json!({}));
    }

    #[test]
    fn events_round_trip_through_their_columns() {
        let events = [
            Event::StreamStarted {
                resumed: true,
                playback: Playback {
                    hls_url: "http://o/hls/x.m3u8".into(),
                    dash_url: "http://o/dash/x.mpd".into(),
                    hls_master_url: String::new(),
                },
            },
            Event::ended(super::super::StreamStatus::Completed, "ended_by_owner"),
            Event::QualityChanged {
                renditions: vec![Rendition {
                    name: "src".into(),
                    width: 320,
                    height: 180,
                    bitrate_kbps: 300,
                }],
            },
            Event::AssetReady {
                asset_id: uuid::Uuid::now_v7(),
                duration_ms: 20_000,
                size_bytes: 1_000_000,
            },
            Event::AssetErrored {
                asset_id: uuid::Uuid::now_v7(),
                reason: "no recording arrived".into(),
            },
        ];
        for event in events {
            let payload = event.payload();
            assert!(payload.get("type").is_none());
            assert_eq!(Event::from_stored(event.kind(), &payload), Some(event));
        }
        assert_eq!(Event::from_stored("nope", &serde_json::json!({})), None);
    }
}

/// An event as written to the log: its position, stream and time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredEvent {
    /// Position in the log (the resume cursor).
    pub cursor: i64,
    /// Stream it belongs to.
    pub stream_id: uuid::Uuid,
    /// When it was written.
    pub at: chrono::DateTime<chrono::Utc>,
    /// What happened.
    pub event: Event,
}

impl StoredEvent {
    /// Rebuilds an event from its log row; `None` for unknown kinds.
    pub fn from_row(row: crate::db::events::EventRow) -> Option<Self> {
        Some(Self {
            event: Event::from_stored(&row.kind, &row.payload)?,
            cursor: row.id,
            stream_id: row.stream_id,
            at: row.created_at,
        })
    }
}

/// What a transaction did that others must hear of once it commits: the events it
/// logged, and how long each stream it completed was live.
#[derive(Debug, Default)]
pub struct Outbox {
    /// Logged events, in order.
    pub events: Vec<StoredEvent>,
    /// Live durations of completed streams.
    pub completed: Vec<std::time::Duration>,
}

impl Outbox {
    /// Returns an empty outbox.
    pub fn new() -> Self {
        Self::default()
    }
}
