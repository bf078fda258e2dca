//! The dispatcher's queries on `webhook_endpoints`: leasing endpoints with work, the
//! position, the run of failures, disabling, and the backlog the metrics report.

use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::{
    dsl::sql,
    expression::SqlLiteral,
    prelude::*,
    sql_types::{BigInt, Double, Int8, Nullable, Timestamptz},
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::{schema::webhook_endpoints, webhooks::WebhookRow};

/// Leases up to `limit` enabled endpoints with work to `holder` for `lease`: an event
/// of their owner after their position once their backoff is over, or a redelivery.
/// Endpoints another dispatcher holds (an unexpired lease, or a row being claimed
/// right now: `SKIP LOCKED`) are left alone. Returns the ids leased.
pub async fn claim(
    conn: &mut AsyncPgConnection,
    holder: Uuid,
    lease: Duration,
    limit: i64,
) -> QueryResult<Vec<Uuid>> {
    #[derive(QueryableByName)]
    struct Claimed {
        #[diesel(sql_type = diesel::sql_types::Uuid)]
        id: Uuid,
    }
    let rows: Vec<Claimed> = diesel::sql_query(
        "UPDATE webhook_endpoints SET lease_holder = $1, \
                lease_until = now() + make_interval(secs => $2) \
         WHERE id IN ( \
           SELECT w.id FROM webhook_endpoints w \
           WHERE w.enabled \
             AND (w.lease_until IS NULL OR w.lease_until < now()) \
             AND ((w.next_attempt_at <= now() AND ( \
                     EXISTS (SELECT 1 FROM stream_events e \
                             WHERE e.owner = w.owner AND e.id > w.log_position) \
                  OR EXISTS (SELECT 1 FROM account_events a \
                             WHERE a.owner = w.owner AND a.id > w.log_position))) \
               OR EXISTS (SELECT 1 FROM webhook_redeliveries r WHERE r.webhook_id = w.id)) \
           ORDER BY w.next_attempt_at \
           LIMIT $3 \
           FOR UPDATE SKIP LOCKED) \
         RETURNING id",
    )
    .bind::<diesel::sql_types::Uuid, _>(holder)
    .bind::<Double, _>(lease.as_secs_f64())
    .bind::<BigInt, _>(limit)
    .load(conn)
    .await?;
    Ok(rows.into_iter().map(|r| r.id).collect())
}

/// Returns endpoint `id` while `holder` holds its lease and it is enabled, renewing
/// the lease for `lease`; `None` once the lease is lost, the endpoint disabled or
/// deleted.
pub async fn held(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    holder: Uuid,
    lease: Duration,
) -> QueryResult<Option<WebhookRow>> {
    diesel::update(
        webhook_endpoints::table
            .filter(webhook_endpoints::id.eq(id))
            .filter(webhook_endpoints::lease_holder.eq(holder))
            .filter(webhook_endpoints::enabled.eq(true)),
    )
    .set(webhook_endpoints::lease_until.eq(now_plus(lease).nullable()))
    .returning(WebhookRow::as_returning())
    .get_result(conn)
    .await
    .optional()
}

/// Gives up `holder`'s lease on endpoint `id`.
pub async fn release(conn: &mut AsyncPgConnection, id: Uuid, holder: Uuid) -> QueryResult<()> {
    diesel::update(
        webhook_endpoints::table
            .filter(webhook_endpoints::id.eq(id))
            .filter(webhook_endpoints::lease_holder.eq(holder)),
    )
    .set((
        webhook_endpoints::lease_holder.eq(None::<Uuid>),
        webhook_endpoints::lease_until.eq(None::<DateTime<Utc>>),
    ))
    .execute(conn)
    .await
    .map(drop)
}

/// Moves endpoint `id` (held by `holder`) past events it does not deliver, up to
/// `position`; returns whether it was still held.
pub async fn skip_to(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    holder: Uuid,
    position: i64,
) -> QueryResult<bool> {
    diesel::update(
        webhook_endpoints::table
            .filter(webhook_endpoints::id.eq(id))
            .filter(webhook_endpoints::lease_holder.eq(holder))
            .filter(webhook_endpoints::log_position.lt(position)),
    )
    .set((
        webhook_endpoints::log_position.eq(position),
        webhook_endpoints::attempts.eq(0),
    ))
    .execute(conn)
    .await
    .map(|n| n == 1)
}

/// Records a delivered event: the position moves past it, the run of failures ends.
pub async fn delivered(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    holder: Uuid,
    position: i64,
) -> QueryResult<bool> {
    diesel::update(
        webhook_endpoints::table
            .filter(webhook_endpoints::id.eq(id))
            .filter(webhook_endpoints::lease_holder.eq(holder)),
    )
    .set((
        webhook_endpoints::log_position.eq(position),
        webhook_endpoints::attempts.eq(0),
        webhook_endpoints::failures.eq(0),
        webhook_endpoints::failing_since.eq(None::<DateTime<Utc>>),
        webhook_endpoints::next_attempt_at.eq(diesel::dsl::now),
    ))
    .execute(conn)
    .await
    .map(|n| n == 1)
}

/// Records a failed attempt at the event after the position: one more attempt and
/// failure, no attempt before `retry_in`; `give_up` moves the position past the
/// event (too old to retry). Returns the endpoint after the change, `None` if the
/// lease was lost.
pub async fn failed(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    holder: Uuid,
    give_up: Option<i64>,
    retry_in: Duration,
) -> QueryResult<Option<WebhookRow>> {
    let target = webhook_endpoints::table
        .filter(webhook_endpoints::id.eq(id))
        .filter(webhook_endpoints::lease_holder.eq(holder));
    let common = (
        webhook_endpoints::failures.eq(webhook_endpoints::failures + 1),
        webhook_endpoints::failing_since.eq(sql::<Nullable<Timestamptz>>(
            "COALESCE(failing_since, now())",
        )),
        webhook_endpoints::next_attempt_at.eq(now_plus(retry_in)),
    );
    let query = diesel::update(target);
    match give_up {
        Some(position) => query
            .set((
                common,
                webhook_endpoints::log_position.eq(position),
                webhook_endpoints::attempts.eq(0),
            ))
            .returning(WebhookRow::as_returning())
            .get_result(conn)
            .await
            .optional(),
        None => query
            .set((
                common,
                webhook_endpoints::attempts.eq(webhook_endpoints::attempts + 1),
            ))
            .returning(WebhookRow::as_returning())
            .get_result(conn)
            .await
            .optional(),
    }
}

/// Disables endpoint `id` after its failures; returns whether it was enabled.
pub async fn disable_failing(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<bool> {
    diesel::update(
        webhook_endpoints::table
            .filter(webhook_endpoints::id.eq(id))
            .filter(webhook_endpoints::enabled.eq(true)),
    )
    .set((
        webhook_endpoints::enabled.eq(false),
        webhook_endpoints::disabled_reason.eq(Some("failures")),
        webhook_endpoints::disabled_at.eq(diesel::dsl::now),
        webhook_endpoints::lease_holder.eq(None::<Uuid>),
        webhook_endpoints::lease_until.eq(None::<DateTime<Utc>>),
    ))
    .execute(conn)
    .await
    .map(|n| n == 1)
}

/// How far behind the enabled endpoints are.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Backlog {
    /// Enabled endpoints in a run of failures.
    pub failing: i64,
    /// Age in seconds of the oldest event waiting for an enabled endpoint that is not
    /// failing (0 when none waits): how far the dispatchers lag.
    pub lag_seconds: f64,
}

/// Reads the backlog of every enabled endpoint.
pub async fn backlog(conn: &mut AsyncPgConnection) -> QueryResult<Backlog> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Int8)]
        failing: i64,
        #[diesel(sql_type = Double)]
        lag_seconds: f64,
    }
    let row: Row = diesel::sql_query(
        "SELECT count(*) FILTER (WHERE w.failures > 0) AS failing, \
                COALESCE(EXTRACT(EPOCH FROM now() - min(head.at) FILTER (WHERE w.failures = 0)), 0)::float8 \
                  AS lag_seconds \
         FROM webhook_endpoints w \
         LEFT JOIN LATERAL ( \
           SELECT min(at) AS at FROM ( \
             (SELECT e.created_at AS at FROM stream_events e \
               WHERE e.owner = w.owner AND e.id > w.log_position ORDER BY e.id LIMIT 1) \
             UNION ALL \
             (SELECT a.created_at AS at FROM account_events a \
               WHERE a.owner = w.owner AND a.id > w.log_position ORDER BY a.id LIMIT 1)) first \
         ) head ON true \
         WHERE w.enabled",
    )
    .get_result(conn)
    .await?;
    Ok(Backlog {
        failing: row.failing,
        lag_seconds: row.lag_seconds.max(0.0),
    })
}

/// The database's `now()` plus `d` (whole microseconds: nothing to quote).
fn now_plus(d: Duration) -> SqlLiteral<Timestamptz> {
    let micros = i64::try_from(d.as_micros()).unwrap_or(i64::MAX);
    sql::<Timestamptz>(&format!("now() + interval '{micros} microseconds'"))
}
