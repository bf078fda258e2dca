//! Queries on `webhook_redeliveries`: manual redeliveries waiting for the dispatcher
//! that holds their endpoint.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::schema::webhook_redeliveries;

/// Queues a manual redelivery of event `event_id` to endpoint `id`; asking again
/// while one waits changes nothing.
pub async fn queue(conn: &mut AsyncPgConnection, id: Uuid, event_id: i64) -> QueryResult<()> {
    diesel::insert_into(webhook_redeliveries::table)
        .values((
            webhook_redeliveries::webhook_id.eq(id),
            webhook_redeliveries::event_id.eq(event_id),
        ))
        .on_conflict_do_nothing()
        .execute(conn)
        .await
        .map(drop)
}

/// Returns the oldest redelivery waiting for endpoint `id`.
pub async fn next(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<i64>> {
    webhook_redeliveries::table
        .filter(webhook_redeliveries::webhook_id.eq(id))
        .order(webhook_redeliveries::requested_at.asc())
        .select(webhook_redeliveries::event_id)
        .first(conn)
        .await
        .optional()
}

/// Removes a redelivery once attempted.
pub async fn done(conn: &mut AsyncPgConnection, id: Uuid, event_id: i64) -> QueryResult<()> {
    diesel::delete(webhook_redeliveries::table.find((id, event_id)))
        .execute(conn)
        .await
        .map(drop)
}
