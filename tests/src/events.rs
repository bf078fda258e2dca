//! Reads the durable event log of a test database.

use diesel::sql_types::Text;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

/// One row of `stream_events`.
#[derive(Debug, Clone, PartialEq, Eq, diesel::QueryableByName)]
pub struct LoggedEvent {
    /// Event kind.
    #[diesel(sql_type = Text)]
    pub kind: String,
    /// Payload as compact JSON text.
    #[diesel(sql_type = Text)]
    pub payload: String,
}

/// Kinds of the events watchers see (lifecycle and recordings); the log also holds
/// notices for webhooks (`stream_created`, `stream_key_rotated`), which these
/// helpers leave out.
pub const WATCHED_KINDS: &str =
    "('stream_started', 'stream_ended', 'quality_changed', 'asset_ready', 'asset_errored')";

/// Returns the logged lifecycle events of a stream, oldest first.
pub async fn of_stream(db: &mut AsyncPgConnection, stream_id: &str) -> Vec<LoggedEvent> {
    diesel::sql_query(format!(
        "SELECT kind, payload::text AS payload FROM stream_events \
         WHERE stream_id = $1::uuid AND kind IN {WATCHED_KINDS} ORDER BY id"
    ))
    .bind::<Text, _>(stream_id)
    .load(db)
    .await
    .expect("read stream_events")
}

/// Returns a stream's logged lifecycle as short lines, oldest first, without
/// `quality_changed`: `started resumed=false`, `ended interrupted publisher_disconnected`.
pub async fn lifecycle(db: &mut AsyncPgConnection, stream_id: &str) -> Vec<String> {
    of_stream(db, stream_id)
        .await
        .into_iter()
        .filter(|e| e.kind != "quality_changed")
        .map(|e| {
            let payload: serde_json::Value = serde_json::from_str(&e.payload).unwrap_or_default();
            let text = |field: &str| payload[field].as_str().unwrap_or_default().to_owned();
            match e.kind.as_str() {
                "stream_started" => format!("started resumed={}", payload["resumed"]),
                "stream_ended" => format!("ended {} {}", text("status"), text("reason")),
                other => other.to_owned(),
            }
        })
        .collect()
}
