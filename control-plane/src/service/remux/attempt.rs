//! One remux attempt in its own work folder: fetch the pieces from the store, run
//! ffmpeg, check the rendition and store it under the attempt's own version folder.
//! The work folder goes when the attempt ends, however it ends.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use nova_store::{AssetStore, VodFile};
use object_store::path::Path as ObjectPath;
use tokio_util::sync::CancellationToken;

use super::{failure::RemuxError, ffmpeg};
use crate::db::assets::PieceRow;

/// Pieces smaller than this hold no media (an FLV header at most): skipped.
pub(crate) const MIN_PIECE_BYTES: i64 = 1024;

/// What an attempt made.
#[derive(Debug, Clone)]
pub(crate) struct Rendition {
    /// Playing time.
    pub duration: Duration,
    /// Bytes stored.
    pub size_bytes: u64,
}

/// A work folder, removed on drop.
struct WorkDir(PathBuf);

impl Drop for WorkDir {
    fn drop(&mut self) {
        if let Err(err) = std::fs::remove_dir_all(&self.0)
            && err.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(dir = %self.0.display(), error = %err, "cannot remove a remux work folder");
        }
    }
}

/// What an attempt works with.
pub(crate) struct Inputs<'a> {
    /// The store.
    pub store: &'a AssetStore,
    /// Parent of work folders.
    pub dir: &'a Path,
    /// The ffmpeg binary.
    pub ffmpeg: &'a Path,
    /// Longest ffmpeg run.
    pub timeout: Duration,
    /// The pieces, in recording order.
    pub pieces: &'a [PieceRow],
    /// Store folder to write, `assets/<id>/<version>`.
    pub prefix: &'a ObjectPath,
    /// Name of this attempt's work folder (its version).
    pub name: String,
}

/// Makes the rendition and stores it under `inputs.prefix`. Stops early when `stop`
/// fires.
pub(crate) async fn make(
    inputs: Inputs<'_>,
    stop: CancellationToken,
) -> Result<Rendition, RemuxError> {
    let work = WorkDir(inputs.dir.join(&inputs.name));
    let (pieces_dir, out) = (work.0.join("in"), work.0.join("out"));
    for dir in [&pieces_dir, &out] {
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(RemuxError::WorkFolder)?;
    }
    let mut names = Vec::new();
    for (n, piece) in inputs.pieces.iter().enumerate() {
        let name = format!("{n}.flv");
        let key = ObjectPath::from(piece.object_key.as_str());
        let local = pieces_dir.join(&name);
        tokio::select! {
            fetched = inputs.store.download_file(&key, &local) => {
                fetched.map_err(RemuxError::Fetch)?;
            }
            () = stop.cancelled() => return Err(RemuxError::Stopped),
        }
        names.push(name);
    }
    let list = pieces_dir.join("list.ffconcat");
    tokio::fs::write(&list, ffmpeg::concat_list(&names))
        .await
        .map_err(RemuxError::ConcatList)?;
    ffmpeg::run(inputs.ffmpeg, &list, &out, inputs.timeout, stop.clone())
        .await
        .map_err(|err| match err {
            // ffmpeg names the files it read and wrote: no paths of this machine.
            RemuxError::Ffmpeg { status, said } => RemuxError::Ffmpeg {
                status,
                said: said.replace(&format!("{}/", work.0.display()), ""),
            },
            other => other,
        })?;
    let playlist = tokio::fs::read_to_string(out.join(VodFile::PLAYLIST))
        .await
        .map_err(RemuxError::NoPlaylist)?;
    let (duration, segments) = ffmpeg::check_playlist(&playlist).map_err(RemuxError::Playlist)?;
    let mut size_bytes = 0u64;
    for (file, name) in ffmpeg::upload_order(&out, &segments) {
        let key = ObjectPath::from(format!("{}/{name}", inputs.prefix));
        tokio::select! {
            stored = inputs.store.upload_file(&file, &key) => {
                size_bytes += stored.map_err(|source| RemuxError::Store { name, source })?;
            }
            () = stop.cancelled() => return Err(RemuxError::Stopped),
        }
    }
    Ok(Rendition {
        duration,
        size_bytes,
    })
}
