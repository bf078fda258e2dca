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

/// Returns the logged events of a stream, oldest first.
pub async fn of_stream(db: &mut AsyncPgConnection, stream_id: &str) -> Vec<LoggedEvent> {
    diesel::sql_query(
        "SELECT kind, payload::text AS payload FROM stream_events WHERE stream_id = $1::uuid ORDER BY id",
    )
    .bind::<Text, _>(stream_id)
    .load(db)
    .await
    .expect("read stream_events")
}
