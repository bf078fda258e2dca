//! Queries on `webhook_endpoints` and `webhook_redeliveries`: the owner's changes,
//! and the dispatcher's leases, progress and failures.

use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::pg::data_types::PgInterval;
use diesel::{
    prelude::*,
    sql_types::{BigInt, Double, Int8},
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::schema::{webhook_endpoints, webhook_redeliveries};

/// One row of `webhook_endpoints`.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = webhook_endpoints, check_for_backend(diesel::pg::Pg))]
pub struct WebhookRow {
    /// Endpoint id.
    pub id: Uuid,
    /// Owning principal.
    pub owner: String,
    /// Where deliveries go.
    pub url: String,
    /// Event types delivered, as stored; empty for every type.
    pub event_types: Vec<String>,
    /// Signing secret.
    pub secret: String,
    /// The secret before the last rotation.
    pub previous_secret: Option<String>,
    /// When `previous_secret` stops signing.
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    /// Whether deliveries are made.
    pub enabled: bool,
    /// Why it is disabled, as stored.
    pub disabled_reason: Option<String>,
    /// When it was disabled.
    pub disabled_at: Option<DateTime<Utc>>,
    /// Last log position handled.
    pub log_position: i64,
    /// Attempts at the event after `log_position`.
    pub attempts: i32,
    /// Consecutive failed attempts.
    pub failures: i32,
    /// Start of the current run of failures.
    pub failing_since: Option<DateTime<Utc>>,
    /// No attempt before this time.
    pub next_attempt_at: DateTime<Utc>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change by the owner.
    pub updated_at: DateTime<Utc>,
}

/// Fields of an endpoint being stored.
#[derive(Debug, Insertable)]
#[diesel(table_name = webhook_endpoints)]
pub struct NewWebhook<'a> {
    /// Endpoint id (UUIDv7).
    pub id: Uuid,
    /// Owning principal.
    pub owner: &'a str,
    /// Where deliveries go.
    pub url: &'a str,
    /// Event types delivered; empty for every type.
    pub event_types: &'a [String],
    /// Signing secret.
    pub secret: &'a str,
    /// Deliveries start after this log position.
    pub log_position: i64,
}

/// Columns an owner's change sets; `None` leaves a column as it is.
#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = webhook_endpoints)]
pub struct WebhookChanges<'a> {
    /// New URL.
    pub url: Option<&'a str>,
    /// New event types.
    pub event_types: Option<&'a [String]>,
    /// Enabled or not.
    pub enabled: Option<bool>,
    /// Why disabled (`Some(None)` clears it).
    pub disabled_reason: Option<Option<&'a str>>,
    /// When disabled (`Some(None)` clears it).
    pub disabled_at: Option<Option<DateTime<Utc>>>,
    /// The run of failures (reset to 0 by a new URL or re-enabling).
    pub failures: Option<i32>,
    /// Start of the run (`Some(None)` clears it).
    pub failing_since: Option<Option<DateTime<Utc>>>,
    /// Next attempt time (now, to retry at once).
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// Change time.
    pub updated_at: Option<DateTime<Utc>>,
}

/// First key of the two-key advisory locks on an owner's endpoints ("nwhk").
const OWNER_LOCK_CLASS: i32 = 0x6e77_686b;

/// Takes the transaction-scoped lock on `owner`'s endpoints, so counting them and
/// inserting one is atomic against the owner's other creations.
pub async fn lock_owner(conn: &mut AsyncPgConnection, owner: &str) -> QueryResult<()> {
    diesel::sql_query(format!(
        "SELECT pg_advisory_xact_lock({OWNER_LOCK_CLASS}, hashtext($1))"
    ))
    .bind::<diesel::sql_types::Text, _>(owner)
    .execute(conn)
    .await
    .map(drop)
}

/// Returns how many endpoints `owner` has.
pub async fn count_by_owner(conn: &mut AsyncPgConnection, owner: &str) -> QueryResult<i64> {
    webhook_endpoints::table
        .filter(webhook_endpoints::owner.eq(owner))
        .count()
        .get_result(conn)
        .await
}

/// Stores an endpoint and returns it.
pub async fn insert(conn: &mut AsyncPgConnection, new: &NewWebhook<'_>) -> QueryResult<WebhookRow> {
    diesel::insert_into(webhook_endpoints::table)
        .values(new)
        .returning(WebhookRow::as_returning())
        .get_result(conn)
        .await
}

/// Returns endpoint `id` of `owner`.
pub async fn find(
    conn: &mut AsyncPgConnection,
    owner: &str,
    id: Uuid,
) -> QueryResult<Option<WebhookRow>> {
    webhook_endpoints::table
        .filter(webhook_endpoints::id.eq(id))
        .filter(webhook_endpoints::owner.eq(owner))
        .select(WebhookRow::as_select())
        .first(conn)
        .await
        .optional()
}

/// Returns endpoint `id` of `owner`, locked until the transaction ends.
pub async fn find_for_update(
    conn: &mut AsyncPgConnection,
    owner: &str,
    id: Uuid,
) -> QueryResult<Option<WebhookRow>> {
    webhook_endpoints::table
        .filter(webhook_endpoints::id.eq(id))
        .filter(webhook_endpoints::owner.eq(owner))
        .select(WebhookRow::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()
}

/// Returns up to `limit` endpoints of `owner` after id `after` (oldest first).
pub async fn list_by_owner(
    conn: &mut AsyncPgConnection,
    owner: &str,
    after: Option<Uuid>,
    limit: i64,
) -> QueryResult<Vec<WebhookRow>> {
    let mut query = webhook_endpoints::table
        .filter(webhook_endpoints::owner.eq(owner))
        .select(WebhookRow::as_select())
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(webhook_endpoints::id.gt(after));
    }
    query
        .order(webhook_endpoints::id.asc())
        .limit(limit)
        .load(conn)
        .await
}

/// Applies an owner's change to endpoint `id` and returns it.
pub async fn update(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    changes: &WebhookChanges<'_>,
) -> QueryResult<WebhookRow> {
    diesel::update(webhook_endpoints::table.find(id))
        .set(changes)
        .returning(WebhookRow::as_returning())
        .get_result(conn)
        .await
}

/// Replaces the secret of endpoint `id`; the old one keeps signing until
/// `previous_expires_at`.
pub async fn replace_secret(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    secret: &str,
    previous_expires_at: DateTime<Utc>,
) -> QueryResult<WebhookRow> {
    diesel::update(webhook_endpoints::table.find(id))
        .set((
            webhook_endpoints::previous_secret.eq(webhook_endpoints::secret.nullable()),
            webhook_endpoints::previous_secret_expires_at.eq(previous_expires_at),
            webhook_endpoints::secret.eq(secret),
            webhook_endpoints::updated_at.eq(diesel::dsl::now),
        ))
        .returning(WebhookRow::as_returning())
        .get_result(conn)
        .await
}

/// Deletes endpoint `id` of `owner` (its attempts and redeliveries go with it);
/// returns whether it existed.
pub async fn delete(conn: &mut AsyncPgConnection, owner: &str, id: Uuid) -> QueryResult<bool> {
    diesel::delete(
        webhook_endpoints::table
            .filter(webhook_endpoints::id.eq(id))
            .filter(webhook_endpoints::owner.eq(owner)),
    )
    .execute(conn)
    .await
    .map(|n| n == 1)
}

/// Queues a manual redelivery of event `event_id` to endpoint `id`; asking again
/// while one waits changes nothing.
pub async fn queue_redelivery(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    event_id: i64,
) -> QueryResult<()> {
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
pub async fn next_redelivery(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<i64>> {
    webhook_redeliveries::table
        .filter(webhook_redeliveries::webhook_id.eq(id))
        .order(webhook_redeliveries::requested_at.asc())
        .select(webhook_redeliveries::event_id)
        .first(conn)
        .await
        .optional()
}

/// Removes a redelivery once attempted.
pub async fn redelivered(conn: &mut AsyncPgConnection, id: Uuid, event_id: i64) -> QueryResult<()> {
    diesel::delete(webhook_redeliveries::table.find((id, event_id)))
        .execute(conn)
        .await
        .map(drop)
}

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
        webhook_endpoints::failing_since.eq(diesel::dsl::sql::<
            diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>,
        >("COALESCE(failing_since, now())")),
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

/// The database's `now()` plus `d`.
fn now_plus(
    d: Duration,
) -> diesel::expression::UncheckedBind<
    diesel::expression::SqlLiteral<diesel::sql_types::Timestamptz>,
    diesel::internal::derives::as_expression::Bound<diesel::sql_types::Interval, PgInterval>,
> {
    let micros = i64::try_from(d.as_micros()).unwrap_or(i64::MAX);
    diesel::dsl::sql::<diesel::sql_types::Timestamptz>("now() + ")
        .bind::<diesel::sql_types::Interval, _>(PgInterval::from_microseconds(micros))
}
