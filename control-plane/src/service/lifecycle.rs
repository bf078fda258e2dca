//! Lifecycle transitions. Each one updates the stream row and appends its event to the
//! durable log on the same connection; callers run them inside a transaction with
//! the row locked, so the log never disagrees with the state.

use chrono::{DateTime, Utc};
use diesel_async::AsyncPgConnection;
use uuid::Uuid;

use crate::{
    db::{
        events,
        streams::{self, Holder, StreamRow},
    },
    error::Result,
    service::{
        StreamStatus,
        events::{Event, Outbox, Playback, StoredEvent},
        recording,
    },
};

/// Why a stream stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// Its owner called EndStream.
    EndedByOwner,
    /// The broadcaster disconnected (on_publish_done).
    PublisherDisconnected,
    /// The ingest node stopped sending updates.
    IngestLost,
    /// The reconnect window closed without a republish.
    ReconnectWindowClosed,
}

impl EndReason {
    /// Returns the reason as it appears in events.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EndedByOwner => "ended_by_owner",
            Self::PublisherDisconnected => "publisher_disconnected",
            Self::IngestLost => "ingest_lost",
            Self::ReconnectWindowClosed => "reconnect_window_closed",
        }
    }
}

/// Makes a stream ACTIVE on `holder` (first publish, resume, or a takeover from a
/// silent holder) and logs `stream_started`, `resumed` unless it was PENDING.
pub async fn activate(
    conn: &mut AsyncPgConnection,
    out: &mut Outbox,
    row: &StreamRow,
    holder: Holder<'_>,
    playback: &Playback,
) -> Result<StreamRow> {
    let resumed = StreamStatus::from_db(&row.status) != StreamStatus::Pending;
    let updated = streams::activate(conn, row.id, holder, playback.as_stored()).await?;
    append(
        conn,
        out,
        row.id,
        Event::StreamStarted {
            resumed,
            playback: playback.clone(),
        },
    )
    .await?;
    Ok(updated)
}

/// Makes a stream INTERRUPTED with its reconnect window closing at `deadline`, and logs
/// `stream_ended` with status `interrupted`.
pub async fn interrupt(
    conn: &mut AsyncPgConnection,
    out: &mut Outbox,
    id: Uuid,
    deadline: DateTime<Utc>,
    reason: EndReason,
) -> Result<StreamRow> {
    // Only silence keeps the holder: its late heartbeat is the broadcaster still there.
    let keep_holder = matches!(reason, EndReason::IngestLost);
    let updated = streams::interrupt(conn, id, deadline, keep_holder).await?;
    let event = Event::ended(StreamStatus::Interrupted, reason.as_str());
    append(conn, out, id, event).await?;
    Ok(updated)
}

/// Makes a stream COMPLETED and logs `stream_ended` with status `completed`; a
/// recording of its broadcast is queued for remux (see [`recording`]).
pub async fn complete(
    conn: &mut AsyncPgConnection,
    out: &mut Outbox,
    id: Uuid,
    reason: EndReason,
) -> Result<StreamRow> {
    let updated = streams::complete(conn, id).await?;
    recording::queue_remux(conn, id).await?;
    let event = Event::ended(StreamStatus::Completed, reason.as_str());
    append(conn, out, id, event).await?;
    if let (Some(started), Some(ended)) = (updated.started_at, updated.ended_at) {
        out.completed
            .push((ended - started).to_std().unwrap_or_default());
    }
    tracing::info!(stream.id = %id, reason = reason.as_str(), "stream completed");
    Ok(updated)
}

/// Appends an event to the durable log and to `out`, for publishing after commit.
pub async fn append(
    conn: &mut AsyncPgConnection,
    out: &mut Outbox,
    id: Uuid,
    event: Event,
) -> Result<()> {
    let (cursor, at) = events::append(conn, id, event.kind(), event.payload()).await?;
    out.events.push(StoredEvent {
        cursor,
        stream_id: id,
        at,
        event,
    });
    Ok(())
}
