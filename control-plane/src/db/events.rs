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

/// One event of an owner's log: an event of one of the owner's streams
/// (`stream_events`) or of the owner's account (`account_events`, no stream).
#[derive(Debug, Clone, QueryableByName)]
pub struct OwnerEventRow {
    /// Log position.
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub id: i64,
    /// Stream, for stream events.
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Uuid>)]
    pub stream_id: Option<Uuid>,
    /// Event kind.
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub kind: String,
    /// Event fields.
    #[diesel(sql_type = diesel::sql_types::Jsonb)]
    pub payload: serde_json::Value,
    /// When it was written.
    #[diesel(sql_type = diesel::sql_types::Timestamptz)]
    pub created_at: DateTime<Utc>,
}

/// Appends an event of `owner`'s account (no stream) and returns its log position and
/// time. Positions come from the stream log's sequence under the same lock as
/// [`append`], so both tables form one log ordered the same way.
pub async fn append_account(
    conn: &mut AsyncPgConnection,
    owner: &str,
    kind: &str,
    payload: serde_json::Value,
) -> QueryResult<(i64, DateTime<Utc>)> {
    use super::schema::account_events;
    diesel::sql_query(format!("SELECT pg_advisory_xact_lock({EVENT_LOG_LOCK})"))
        .execute(conn)
        .await?;
    diesel::insert_into(account_events::table)
        .values((
            account_events::owner.eq(owner),
            account_events::kind.eq(kind),
            account_events::payload.eq(payload),
        ))
        .returning((account_events::id, account_events::created_at))
        .get_result(conn)
        .await
}

/// Both tables of an owner's log, as one relation.
const OWNER_LOG: &str = "(SELECT id, stream_id, kind, payload, created_at FROM stream_events \
       WHERE owner = $1 AND id > $2 ORDER BY id LIMIT $3) \
     UNION ALL \
     (SELECT id, NULL::uuid AS stream_id, kind, payload, created_at FROM account_events \
       WHERE owner = $1 AND id > $2 ORDER BY id LIMIT $3)";

/// Returns up to `limit` events of `owner` (streams and account) after position
/// `after`, oldest first.
pub async fn of_owner_after(
    conn: &mut AsyncPgConnection,
    owner: &str,
    after: i64,
    limit: i64,
) -> QueryResult<Vec<OwnerEventRow>> {
    use diesel::sql_types::{BigInt, Text};
    diesel::sql_query(format!("{OWNER_LOG} ORDER BY id LIMIT $3"))
        .bind::<Text, _>(owner)
        .bind::<BigInt, _>(after)
        .bind::<BigInt, _>(limit)
        .load(conn)
        .await
}

/// Returns event `id` if it belongs to `owner`.
pub async fn of_owner(
    conn: &mut AsyncPgConnection,
    owner: &str,
    id: i64,
) -> QueryResult<Option<OwnerEventRow>> {
    let mut rows = of_owner_after(conn, owner, id - 1, 1).await?;
    Ok(rows.pop().filter(|row| row.id == id))
}

/// Returns the newest position of the whole log (streams and accounts), 0 when empty.
pub async fn newest_overall(conn: &mut AsyncPgConnection) -> QueryResult<i64> {
    #[derive(QueryableByName)]
    struct Newest {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        newest: i64,
    }
    let row: Newest = diesel::sql_query(
        "SELECT GREATEST(COALESCE((SELECT max(id) FROM stream_events), 0), \
                         COALESCE((SELECT max(id) FROM account_events), 0)) AS newest",
    )
    .get_result(conn)
    .await?;
    Ok(row.newest)
}
