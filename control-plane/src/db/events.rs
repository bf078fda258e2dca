//! Appends to the durable `stream_events` log.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::schema::stream_events;

/// Appends one event and returns its log position (the resume cursor). Call it inside
/// the transaction that makes the state change, so the log never disagrees with it.
pub async fn append(
    conn: &mut AsyncPgConnection,
    stream_id: Uuid,
    kind: &str,
    payload: serde_json::Value,
) -> QueryResult<i64> {
    diesel::insert_into(stream_events::table)
        .values((
            stream_events::stream_id.eq(stream_id),
            stream_events::kind.eq(kind),
            stream_events::payload.eq(payload),
        ))
        .returning(stream_events::id)
        .get_result(conn)
        .await
}
