//! How a remux job ends: READY on the run's folder, or a failed attempt retried
//! later or ERRORED, each in one transaction that only the run holding the job's
//! lease can commit; what the run leaves behind becomes store garbage.

use std::time::Duration;

use chrono::Utc;
use diesel_async::AsyncConnection as _;
use nova_store::keys;
use object_store::path::Path as ObjectPath;
use uuid::Uuid;

use super::{Remuxer, attempt, lease::backoff};
use crate::{
    db::{
        assets::{self, Made},
        garbage, remux_jobs,
    },
    error::{Error, Result},
    metrics::RemuxOutcome,
    service::{
        events::{Event, Outbox},
        garbage as store_garbage, lifecycle,
    },
};

impl Remuxer {
    /// Makes the asset READY on run `version`'s folder, if the run still holds the
    /// job: pieces and the folders of other runs become garbage, `asset_ready` is
    /// logged, all in one transaction.
    pub(super) async fn finish(
        &self,
        asset: Uuid,
        version: Uuid,
        prefix: &ObjectPath,
        rendition: &attempt::Rendition,
        took: Duration,
    ) -> Result<()> {
        let root = keys::asset_root(asset);
        let others: Vec<String> = self
            .store
            .list(&root)
            .await
            .map(|objects| {
                let mut folders: Vec<String> = objects
                    .iter()
                    .filter(|(key, _)| !key.as_ref().starts_with(&format!("{prefix}/")))
                    .filter_map(|(key, _)| {
                        let mut parts = key.parts();
                        let (a, id, v) = (parts.next()?, parts.next()?, parts.next()?);
                        Some(format!("{}/{}/{}", a.as_ref(), id.as_ref(), v.as_ref()))
                    })
                    .collect();
                folders.sort();
                folders.dedup();
                folders
            })
            .unwrap_or_default();
        let duration_ms = i64::try_from(rendition.duration.as_millis()).unwrap_or(i64::MAX);
        let size_bytes = i64::try_from(rendition.size_bytes).unwrap_or(i64::MAX);
        let prefix_text = prefix.to_string();
        let mut conn = self.pool.get().await?;
        let mut out = Outbox::new();
        let done = conn
            .transaction(async |conn| {
                if remux_jobs::lock_held(conn, asset, version).await?.is_none() {
                    return Ok::<_, Error>(None);
                }
                let row = assets::mark_ready(
                    conn,
                    asset,
                    &Made {
                        prefix: &prefix_text,
                        duration_ms,
                        size_bytes,
                    },
                )
                .await?;
                let mut marked = assets::take_pieces(conn, asset).await?;
                marked.extend(others.iter().cloned());
                garbage::add(conn, &marked).await?;
                remux_jobs::delete(conn, asset).await?;
                let event = Event::AssetReady {
                    asset_id: asset,
                    duration_ms,
                    size_bytes,
                };
                lifecycle::append(conn, &mut out, row.stream_id, event).await?;
                Ok(Some(marked))
            })
            .await?;
        let Some(marked) = done else {
            self.metrics.remux(RemuxOutcome::Lost);
            tracing::warn!(asset.id = %asset, "remux finished after losing its job; its files are discarded");
            self.discard(prefix).await;
            return Ok(());
        };
        self.publisher.publish(&out);
        self.metrics.remux(RemuxOutcome::Ready);
        self.metrics.asset_ready(took, rendition.size_bytes);
        tracing::info!(asset.id = %asset, asset.duration_ms = duration_ms, asset.bytes = size_bytes, remux.seconds = took.as_secs_f64(), "asset ready");
        store_garbage::delete_now(&self.pool, &self.store, &marked).await;
        Ok(())
    }

    /// Records a failed attempt of run `version`: retried after a backoff, or, with
    /// `final_attempt` or the attempts used up, the asset ERRORED with `reason`
    /// (`asset_errored` logged). Whatever the run stored becomes garbage.
    pub(super) async fn fail(
        &self,
        asset: Uuid,
        version: Uuid,
        attempts: i32,
        reason: String,
        final_attempt: bool,
    ) -> Result<()> {
        let give_up =
            final_attempt || attempts >= i32::try_from(self.settings.attempts).unwrap_or(i32::MAX);
        let run_folder = keys::asset_version(asset, version).to_string();
        let mut conn = self.pool.get().await?;
        let mut out = Outbox::new();
        let done = conn
            .transaction(async |conn| {
                if remux_jobs::lock_held(conn, asset, version).await?.is_none() {
                    return Ok::<_, Error>(None);
                }
                let mut marked = vec![run_folder.clone()];
                if give_up {
                    let row = assets::mark_errored(conn, asset, &reason).await?;
                    marked.extend(assets::take_pieces(conn, asset).await?);
                    remux_jobs::delete(conn, asset).await?;
                    let event = Event::AssetErrored {
                        asset_id: asset,
                        reason: reason.clone(),
                    };
                    lifecycle::append(conn, &mut out, row.stream_id, event).await?;
                } else {
                    let run_after = Utc::now() + backoff(attempts);
                    remux_jobs::retry_later(conn, asset, &reason, run_after).await?;
                }
                garbage::add(conn, &marked).await?;
                Ok(Some(marked))
            })
            .await?;
        let Some(marked) = done else {
            self.metrics.remux(RemuxOutcome::Lost);
            return Ok(());
        };
        self.publisher.publish(&out);
        if give_up {
            self.metrics.remux(RemuxOutcome::Errored);
            tracing::warn!(asset.id = %asset, reason = %reason, "asset errored");
        } else {
            self.metrics.remux(RemuxOutcome::Retried);
        }
        store_garbage::delete_now(&self.pool, &self.store, &marked).await;
        Ok(())
    }

    /// Deletes what a run that lost its job stored (best effort: the READY run's
    /// finish also deletes every other run's folder).
    pub(super) async fn discard(&self, prefix: &ObjectPath) {
        if let Err(err) = self.store.delete_prefix(prefix).await {
            tracing::warn!(error = %err, "cannot delete the files of a lost remux run");
        }
    }
}
