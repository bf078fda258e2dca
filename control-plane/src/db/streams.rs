//! Queries on the `streams` table.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::{schema::streams, status::StreamStatus};

/// One row of `streams`.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = streams, check_for_backend(diesel::pg::Pg))]
pub struct StreamRow {
    /// Public id.
    pub id: Uuid,
    /// Owning principal.
    pub owner: String,
    /// Title.
    pub title: String,
    /// Lifecycle state as stored (`pending`, `active`, `interrupted`, `completed`).
    pub status: String,
    /// SHA-256 of the current stream key.
    pub key_hash: Vec<u8>,
    /// When the key was issued.
    pub key_issued_at: DateTime<Utc>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// First publish.
    pub started_at: Option<DateTime<Utc>>,
    /// Completion.
    pub ended_at: Option<DateTime<Utc>>,
    /// End of the reconnect window.
    pub reconnect_deadline: Option<DateTime<Utc>>,
    /// Ingest node holding the broadcast.
    pub ingest_node: Option<String>,
    /// Last ingest callback.
    pub last_ingest_at: Option<DateTime<Utc>>,
    /// HLS media playlist URL.
    pub hls_url: Option<String>,
    /// DASH manifest URL.
    pub dash_url: Option<String>,
    /// HLS master playlist URL.
    pub hls_master_url: Option<String>,
    /// Latest ingest health.
    pub ingest_health: Option<serde_json::Value>,
    /// The broadcaster's connection id on the ingest node.
    pub ingest_client: Option<String>,
    /// Playback policy as stored (`public`, `signed`).
    pub playback_policy: String,
    /// Cap on concurrent viewers.
    pub max_viewers: Option<i32>,
    /// Whether publishes are recorded into assets.
    pub record: bool,
}

/// Fields of a stream being created.
#[derive(Debug, Insertable)]
#[diesel(table_name = streams)]
pub struct NewStream<'a> {
    /// Public id (UUIDv7).
    pub id: Uuid,
    /// Owning principal.
    pub owner: &'a str,
    /// Title.
    pub title: &'a str,
    /// SHA-256 of the stream key.
    pub key_hash: &'a [u8],
    /// Playback policy as stored (`public`, `signed`).
    pub playback_policy: &'a str,
    /// Cap on concurrent viewers.
    pub max_viewers: Option<i32>,
    /// Whether publishes are recorded into assets.
    pub record: bool,
}

/// Changes to a stream's settings; `None` leaves a field as it is.
#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = streams)]
pub struct StreamChanges<'a> {
    /// New title.
    pub title: Option<&'a str>,
    /// New playback policy as stored.
    pub playback_policy: Option<&'a str>,
    /// New cap on concurrent viewers (`Some(None)` removes it).
    pub max_viewers: Option<Option<i32>>,
    /// Whether to record.
    pub record: Option<bool>,
}

/// Which streams a listing returns.
#[derive(Debug, Default)]
pub struct ListFilter<'a> {
    /// Stored status values to keep; empty keeps all.
    pub statuses: Vec<&'static str>,
    /// Owner to keep; `None` keeps all.
    pub owner: Option<&'a str>,
    /// Keyset cursor: only ids strictly below this one.
    pub before_id: Option<Uuid>,
    /// Maximum rows.
    pub limit: i64,
}

/// Inserts a stream and returns the stored row.
pub async fn insert(conn: &mut AsyncPgConnection, new: &NewStream<'_>) -> QueryResult<StreamRow> {
    diesel::insert_into(streams::table)
        .values(new)
        .returning(StreamRow::as_returning())
        .get_result(conn)
        .await
}

/// Returns the stream with this id, if any.
pub async fn find(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<StreamRow>> {
    streams::table
        .find(id)
        .select(StreamRow::as_select())
        .first(conn)
        .await
        .optional()
}

/// Returns the stream with this id and locks its row until the transaction ends.
pub async fn find_for_update(
    conn: &mut AsyncPgConnection,
    id: Uuid,
) -> QueryResult<Option<StreamRow>> {
    streams::table
        .find(id)
        .select(StreamRow::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()
}

/// Returns a page of streams, newest first.
pub async fn list(
    conn: &mut AsyncPgConnection,
    filter: &ListFilter<'_>,
) -> QueryResult<Vec<StreamRow>> {
    let mut query = streams::table.select(StreamRow::as_select()).into_boxed();
    if !filter.statuses.is_empty() {
        query = query.filter(streams::status.eq_any(filter.statuses.clone()));
    }
    if let Some(owner) = filter.owner {
        query = query.filter(streams::owner.eq(owner));
    }
    if let Some(before) = filter.before_id {
        query = query.filter(streams::id.lt(before));
    }
    query
        .order(streams::id.desc())
        .limit(filter.limit)
        .load(conn)
        .await
}

/// Marks a stream completed now and returns the updated row.
pub async fn complete(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<StreamRow> {
    diesel::update(streams::table.find(id))
        .set((
            streams::status.eq(StreamStatus::Completed.as_db()),
            streams::ended_at.eq(diesel::dsl::now),
            streams::updated_at.eq(diesel::dsl::now),
            streams::reconnect_deadline.eq(None::<DateTime<Utc>>),
            streams::ingest_node.eq(None::<String>),
            streams::ingest_client.eq(None::<String>),
        ))
        .returning(StreamRow::as_returning())
        .get_result(conn)
        .await
}

/// Applies `changes` to a stream and returns the updated row.
pub async fn update(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    changes: &StreamChanges<'_>,
) -> QueryResult<StreamRow> {
    diesel::update(streams::table.find(id))
        .set((changes, streams::updated_at.eq(diesel::dsl::now)))
        .returning(StreamRow::as_returning())
        .get_result(conn)
        .await
}

/// Replaces the stream key hash and returns the updated row.
pub async fn replace_key(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    key_hash: &[u8],
) -> QueryResult<StreamRow> {
    diesel::update(streams::table.find(id))
        .set((
            streams::key_hash.eq(key_hash),
            streams::key_issued_at.eq(diesel::dsl::now),
            streams::updated_at.eq(diesel::dsl::now),
        ))
        .returning(StreamRow::as_returning())
        .get_result(conn)
        .await
}

/// Returns the stream whose key hashes to `key_hash`, locking its row.
pub async fn find_by_key_for_update(
    conn: &mut AsyncPgConnection,
    key_hash: &[u8],
) -> QueryResult<Option<StreamRow>> {
    streams::table
        .filter(streams::key_hash.eq(key_hash))
        .select(StreamRow::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()
}

/// The connection publishing a stream: ingest node and nginx client id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Holder<'a> {
    /// Ingest node.
    pub node: &'a str,
    /// Connection id on that node.
    pub client: &'a str,
}

impl StreamRow {
    /// Tells whether `holder` is the connection publishing this stream.
    pub fn held_by(&self, holder: Holder<'_>) -> bool {
        self.ingest_node.as_deref() == Some(holder.node)
            && self.ingest_client.as_deref() == Some(holder.client)
    }
}

/// Where a live stream plays, as stored with it.
#[derive(Debug, Clone, Copy)]
pub struct PlaybackUrls<'a> {
    /// HLS media playlist.
    pub hls: &'a str,
    /// DASH manifest.
    pub dash: &'a str,
    /// HLS master playlist (ABR only).
    pub hls_master: Option<&'a str>,
}

/// Marks a stream active on `holder` with its playback URLs and returns the row.
pub async fn activate(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    holder: Holder<'_>,
    playback: PlaybackUrls<'_>,
) -> QueryResult<StreamRow> {
    diesel::update(streams::table.find(id))
        .set((
            streams::status.eq(StreamStatus::Active.as_db()),
            streams::started_at.eq(diesel::dsl::sql::<
                diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>,
            >("coalesce(started_at, now())")),
            streams::updated_at.eq(diesel::dsl::now),
            streams::reconnect_deadline.eq(None::<DateTime<Utc>>),
            streams::ingest_node.eq(holder.node),
            streams::ingest_client.eq(holder.client),
            streams::last_ingest_at.eq(diesel::dsl::now),
            streams::hls_url.eq(playback.hls),
            streams::dash_url.eq(playback.dash),
            streams::hls_master_url.eq(playback.hls_master),
        ))
        .returning(StreamRow::as_returning())
        .get_result(conn)
        .await
}

/// Marks a stream interrupted until `deadline` and returns the row. With `keep_holder`
/// (the ingest went silent, the broadcaster did not say it left) the connection that
/// held it stays recorded, so that its next heartbeat, and only that, can resume it.
pub async fn interrupt(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    deadline: DateTime<Utc>,
    keep_holder: bool,
) -> QueryResult<StreamRow> {
    let interrupted = (
        streams::status.eq(StreamStatus::Interrupted.as_db()),
        streams::updated_at.eq(diesel::dsl::now),
        streams::reconnect_deadline.eq(deadline),
    );
    let query = diesel::update(streams::table.find(id));
    if keep_holder {
        query
            .set(interrupted)
            .returning(StreamRow::as_returning())
            .get_result(conn)
            .await
    } else {
        query
            .set((
                interrupted,
                streams::ingest_node.eq(None::<String>),
                streams::ingest_client.eq(None::<String>),
            ))
            .returning(StreamRow::as_returning())
            .get_result(conn)
            .await
    }
}

/// Forgets the connection recorded on an interrupted stream (it said it left), so
/// no late heartbeat of it can resume the stream.
pub async fn release_holder(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<()> {
    diesel::update(streams::table.find(id))
        .set((
            streams::ingest_node.eq(None::<String>),
            streams::ingest_client.eq(None::<String>),
        ))
        .execute(conn)
        .await
        .map(drop)
}

/// Records an ingest update for an active stream held by `holder`; returns the row,
/// or `None` when the key matches no such stream.
pub async fn touch_active_by_key(
    conn: &mut AsyncPgConnection,
    key_hash: &[u8],
    holder: Holder<'_>,
) -> QueryResult<Option<StreamRow>> {
    diesel::update(
        streams::table
            .filter(streams::key_hash.eq(key_hash))
            .filter(streams::status.eq(StreamStatus::Active.as_db()))
            .filter(streams::ingest_node.eq(holder.node))
            .filter(streams::ingest_client.eq(holder.client)),
    )
    .set(streams::last_ingest_at.eq(diesel::dsl::now))
    .returning(StreamRow::as_returning())
    .get_result(conn)
    .await
    .optional()
}

/// Stores the latest ingest health of a stream.
pub async fn set_health(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    health: serde_json::Value,
) -> QueryResult<()> {
    diesel::update(streams::table.find(id))
        .set((
            streams::ingest_health.eq(health),
            streams::last_ingest_at.eq(diesel::dsl::now),
        ))
        .execute(conn)
        .await
        .map(drop)
}

/// Returns (and locks, skipping rows other transactions hold) the active streams whose
/// last ingest update is older than `before`.
pub async fn lock_ingest_lost(
    conn: &mut AsyncPgConnection,
    before: DateTime<Utc>,
    limit: i64,
) -> QueryResult<Vec<Uuid>> {
    streams::table
        .filter(streams::status.eq(StreamStatus::Active.as_db()))
        .filter(streams::last_ingest_at.lt(before))
        .select(streams::id)
        .limit(limit)
        .for_update()
        .skip_locked()
        .load(conn)
        .await
}

/// Returns (and locks, skipping rows other transactions hold) the interrupted streams
/// whose reconnect window closed at or before `now`.
pub async fn lock_window_closed(
    conn: &mut AsyncPgConnection,
    now: DateTime<Utc>,
    limit: i64,
) -> QueryResult<Vec<Uuid>> {
    streams::table
        .filter(streams::status.eq(StreamStatus::Interrupted.as_db()))
        .filter(streams::reconnect_deadline.le(now))
        .select(streams::id)
        .limit(limit)
        .for_update()
        .skip_locked()
        .load(conn)
        .await
}
