//! Queries on `webhook_endpoints` for their owners: create, read, list, change,
//! replace the secret, delete. The dispatcher's are in `webhook_leases`.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::schema::webhook_endpoints;

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
