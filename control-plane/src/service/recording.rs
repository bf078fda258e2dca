//! Recording rules: which publishes are recorded, which asset a recorded piece
//! joins, and when the asset's remux is queued.
//!
//! An accepted publish of a stream with `record` on, on an ingest node that
//! records, counts on the stream's PREPARING asset (created at the first one): the
//! asset now waits for that publish's piece. ingest-hooks hands each piece over
//! (`ReportRecording`) once it is in the store. When the stream completes, its
//! asset's remux job is queued in the same transaction; the worker runs it once
//! every counted publish delivered its piece, or `NOVA_RECORDING_WAIT` later.

use chrono::{DateTime, Utc};
use diesel_async::{AsyncConnection as _, AsyncPgConnection};
use nova_store::keys;
use uuid::Uuid;

use crate::{
    db::{
        DbPool,
        assets::{self, PieceRow},
        remux_jobs,
        streams::StreamRow,
    },
    error::{Error, Result},
};

/// Counts an accepted publish of `stream` on its PREPARING asset, creating the asset
/// at the first one; does nothing unless the stream records and the ingest node
/// does (`node_records`). Call it inside the publish's transaction.
pub async fn count_publish(
    conn: &mut AsyncPgConnection,
    stream: &StreamRow,
    node_records: bool,
) -> Result<()> {
    if !(stream.record && node_records) {
        return Ok(());
    }
    let asset = assets::count_publish(conn, stream.id, Uuid::now_v7()).await?;
    tracing::info!(stream.id = %stream.id, asset.id = %asset.id, asset.publishes = asset.publishes, "recorded publish counted");
    Ok(())
}

/// Queues the remux of stream `stream_id`'s PREPARING asset, if it has one. Call it
/// inside the transaction that completes the stream.
pub async fn queue_remux(conn: &mut AsyncPgConnection, stream_id: Uuid) -> Result<()> {
    if let Some(asset) = assets::preparing_for_update(conn, stream_id).await? {
        remux_jobs::insert(conn, asset.id).await?;
        tracing::info!(stream.id = %stream_id, asset.id = %asset.id, "asset remux queued");
    }
    Ok(())
}

/// A recorded piece handed over by an ingest node.
#[derive(Debug, Clone)]
pub struct Piece {
    /// Recorded stream.
    pub stream_id: Uuid,
    /// Ingest node that recorded it.
    pub node: String,
    /// Its key in the store.
    pub object_key: String,
    /// Size in bytes.
    pub size_bytes: i64,
    /// When recording started.
    pub started_at: DateTime<Utc>,
}

/// Recorded pieces over PostgreSQL.
#[derive(Clone)]
pub struct Recordings {
    /// Connection pool.
    pool: DbPool,
}

impl Recordings {
    /// Builds the service.
    pub fn new(pool: DbPool) -> Self {
        Self { pool }
    }

    /// Adds `piece` to its stream's PREPARING asset; returns false when no asset
    /// wants it (the caller deletes it). Repeating a report changes nothing.
    pub async fn report(&self, piece: &Piece) -> Result<bool> {
        keys::parse_piece(piece.stream_id, &piece.object_key)
            .map_err(|e| Error::invalid("object_key", e.to_string()))?;
        if piece.size_bytes < 0 {
            return Err(Error::invalid("size_bytes", "must not be negative"));
        }
        if piece.node.is_empty() || piece.node.len() > 128 {
            return Err(Error::invalid("ingest_node", "must be 1 to 128 characters"));
        }
        let mut conn = self.pool.get().await?;
        let taken = conn
            .transaction(async |conn| {
                let Some(asset) = assets::preparing_for_update(conn, piece.stream_id).await? else {
                    return Ok::<_, Error>(None);
                };
                let new = assets::add_piece(
                    conn,
                    &PieceRow {
                        asset_id: asset.id,
                        object_key: piece.object_key.clone(),
                        ingest_node: piece.node.clone(),
                        size_bytes: piece.size_bytes,
                        started_at: piece.started_at,
                    },
                )
                .await?;
                Ok(Some((asset.id, new)))
            })
            .await?;
        match taken {
            Some((asset, new)) => {
                if new {
                    tracing::info!(stream.id = %piece.stream_id, asset.id = %asset, piece.bytes = piece.size_bytes, "recorded piece received");
                }
                Ok(true)
            }
            None => {
                tracing::info!(stream.id = %piece.stream_id, "recorded piece not wanted by any asset");
                Ok(false)
            }
        }
    }
}
