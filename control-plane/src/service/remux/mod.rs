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
//! expired assets ([`retention`]). `attempt` is one run in its work folder
//! (`ffmpeg` the remux proper, `failure` why it failed), `lease` keeps the job while
//! it runs, `outcome` commits how it ended.

mod attempt;
pub mod failure;
pub mod ffmpeg;
mod lease;
mod outcome;
pub mod retention;

use std::{
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use nova_store::{AssetStore, keys};
use object_store::path::Path as ObjectPath;
use uuid::Uuid;

use crate::{
    db::{DbPool, assets, remux_jobs},
    error::Result,
    metrics::{CpMetrics, RemuxOutcome},
    service::{garbage as store_garbage, publish::Publisher},
    shutdown,
};
use lease::renew;

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
