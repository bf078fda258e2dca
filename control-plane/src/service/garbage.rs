//! Store garbage: objects and folders nothing points at any more (deleted assets,
//! the pieces of finished ones, runs that lost their job). They are marked in
//! `store_garbage` inside the transaction that lets go of them, then deleted from
//! the store, and forgotten only once deleted, so a failure or a crash in between
//! leaves them marked for the next sweep.

use nova_store::AssetStore;
use object_store::path::Path;

use crate::{
    db::{DbPool, garbage},
    error::Result,
};

/// Garbage entries deleted per sweep.
const SWEEP_BATCH: i64 = 100;

/// Deletes `prefixes` (objects or folders) from the store now and forgets them;
/// one that fails stays marked for [`sweep`]. Returns how many were deleted.
pub async fn delete_now(pool: &DbPool, store: &AssetStore, prefixes: &[String]) -> usize {
    let mut deleted = 0;
    for prefix in prefixes {
        match remove(store, prefix).await {
            Ok(()) => match forget(pool, prefix).await {
                Ok(()) => deleted += 1,
                Err(err) => tracing::warn!(error = %err, "store garbage deleted but not forgotten"),
            },
            Err(err) => {
                tracing::warn!(store.prefix = %prefix, error = %err, "cannot delete store garbage; retrying later");
            }
        }
    }
    deleted
}

/// Deletes the oldest marked garbage; returns how many entries went.
pub async fn sweep(pool: &DbPool, store: &AssetStore) -> Result<usize> {
    let prefixes = {
        let mut conn = pool.get().await?;
        garbage::next(&mut conn, SWEEP_BATCH).await?
    };
    Ok(delete_now(pool, store, &prefixes).await)
}

/// Deletes one folder, or the object of that name when no folder holds anything.
async fn remove(store: &AssetStore, prefix: &str) -> Result<(), nova_store::StoreError> {
    let path = Path::from(prefix);
    if store.delete_prefix(&path).await? == 0 {
        store.delete(&path).await?;
    }
    Ok(())
}

async fn forget(pool: &DbPool, prefix: &str) -> Result<()> {
    let mut conn = pool.get().await?;
    garbage::done(&mut conn, prefix).await?;
    Ok(())
}
