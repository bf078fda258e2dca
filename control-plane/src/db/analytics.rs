//! Queries on `stream_analytics`: the persisted viewer figures of each stream.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::{
    schema::{stream_analytics, streams},
    status::StreamStatus,
};

/// One stream's persisted figures.
#[derive(Debug, Clone, Default, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = stream_analytics, check_for_backend(diesel::pg::Pg))]
pub struct Persisted {
    /// Stream.
    pub stream_id: Uuid,
    /// Highest concurrent viewers.
    pub peak_viewers: i64,
    /// Approximate distinct viewers.
    pub unique_viewers: i64,
    /// Accumulated watch time, milliseconds.
    pub watch_ms: i64,
    /// Redis's HyperLogLog of viewers, if it had one.
    pub uniques_hll: Option<Vec<u8>>,
}

/// Returns the streams whose figures the sampler persists: every stream ACTIVE or
/// INTERRUPTED, and those that completed after `completed_since` (so the figures a
/// stream ends with are persisted, including leaves just after its end).
pub async fn followed_streams(
    conn: &mut AsyncPgConnection,
    completed_since: DateTime<Utc>,
) -> QueryResult<Vec<Uuid>> {
    streams::table
        .filter(
            streams::status
                .eq_any([
                    StreamStatus::Active.as_db(),
                    StreamStatus::Interrupted.as_db(),
                ])
                .or(streams::status
                    .eq(StreamStatus::Completed.as_db())
                    .and(streams::ended_at.gt(completed_since))),
        )
        .select(streams::id)
        .load(conn)
        .await
}

/// Returns the persisted figures of `ids` (streams without any are left out).
pub async fn load(conn: &mut AsyncPgConnection, ids: &[Uuid]) -> QueryResult<Vec<Persisted>> {
    stream_analytics::table
        .filter(stream_analytics::stream_id.eq_any(ids))
        .select(Persisted::as_select())
        .load(conn)
        .await
}

/// Returns the persisted figures of one stream, if any.
pub async fn find(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<Persisted>> {
    stream_analytics::table
        .find(id)
        .select(Persisted::as_select())
        .first(conn)
        .await
        .optional()
}

/// Stores figures; each figure keeps the greater of its stored and new value (they
/// only grow), the HyperLogLog is replaced when a new one is given.
pub async fn upsert(conn: &mut AsyncPgConnection, rows: &[Persisted]) -> QueryResult<usize> {
    use diesel::dsl::sql;
    use diesel::sql_types::{BigInt, Bytea, Nullable};
    if rows.is_empty() {
        return Ok(0);
    }
    diesel::insert_into(stream_analytics::table)
        .values(rows)
        .on_conflict(stream_analytics::stream_id)
        .do_update()
        .set((
            stream_analytics::peak_viewers.eq(sql::<BigInt>(
                "GREATEST(stream_analytics.peak_viewers, excluded.peak_viewers)",
            )),
            stream_analytics::unique_viewers.eq(sql::<BigInt>(
                "GREATEST(stream_analytics.unique_viewers, excluded.unique_viewers)",
            )),
            stream_analytics::watch_ms.eq(sql::<BigInt>(
                "GREATEST(stream_analytics.watch_ms, excluded.watch_ms)",
            )),
            stream_analytics::uniques_hll.eq(sql::<Nullable<Bytea>>(
                "COALESCE(excluded.uniques_hll, stream_analytics.uniques_hll)",
            )),
            stream_analytics::updated_at.eq(diesel::dsl::now),
        ))
        .execute(conn)
        .await
}
