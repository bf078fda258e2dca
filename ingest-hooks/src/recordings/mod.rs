//! Recorded pieces, from nginx's recording application to the control plane.
//!
//! nginx's `on_record_done` names a closed piece; [`Recorder::closed`] moves it at
//! once out of nginx's way into the `done/` folder of `NOVA_RECORD_DIR` (so a piece
//! nginx opens in the same second cannot overwrite it) and answers nginx. In the
//! background the piece is put in the asset store
//! (`recordings/<stream id>/<node>_<opened>_<tag>.flv`) and handed over with
//! `IngestService.ReportRecording`; the local file goes once the control plane has
//! it (or said nothing wants it, when the stored copy goes too).
//!
//! Nothing is lost to a failure or a restart: a piece waits in `done/` until it was
//! handed over, and every [`SWEEP`] (and at start) the recorder retries what waits
//! there and adopts pieces nginx closed without a callback reaching us (older than
//! [`ORPHAN_AGE`], since nginx writes to a piece it records many times a second).

pub mod piece;

use std::{
    collections::HashSet,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::Duration,
};

use backon::{ExponentialBuilder, Retryable};
use nova_store::{AssetStore, keys};
use tokio::sync::Semaphore;
use uuid::Uuid;

use crate::{error::HookError, metrics::HooksMetrics, shutdown, upstream::Upstream};
use piece::PieceName;

/// Time between sweeps of the recording folders.
pub const SWEEP: Duration = Duration::from_secs(30);
/// A piece in nginx's folder untouched this long was closed without a callback.
pub const ORPHAN_AGE: Duration = Duration::from_secs(60);
/// Pieces handed over at the same time.
const SLOTS: usize = 2;

/// Hands recorded pieces over; cheap to clone.
#[derive(Clone)]
pub struct Recorder(Arc<Inner>);

struct Inner {
    /// nginx's `record_path`.
    dir: PathBuf,
    /// Pieces waiting to be handed over.
    done: PathBuf,
    /// The asset store.
    store: AssetStore,
    /// The control plane.
    upstream: Upstream,
    /// This node's id, in object names.
    node: String,
    /// Pieces being handed over now.
    in_flight: Mutex<HashSet<PathBuf>>,
    /// Bounds concurrent uploads.
    slots: Semaphore,
    /// Instruments.
    metrics: HooksMetrics,
    /// Background hand-overs, joined on shutdown.
    tasks: shutdown::Tasks,
}

/// Why a piece was not handed over (it waits for the next sweep).
#[derive(Debug, thiserror::Error)]
pub enum HandOverError {
    /// A file in `done/` that is not named as a handed piece.
    #[error("a file in done/ that is not a handed piece")]
    NotAPiece,
    /// Its store key would not be a piece's.
    #[error("piece key: {0}")]
    Key(#[from] nova_store::keys::KeyError),
    /// The asset store failed.
    #[error(transparent)]
    Store(#[from] nova_store::StoreError),
    /// The control plane could not be told.
    #[error(transparent)]
    Upstream(#[from] HookError),
}

/// How a hand-over ended (the `result` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandOver {
    /// An asset took the piece.
    Taken,
    /// No asset wanted it; it was deleted.
    Unwanted,
    /// It failed; the piece waits for the next sweep.
    Failed,
}

impl HandOver {
    /// Returns the label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Taken => "taken",
            Self::Unwanted => "unwanted",
            Self::Failed => "failed",
        }
    }
}

impl Recorder {
    /// Builds the recorder over nginx's recording folder `dir` (its `done/` folder is
    /// created).
    pub fn new(
        dir: &Path,
        store: AssetStore,
        upstream: Upstream,
        metrics: HooksMetrics,
        tasks: shutdown::Tasks,
    ) -> std::io::Result<Self> {
        let done = dir.join("done");
        std::fs::create_dir_all(&done)?;
        Ok(Self(Arc::new(Inner {
            dir: dir.to_owned(),
            done,
            node: upstream.node().id.clone(),
            store,
            upstream,
            in_flight: Mutex::default(),
            slots: Semaphore::new(SLOTS),
            metrics,
            tasks,
        })))
    }

    /// Takes over the piece nginx closed at `path` for `stream` (connection
    /// `client_id`): moves it into `done/` and hands it over in the background. A
    /// path outside the recording folder, or not named as nginx names pieces of
    /// `stream`, is refused.
    pub fn closed(&self, stream: Uuid, path: &str, client_id: &str) -> Result<(), HookError> {
        let refused = || HookError::Refused("not a recorded piece of this node".into());
        let path = Path::new(path);
        let file = path
            .file_name()
            .and_then(|f| f.to_str())
            .ok_or_else(refused)?;
        if path.parent() != Some(self.0.dir.as_path()) {
            return Err(refused());
        }
        let (named, opened) = PieceName::from_nginx(file).ok_or_else(refused)?;
        if named != stream || client_id.is_empty() || !client_id.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(refused());
        }
        let piece = PieceName {
            stream,
            opened,
            tag: format!("c{}", &client_id[..client_id.len().min(20)]),
        };
        let target = self.0.done.join(piece.done_name());
        if let Err(err) = std::fs::rename(path, &target) {
            tracing::warn!(stream.id = %stream, error = %err, "cannot take over a recorded piece");
            return Err(HookError::Refused("recorded piece not found".into()));
        }
        tracing::info!(stream.id = %stream, "recorded piece closed");
        self.spawn(target);
        Ok(())
    }

    /// Sweeps now and every [`SWEEP`] until shutdown.
    pub async fn run(self, stop: shutdown::Signal) {
        let mut ticker = shutdown::Ticker::new(SWEEP, stop);
        while ticker.tick().await {
            self.sweep().await;
        }
    }

    /// Adopts orphaned pieces and retries every piece waiting in `done/`.
    async fn sweep(&self) {
        if let Ok(mut entries) = tokio::fs::read_dir(&self.0.dir).await {
            while let Ok(Some(entry)) = entries.next_entry().await {
                self.adopt(&entry.path()).await;
            }
        }
        let mut waiting = Vec::new();
        if let Ok(mut entries) = tokio::fs::read_dir(&self.0.done).await {
            while let Ok(Some(entry)) = entries.next_entry().await {
                waiting.push(entry.path());
            }
        }
        for file in waiting {
            self.spawn(file);
        }
    }

    /// Moves a piece nginx closed long ago without a callback into `done/`.
    async fn adopt(&self, path: &Path) {
        let Some((stream, opened)) = path
            .file_name()
            .and_then(|f| f.to_str())
            .and_then(PieceName::from_nginx)
        else {
            return;
        };
        let idle = tokio::fs::metadata(path)
            .await
            .ok()
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.elapsed().ok());
        if idle.is_none_or(|idle| idle < ORPHAN_AGE) {
            return;
        }
        let piece = PieceName {
            stream,
            opened,
            tag: "o".into(),
        };
        if tokio::fs::rename(path, self.0.done.join(piece.done_name()))
            .await
            .is_ok()
        {
            tracing::info!(stream.id = %stream, "recorded piece adopted without its callback");
        }
    }

    /// Hands `file` over in the background, unless it is being handed over already.
    fn spawn(&self, file: PathBuf) {
        if !self.in_flight().insert(file.clone()) {
            return;
        }
        let recorder = self.clone();
        self.0.tasks.spawn(async move {
            let result = {
                let _slot = recorder.0.slots.acquire().await;
                recorder.hand_over(&file).await
            };
            recorder.in_flight().remove(&file);
            let outcome = match result {
                Ok(outcome) => outcome,
                Err(err) => {
                    tracing::warn!(error = %nova_runtime::causes(&err), "recorded piece not handed over; retried at the next sweep");
                    HandOver::Failed
                }
            };
            recorder.0.metrics.recording(outcome);
        });
    }

    /// Stores `file`, reports it, then removes what nobody needs any more.
    async fn hand_over(&self, file: &Path) -> Result<HandOver, HandOverError> {
        let name = file
            .file_name()
            .and_then(|f| f.to_str())
            .and_then(PieceName::from_done)
            .ok_or(HandOverError::NotAPiece)?;
        let key = keys::piece(name.stream, &name.object_name(&self.0.node))?;
        let size = self.0.store.upload_file(file, &key).await?;
        let backoff = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(200))
            .with_max_delay(Duration::from_secs(5))
            .with_jitter()
            .with_max_times(8);
        let report = || async {
            self.0
                .upstream
                .report_recording(name.stream, key.as_ref(), size, name.opened_at())
                .await
        };
        let accepted = report
            .retry(backoff)
            .sleep(tokio::time::sleep)
            .when(|err| matches!(err, HookError::Upstream(_)))
            .await?;
        if !accepted {
            self.0.store.delete(&key).await?;
        }
        if let Err(err) = tokio::fs::remove_file(file).await {
            tracing::warn!(error = %err, "cannot remove a handed recorded piece");
        }
        tracing::info!(stream.id = %name.stream, piece.bytes = size, accepted, "recorded piece handed over");
        Ok(if accepted {
            HandOver::Taken
        } else {
            HandOver::Unwanted
        })
    }

    fn in_flight(&self) -> std::sync::MutexGuard<'_, HashSet<PathBuf>> {
        self.0.in_flight.lock().unwrap_or_else(|p| p.into_inner())
    }
}
