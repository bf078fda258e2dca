//! Appends to the durable `stream_events` log.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::schema::stream_events;

/// One row of `stream_events`.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = stream_events, check_for_backend(diesel::pg::Pg))]
pub struct EventRow {
    /// Log position.
    pub id: i64,
    /// Stream.
    pub stream_id: Uuid,
    /// Event kind.
    pub kind: String,
    /// Event fields.
    pub payload: serde_json::Value,
    /// When it was written.
    pub created_at: DateTime<Utc>,
}

/// Advisory lock key that orders appends to the event log ("novaelog").
pub const EVENT_LOG_LOCK: i64 = 0x6e6f_7661_656c_6f67;

/// Appends one event and returns its log position (the resume cursor) and time. Call
/// it inside the transaction that makes the state change, so the log never disagrees
/// with it.
///
/// Appends are serialised until commit by a transaction-scoped advisory lock, so log
/// positions become visible in the order they were taken: a reader that has seen
/// position n never later finds a smaller one, and resuming after a cursor loses
/// nothing. Keep what a transaction does after its append short.
pub async fn append(
    conn: &mut AsyncPgConnection,
    stream_id: Uuid,
    kind: &str,
    payload: serde_json::Value,
) -> QueryResult<(i64, DateTime<Utc>)> {
    diesel::sql_query(format!("SELECT pg_advisory_xact_lock({EVENT_LOG_LOCK})"))
        .execute(conn)
        .await?;
    diesel::insert_into(stream_events::table)
        .values((
            stream_events::stream_id.eq(stream_id),
            stream_events::kind.eq(kind),
            stream_events::payload.eq(payload),
        ))
        .returning((stream_events::id, stream_events::created_at))
        .get_result(conn)
        .await
}

/// Returns up to `limit` events after `cursor`, oldest first, optionally of one stream.
pub async fn after(
    conn: &mut AsyncPgConnection,
    cursor: i64,
    stream: Option<Uuid>,
    limit: i64,
) -> QueryResult<Vec<EventRow>> {
    let mut query = stream_events::table
        .filter(stream_events::id.gt(cursor))
        .select(EventRow::as_select())
        .into_boxed();
    if let Some(stream) = stream {
        query = query.filter(stream_events::stream_id.eq(stream));
    }
    query
        .order(stream_events::id.asc())
        .limit(limit)
        .load(conn)
        .await
}

/// Returns the newest log position, or 0 for an empty log.
pub async fn newest(conn: &mut AsyncPgConnection) -> QueryResult<i64> {
    use diesel::dsl::max;
    Ok(stream_events::table
        .select(max(stream_events::id))
        .first::<Option<i64>>(conn)
        .await?
        .unwrap_or(0))
}
