//! Queries on the `remux_jobs` table: the remux worker's durable queue.

use chrono::{DateTime, Utc};
use diesel::{
    prelude::*,
    sql_types::{Interval, Uuid as SqlUuid},
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::schema::remux_jobs;

/// A job a worker claimed.
#[derive(Debug, Clone, QueryableByName)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct ClaimedJob {
    /// Asset to make.
    #[diesel(sql_type = SqlUuid)]
    pub asset_id: Uuid,
    /// Attempts started, this one included.
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pub attempts: i32,
    /// Why the previous attempt failed.
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    pub last_error: Option<String>,
    /// Whether the pieces' deadline passed (some may never come).
    #[diesel(sql_type = diesel::sql_types::Bool)]
    pub deadline_passed: bool,
}

/// Queues the remux of an asset; a job already queued changes nothing.
pub async fn insert(conn: &mut AsyncPgConnection, asset_id: Uuid) -> QueryResult<()> {
    diesel::insert_into(remux_jobs::table)
        .values(remux_jobs::asset_id.eq(asset_id))
        .on_conflict_do_nothing()
        .execute(conn)
        .await
        .map(drop)
}

/// Claims one due job: not held (or its lease ran out), past its backoff, and with
/// every recorded publish's piece in (or queued longer than `wait` ago: some pieces
/// may never come). Counts the attempt and leases the job to run `token` for
/// `lease`. Rows other workers are claiming are skipped.
pub async fn claim(
    conn: &mut AsyncPgConnection,
    token: Uuid,
    lease: std::time::Duration,
    wait: std::time::Duration,
) -> QueryResult<Option<ClaimedJob>> {
    diesel::sql_query(
        "WITH due AS ( \
           SELECT j.asset_id FROM remux_jobs j JOIN assets a ON a.id = j.asset_id \
           WHERE j.run_after <= now() \
             AND (j.lease_until IS NULL OR j.lease_until < now()) \
             AND (j.created_at + $3 <= now() \
                  OR (SELECT count(*) FROM asset_pieces p WHERE p.asset_id = j.asset_id) >= a.publishes) \
           ORDER BY j.run_after \
           LIMIT 1 \
           FOR UPDATE OF j SKIP LOCKED) \
         UPDATE remux_jobs j SET attempts = j.attempts + 1, lease_token = $1, \
                lease_until = now() + $2 \
         FROM due WHERE j.asset_id = due.asset_id \
         RETURNING j.asset_id, j.attempts, j.last_error, (j.created_at + $3 <= now()) AS deadline_passed",
    )
    .bind::<SqlUuid, _>(token)
    .bind::<Interval, _>(interval(lease))
    .bind::<Interval, _>(interval(wait))
    .get_result(conn)
    .await
    .optional()
}

/// Extends the lease of run `token` on `asset_id`; false when the run lost the job
/// (its lease ran out and another run took it, or the asset was deleted).
pub async fn renew(
    conn: &mut AsyncPgConnection,
    asset_id: Uuid,
    token: Uuid,
    lease: std::time::Duration,
) -> QueryResult<bool> {
    let until = Utc::now() + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX);
    diesel::update(
        remux_jobs::table
            .filter(remux_jobs::asset_id.eq(asset_id))
            .filter(remux_jobs::lease_token.eq(token)),
    )
    .set(remux_jobs::lease_until.eq(until))
    .execute(conn)
    .await
    .map(|n| n > 0)
}

/// Locks the job of `asset_id` if run `token` still holds it; returns its attempts.
pub async fn lock_held(
    conn: &mut AsyncPgConnection,
    asset_id: Uuid,
    token: Uuid,
) -> QueryResult<Option<i32>> {
    remux_jobs::table
        .filter(remux_jobs::asset_id.eq(asset_id))
        .filter(remux_jobs::lease_token.eq(token))
        .select(remux_jobs::attempts)
        .for_update()
        .first(conn)
        .await
        .optional()
}

/// Releases a failed attempt: the job waits until `run_after`, remembering `error`.
pub async fn retry_later(
    conn: &mut AsyncPgConnection,
    asset_id: Uuid,
    error: &str,
    run_after: DateTime<Utc>,
) -> QueryResult<()> {
    diesel::update(remux_jobs::table.find(asset_id))
        .set((
            remux_jobs::last_error.eq(error),
            remux_jobs::run_after.eq(run_after),
            remux_jobs::lease_until.eq(None::<DateTime<Utc>>),
            remux_jobs::lease_token.eq(None::<Uuid>),
        ))
        .execute(conn)
        .await
        .map(drop)
}

/// Removes a finished job.
pub async fn delete(conn: &mut AsyncPgConnection, asset_id: Uuid) -> QueryResult<()> {
    diesel::delete(remux_jobs::table.find(asset_id))
        .execute(conn)
        .await
        .map(drop)
}

/// Converts a duration to a PostgreSQL interval.
fn interval(d: std::time::Duration) -> diesel::data_types::PgInterval {
    diesel::data_types::PgInterval::from_microseconds(
        i64::try_from(d.as_micros()).unwrap_or(i64::MAX),
    )
}
