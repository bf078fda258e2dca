//! Queries on `webhook_attempts`: one row per delivery attempt, listed newest first.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::schema::webhook_attempts;

/// One row of `webhook_attempts`.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = webhook_attempts, check_for_backend(diesel::pg::Pg))]
pub struct AttemptRow {
    /// Attempt id (UUIDv7: time-ordered).
    pub id: Uuid,
    /// Endpoint.
    pub webhook_id: Uuid,
    /// Log position of the event.
    pub event_id: i64,
    /// Webhook event type, as delivered.
    pub event_type: String,
    /// Attempt number for this event at this endpoint.
    pub attempt: i32,
    /// Whether a manual redelivery.
    pub manual: bool,
    /// Outcome, as stored.
    pub outcome: String,
    /// HTTP status answered, if any.
    pub status_code: Option<i32>,
    /// Time to the answer or the failure, milliseconds.
    pub latency_ms: i32,
    /// What failed; never a secret.
    pub error: Option<String>,
    /// When it was made.
    pub created_at: DateTime<Utc>,
}

/// Stores an attempt.
pub async fn insert(conn: &mut AsyncPgConnection, row: &AttemptRow) -> QueryResult<()> {
    diesel::insert_into(webhook_attempts::table)
        .values(row)
        .execute(conn)
        .await
        .map(drop)
}

/// Returns up to `limit` attempts of endpoint `webhook_id` older than attempt
/// `before` (newest first), optionally of one event only.
pub async fn list(
    conn: &mut AsyncPgConnection,
    webhook_id: Uuid,
    event_id: Option<i64>,
    before: Option<Uuid>,
    limit: i64,
) -> QueryResult<Vec<AttemptRow>> {
    let mut query = webhook_attempts::table
        .filter(webhook_attempts::webhook_id.eq(webhook_id))
        .select(AttemptRow::as_select())
        .into_boxed();
    if let Some(event_id) = event_id {
        query = query.filter(webhook_attempts::event_id.eq(event_id));
    }
    if let Some(before) = before {
        query = query.filter(webhook_attempts::id.lt(before));
    }
    query
        .order(webhook_attempts::id.desc())
        .limit(limit)
        .load(conn)
        .await
}

/// Returns how many attempts endpoint `webhook_id` made at event `event_id`.
pub async fn count_for_event(
    conn: &mut AsyncPgConnection,
    webhook_id: Uuid,
    event_id: i64,
) -> QueryResult<i64> {
    webhook_attempts::table
        .filter(webhook_attempts::webhook_id.eq(webhook_id))
        .filter(webhook_attempts::event_id.eq(event_id))
        .count()
        .get_result(conn)
        .await
}

/// Deletes up to `limit` attempts made before `before`; returns how many.
pub async fn prune(
    conn: &mut AsyncPgConnection,
    before: DateTime<Utc>,
    limit: i64,
) -> QueryResult<usize> {
    diesel::sql_query(
        "DELETE FROM webhook_attempts WHERE id IN \
           (SELECT id FROM webhook_attempts WHERE created_at < $1 LIMIT $2)",
    )
    .bind::<diesel::sql_types::Timestamptz, _>(before)
    .bind::<diesel::sql_types::BigInt, _>(limit)
    .execute(conn)
    .await
}
