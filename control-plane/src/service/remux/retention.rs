//! Retention (`NOVA_ASSET_RETENTION`): finished assets (READY or ERRORED) older than
//! the setting are deleted like an owner's delete (files marked as store garbage,
//! the row gone) in small batches, each with an audit record by the control plane
//! itself (`asset_expired`). Off unless the variable is set.

use std::time::Duration;

use chrono::Utc;
use diesel_async::AsyncConnection as _;
use nova_store::{AssetStore, keys};

use crate::{
    db::{DbPool, assets, garbage, streams},
    error::{Error, Result},
    service::{
        audit::{self, AuditAction, Change},
        garbage as store_garbage,
    },
};

/// Most assets expired per transaction.
const BATCH: i64 = 50;

/// Deletes one batch of assets older than `retention`; returns how many.
pub async fn expire(pool: &DbPool, store: &AssetStore, retention: Duration) -> Result<usize> {
    let before =
        Utc::now() - chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX);
    let mut conn = pool.get().await?;
    let (count, marked) = conn
        .transaction(async |conn| {
            let expired = assets::lock_expired(conn, before, BATCH).await?;
            let mut marked = Vec::new();
            for asset in &expired {
                let Some(stream) = streams::find(conn, asset.stream_id).await? else {
                    continue;
                };
                marked.extend(assets::take_pieces(conn, asset.id).await?);
                marked.push(keys::asset_root(asset.id).to_string());
                assets::delete(conn, asset.id).await?;
                let resource = format!("assets/{}", asset.id);
                let change = Change {
                    action: AuditAction::AssetExpired,
                    stream_id: Some(asset.stream_id),
                    resource: &resource,
                    owner: &stream.owner,
                    fields: &[],
                };
                audit::record_system(conn, &change).await?;
                tracing::info!(asset.id = %asset.id, "asset expired by retention");
            }
            garbage::add(conn, &marked).await?;
            Ok::<_, Error>((expired.len(), marked))
        })
        .await?;
    drop(conn);
    if !marked.is_empty() {
        store_garbage::delete_now(pool, store, &marked).await;
    }
    Ok(count)
}
