//! Queries on the `assets` and `asset_pieces` tables.

use chrono::{DateTime, Utc};
use diesel::{
    prelude::*,
    sql_types::{Integer, Uuid as SqlUuid},
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::{
    schema::{asset_pieces, assets, streams},
    status::AssetStatus,
};

/// One row of `assets`.
#[derive(Debug, Clone, Queryable, QueryableByName, Selectable)]
#[diesel(table_name = assets, check_for_backend(diesel::pg::Pg))]
pub struct AssetRow {
    /// Asset id.
    pub id: Uuid,
    /// Recorded stream.
    pub stream_id: Uuid,
    /// Status as stored (`preparing`, `ready`, `errored`).
    pub status: String,
    /// Why it errored.
    pub error_reason: Option<String>,
    /// Recorded publishes that owe a piece.
    pub publishes: i32,
    /// Store folder of the READY run.
    pub prefix: Option<String>,
    /// Playing time, milliseconds.
    pub duration_ms: Option<i64>,
    /// Bytes stored.
    pub size_bytes: Option<i64>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// When it became READY.
    pub ready_at: Option<DateTime<Utc>>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// An asset with what it takes from its stream: owner and stored playback policy.
pub type AssetWithStream = (AssetRow, String, String);

/// One row of `asset_pieces`.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = asset_pieces, check_for_backend(diesel::pg::Pg))]
pub struct PieceRow {
    /// Asset.
    pub asset_id: Uuid,
    /// Object key in the store.
    pub object_key: String,
    /// Ingest node that recorded it.
    pub ingest_node: String,
    /// Size in bytes.
    pub size_bytes: i64,
    /// When recording started.
    pub started_at: DateTime<Utc>,
}

/// Counts one more recorded publish of stream `stream_id`: on its PREPARING asset,
/// created (with id `new_id`) when it has none. Returns the asset.
pub async fn count_publish(
    conn: &mut AsyncPgConnection,
    stream_id: Uuid,
    new_id: Uuid,
) -> QueryResult<AssetRow> {
    // `status = 'preparing'` (AssetStatus::Preparing) is spelled as in the partial
    // unique index of the migration, which ON CONFLICT must name.
    diesel::sql_query(
        "INSERT INTO assets (id, stream_id, publishes) VALUES ($1, $2, $3) \
         ON CONFLICT (stream_id) WHERE status = 'preparing' \
         DO UPDATE SET publishes = assets.publishes + 1, updated_at = now() \
         RETURNING *",
    )
    .bind::<SqlUuid, _>(new_id)
    .bind::<SqlUuid, _>(stream_id)
    .bind::<Integer, _>(1)
    .get_result(conn)
    .await
}

/// Returns the PREPARING asset of a stream, locking it.
pub async fn preparing_for_update(
    conn: &mut AsyncPgConnection,
    stream_id: Uuid,
) -> QueryResult<Option<AssetRow>> {
    assets::table
        .filter(assets::stream_id.eq(stream_id))
        .filter(assets::status.eq(AssetStatus::Preparing.as_db()))
        .select(AssetRow::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()
}

/// Returns an asset with its stream's owner and policy.
pub async fn find(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<AssetWithStream>> {
    assets::table
        .inner_join(streams::table)
        .filter(assets::id.eq(id))
        .select((
            AssetRow::as_select(),
            streams::owner,
            streams::playback_policy,
        ))
        .first(conn)
        .await
        .optional()
}

/// Returns an asset, locking it.
pub async fn find_for_update(
    conn: &mut AsyncPgConnection,
    id: Uuid,
) -> QueryResult<Option<AssetRow>> {
    assets::table
        .find(id)
        .select(AssetRow::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()
}

/// Returns a page of a stream's assets, newest first, ids below `before` only.
pub async fn list_for_stream(
    conn: &mut AsyncPgConnection,
    stream_id: Uuid,
    before: Option<Uuid>,
    limit: i64,
) -> QueryResult<Vec<AssetWithStream>> {
    let mut query = assets::table
        .inner_join(streams::table)
        .filter(assets::stream_id.eq(stream_id))
        .select((
            AssetRow::as_select(),
            streams::owner,
            streams::playback_policy,
        ))
        .into_boxed();
    if let Some(before) = before {
        query = query.filter(assets::id.lt(before));
    }
    query.order(assets::id.desc()).limit(limit).load(conn).await
}

/// Deletes an asset (its pieces and job go with it).
pub async fn delete(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<()> {
    diesel::delete(assets::table.find(id))
        .execute(conn)
        .await
        .map(drop)
}

/// What a READY asset is.
#[derive(Debug, Clone)]
pub struct Made<'a> {
    /// Store folder of the run.
    pub prefix: &'a str,
    /// Playing time, milliseconds.
    pub duration_ms: i64,
    /// Bytes stored.
    pub size_bytes: i64,
}

/// Marks an asset READY and returns it.
pub async fn mark_ready(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    made: &Made<'_>,
) -> QueryResult<AssetRow> {
    diesel::update(assets::table.find(id))
        .set((
            assets::status.eq(AssetStatus::Ready.as_db()),
            assets::prefix.eq(made.prefix),
            assets::duration_ms.eq(made.duration_ms),
            assets::size_bytes.eq(made.size_bytes),
            assets::ready_at.eq(diesel::dsl::now),
            assets::updated_at.eq(diesel::dsl::now),
        ))
        .returning(AssetRow::as_returning())
        .get_result(conn)
        .await
}

/// Marks an asset ERRORED with `reason` and returns it.
pub async fn mark_errored(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    reason: &str,
) -> QueryResult<AssetRow> {
    diesel::update(assets::table.find(id))
        .set((
            assets::status.eq(AssetStatus::Errored.as_db()),
            assets::error_reason.eq(reason),
            assets::updated_at.eq(diesel::dsl::now),
        ))
        .returning(AssetRow::as_returning())
        .get_result(conn)
        .await
}

/// Records a piece; a piece already recorded changes nothing. Returns whether it
/// was new.
pub async fn add_piece(conn: &mut AsyncPgConnection, piece: &PieceRow) -> QueryResult<bool> {
    diesel::insert_into(asset_pieces::table)
        .values(piece)
        .on_conflict_do_nothing()
        .execute(conn)
        .await
        .map(|n| n > 0)
}

/// Returns an asset's pieces in recording order.
pub async fn pieces(conn: &mut AsyncPgConnection, asset_id: Uuid) -> QueryResult<Vec<PieceRow>> {
    asset_pieces::table
        .filter(asset_pieces::asset_id.eq(asset_id))
        .select(PieceRow::as_select())
        .order((
            asset_pieces::started_at.asc(),
            asset_pieces::created_at.asc(),
        ))
        .load(conn)
        .await
}

/// Deletes an asset's piece rows; returns their object keys.
pub async fn take_pieces(conn: &mut AsyncPgConnection, asset_id: Uuid) -> QueryResult<Vec<String>> {
    diesel::delete(asset_pieces::table.filter(asset_pieces::asset_id.eq(asset_id)))
        .returning(asset_pieces::object_key)
        .get_results(conn)
        .await
}

/// Tells whether stream `stream_id` has a READY asset.
pub async fn has_ready(conn: &mut AsyncPgConnection, stream_id: Uuid) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        assets::table
            .filter(assets::stream_id.eq(stream_id))
            .filter(assets::status.eq(AssetStatus::Ready.as_db())),
    ))
    .get_result(conn)
    .await
}

/// Returns every READY asset as the playback rules need it: id, stream, folder.
pub async fn ready_rules(
    conn: &mut AsyncPgConnection,
) -> QueryResult<Vec<(Uuid, Uuid, Option<String>)>> {
    assets::table
        .filter(assets::status.eq(AssetStatus::Ready.as_db()))
        .select((assets::id, assets::stream_id, assets::prefix))
        .load(conn)
        .await
}

/// Returns (and locks, skipping rows others hold) up to `limit` finished assets
/// (READY or ERRORED) created before `before`.
pub async fn lock_expired(
    conn: &mut AsyncPgConnection,
    before: DateTime<Utc>,
    limit: i64,
) -> QueryResult<Vec<AssetRow>> {
    assets::table
        .filter(assets::status.ne(AssetStatus::Preparing.as_db()))
        .filter(assets::created_at.lt(before))
        .select(AssetRow::as_select())
        .order(assets::created_at.asc())
        .limit(limit)
        .for_update()
        .skip_locked()
        .load(conn)
        .await
}
