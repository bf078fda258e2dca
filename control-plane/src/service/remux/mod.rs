//! The remux worker: turns the recorded pieces of a completed stream's broadcast
//! into a READY asset, from durable jobs in PostgreSQL.
//!
//! Every replica runs [`run`]. A replica claims one due job at a time
//! (`FOR UPDATE SKIP LOCKED`, so two never take the same one), counts the attempt
//! and leases the job, renewing the lease while it works. The attempt writes only
//! under its own version folder (`assets/<id>/<version>`), and the asset becomes
//! READY, pointing at that folder, in one transaction that only the lease holder can
//! commit. So:
//!
//! - a worker that dies mid-remux (crash, kill, shutdown) leaves its lease to run
//!   out (`NOVA_REMUX_LEASE`); another worker (or the same after a restart) claims
//!   the job again and the dead run's folder is deleted once the asset is READY;
//! - a failing attempt waits a backoff and is retried, at most
//!   `NOVA_REMUX_ATTEMPTS` attempts in all (crashed ones included); then the asset is
//!   ERRORED with the last reason;
//! - a half-made asset is never READY.
//!
//! Between jobs the worker deletes store garbage and, with `NOVA_ASSET_RETENTION`,
//! expired assets ([`retention`]).

mod attempt;
pub mod failure;
pub mod ffmpeg;
pub mod retention;

use std::{
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use chrono::Utc;
use diesel_async::AsyncConnection as _;
use nova_store::{AssetStore, keys};
use object_store::path::Path as ObjectPath;
use uuid::Uuid;

use crate::{
    db::{
        DbPool,
        assets::{self, Made},
        garbage, remux_jobs,
    },
    error::{Error, Result},
    metrics::{CpMetrics, RemuxOutcome},
    service::{
        events::{Event, Outbox},
        garbage as store_garbage, lifecycle,
        publish::Publisher,
    },
    shutdown,
};

/// How the worker runs; see the control plane's configuration.
#[derive(Debug, Clone)]
pub struct RemuxSettings {
    /// Most attempts per asset, crashed ones included.
    pub attempts: u32,
    /// How long a claimed job stays the claimer's without a renewal.
    pub lease: Duration,
    /// How long a queued job waits for pieces that have not arrived.
    pub wait: Duration,
    /// Parent folder of work folders.
    pub dir: PathBuf,
    /// Longest ffmpeg run.
    pub timeout: Duration,
    /// The ffmpeg binary.
    pub ffmpeg: PathBuf,
    /// How often the worker looks for due jobs.
    pub poll: Duration,
    /// Age at which finished assets are deleted; `None` keeps them.
    pub retention: Option<Duration>,
}

/// Store garbage and retention run every this many polls.
const MAINTENANCE_EVERY: u32 = 10;
/// First retry delay; it doubles per attempt, up to [`MAX_BACKOFF`].
const BASE_BACKOFF: Duration = Duration::from_secs(2);
/// Longest retry delay.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// The worker's shared parts; cheap to clone.
#[derive(Clone)]
pub struct Remuxer {
    /// Connection pool.
    pool: DbPool,
    /// The asset store.
    store: AssetStore,
    /// Publishes committed asset events.
    publisher: Publisher,
    /// Remux metrics.
    metrics: CpMetrics,
    /// Settings.
    settings: Arc<RemuxSettings>,
}

/// How an attempt ended, for the job's bookkeeping.
enum Ending {
    /// Made; the asset may become READY.
    Made(attempt::Rendition),
    /// Failed.
    Failed(failure::RemuxError),
    /// Stopped by shutdown; the lease runs out.
    Stopped,
    /// The lease was lost (another run holds the job, or the asset is gone).
    Lost,
}

impl Remuxer {
    /// Builds the worker.
    pub fn new(
        pool: DbPool,
        store: AssetStore,
        publisher: Publisher,
        metrics: CpMetrics,
        settings: RemuxSettings,
    ) -> Self {
        Self {
            pool,
            store,
            publisher,
            metrics,
            settings: Arc::new(settings),
        }
    }

    /// Claims and runs one due job; returns whether there was one.
    pub async fn run_one(&self, stop: &shutdown::Signal) -> Result<bool> {
        let version = Uuid::new_v4();
        let claimed = {
            let mut conn = self.pool.get().await?;
            remux_jobs::claim(&mut conn, version, self.settings.lease, self.settings.wait).await?
        };
        let Some(job) = claimed else {
            return Ok(false);
        };
        let asset = job.asset_id;
        tracing::info!(asset.id = %asset, remux.attempt = job.attempts, "remux started");
        if job.attempts > i32::try_from(self.settings.attempts).unwrap_or(i32::MAX) {
            let reason = match job.last_error {
                Some(last) => format!("remux failed {} times; last: {last}", job.attempts - 1),
                None => format!("remux interrupted {} times", job.attempts - 1),
            };
            self.fail(asset, version, job.attempts, reason, true)
                .await?;
            return Ok(true);
        }
        let all = {
            let mut conn = self.pool.get().await?;
            assets::pieces(&mut conn, asset).await?
        };
        let pieces: Vec<_> = all
            .iter()
            .filter(|p| p.size_bytes >= attempt::MIN_PIECE_BYTES)
            .cloned()
            .collect();
        if pieces.is_empty() {
            let reason = if all.is_empty() {
                "no recording arrived"
            } else {
                "the recording is empty"
            };
            self.fail(asset, version, job.attempts, reason.into(), true)
                .await?;
            return Ok(true);
        }
        let prefix = keys::asset_version(asset, version);
        let started = Instant::now();
        let ending = self.attempt(asset, version, &prefix, &pieces, stop).await;
        match ending {
            Ending::Made(rendition) => {
                self.finish(asset, version, &prefix, &rendition, started.elapsed())
                    .await?;
            }
            Ending::Failed(err) => {
                tracing::warn!(asset.id = %asset, remux.attempt = job.attempts, error = %nova_runtime::causes(&err), "remux attempt failed");
                self.fail(asset, version, job.attempts, err.to_string(), false)
                    .await?;
            }
            Ending::Stopped => {
                tracing::info!(asset.id = %asset, "remux stopped by shutdown; the job is retried once its lease runs out");
            }
            Ending::Lost => {
                self.metrics.remux(RemuxOutcome::Lost);
                tracing::warn!(asset.id = %asset, "remux lost its job (lease ran out, or the asset was deleted)");
                self.discard(&prefix).await;
            }
        }
        Ok(true)
    }

    /// Runs the attempt while renewing the lease; tells how it ended.
    async fn attempt(
        &self,
        asset: Uuid,
        version: Uuid,
        prefix: &ObjectPath,
        pieces: &[crate::db::assets::PieceRow],
        stop: &shutdown::Signal,
    ) -> Ending {
        let cancel = stop.token().child_token();
        let lost = Arc::new(AtomicBool::new(false));
        let renewer = tokio::spawn(renew(
            self.pool.clone(),
            asset,
            version,
            self.settings.lease,
            cancel.clone(),
            lost.clone(),
        ));
        let made = attempt::make(
            attempt::Inputs {
                store: &self.store,
                dir: &self.settings.dir,
                ffmpeg: &self.settings.ffmpeg,
                timeout: self.settings.timeout,
                pieces,
                prefix,
                name: version.to_string(),
            },
            cancel.clone(),
        )
        .await;
        renewer.abort();
        match made {
            _ if lost.load(Ordering::SeqCst) => Ending::Lost,
            _ if stop.fired() => Ending::Stopped,
            Ok(rendition) => Ending::Made(rendition),
            Err(err) => Ending::Failed(err),
        }
    }

    /// Makes the asset READY on run `version`'s folder, if the run still holds the
    /// job: pieces and the folders of other runs become garbage, `asset_ready` is
    /// logged, all in one transaction.
    async fn finish(
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
    async fn fail(
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
    async fn discard(&self, prefix: &ObjectPath) {
        if let Err(err) = self.store.delete_prefix(prefix).await {
            tracing::warn!(error = %err, "cannot delete the files of a lost remux run");
        }
    }

    /// Deletes store garbage and expired assets.
    async fn maintain(&self) {
        if let Err(err) = store_garbage::sweep(&self.pool, &self.store).await {
            tracing::warn!(error = %err, "store garbage sweep failed");
        }
        if let Some(retention) = self.settings.retention
            && let Err(err) = retention::expire(&self.pool, &self.store, retention).await
        {
            tracing::warn!(error = %err, "asset retention sweep failed");
        }
    }
}

/// Renews the lease of run `version` every third of `lease` until cancelled; when
/// the run lost the job, sets `lost` and cancels the attempt.
async fn renew(
    pool: DbPool,
    asset: Uuid,
    version: Uuid,
    lease: Duration,
    cancel: tokio_util::sync::CancellationToken,
    lost: Arc<AtomicBool>,
) {
    let mut tick = shutdown::steady(lease / 3);
    tick.tick().await;
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let renewed = match pool.get().await {
            Ok(mut conn) => remux_jobs::renew(&mut conn, asset, version, lease).await,
            Err(err) => {
                tracing::warn!(error = %err, "cannot renew a remux lease");
                continue;
            }
        };
        match renewed {
            Ok(true) => {}
            Ok(false) => {
                lost.store(true, Ordering::SeqCst);
                cancel.cancel();
                return;
            }
            Err(err) => tracing::warn!(error = %err, "cannot renew a remux lease"),
        }
    }
}

/// Returns the delay before retry `attempts + 1`.
fn backoff(attempts: i32) -> chrono::Duration {
    let exponent = u32::try_from(attempts.saturating_sub(1))
        .unwrap_or(0)
        .min(16);
    let delay = BASE_BACKOFF
        .saturating_mul(2u32.saturating_pow(exponent))
        .min(MAX_BACKOFF);
    chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX)
}

/// Runs the worker until shutdown: due jobs one at a time, and between them the
/// store garbage and retention.
pub async fn run(remuxer: Remuxer, stop: shutdown::Signal) {
    if let Err(err) = tokio::fs::create_dir_all(&remuxer.settings.dir).await {
        tracing::error!(dir = %remuxer.settings.dir.display(), error = %err, "cannot create the remux folder (NOVA_REMUX_DIR)");
    }
    let mut ticker = shutdown::Ticker::new(remuxer.settings.poll, stop.clone());
    let mut polls = 0u32;
    while ticker.tick().await {
        if polls.is_multiple_of(MAINTENANCE_EVERY) {
            remuxer.maintain().await;
        }
        polls = polls.wrapping_add(1);
        while !stop.fired() {
            match remuxer.run_one(&stop).await {
                Ok(true) => {}
                Ok(false) => break,
                Err(err) => {
                    tracing::warn!(error = %err, "remux worker: cannot reach the database");
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        assert_eq!(backoff(1), chrono::Duration::seconds(2));
        assert_eq!(backoff(2), chrono::Duration::seconds(4));
        assert_eq!(backoff(3), chrono::Duration::seconds(8));
        assert_eq!(backoff(30), chrono::Duration::seconds(300));
    }
}
