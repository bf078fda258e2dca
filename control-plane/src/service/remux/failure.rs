//! Why a remux attempt failed. The text of a [`RemuxError`] (without its sources)
//! becomes the asset's error reason: it names what failed, never a secret, a stream
//! key or a path on this machine; the sources go to the log only.

use nova_store::StoreError;

/// Why a remux attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum RemuxError {
    /// The attempt's work folder could not be made.
    #[error("cannot create the remux work folder")]
    WorkFolder(#[source] std::io::Error),
    /// A piece could not be read from the store.
    #[error("cannot fetch a recorded piece from the asset store")]
    Fetch(#[source] StoreError),
    /// The concat list could not be written.
    #[error("cannot write the concat list")]
    ConcatList(#[source] std::io::Error),
    /// ffmpeg could not be started.
    #[error("cannot run ffmpeg")]
    Spawn(#[source] std::io::Error),
    /// ffmpeg ran longer than `NOVA_REMUX_TIMEOUT` (seconds).
    #[error("ffmpeg ran longer than {0}s")]
    Timeout(u64),
    /// ffmpeg failed, with its exit status and last words (work folder paths cut).
    #[error("ffmpeg failed ({status}): {said}")]
    Ffmpeg {
        /// How it exited.
        status: String,
        /// The end of its error output.
        said: String,
    },
    /// ffmpeg exited well but wrote no playlist.
    #[error("ffmpeg wrote no playlist")]
    NoPlaylist(#[source] std::io::Error),
    /// The playlist is not a complete VOD rendition.
    #[error("the remuxed playlist {0}")]
    Playlist(PlaylistError),
    /// A file could not be stored.
    #[error("cannot store {name} in the asset store")]
    Store {
        /// The file.
        name: String,
        /// What the store said.
        #[source]
        source: StoreError,
    },
    /// Shutdown, or a lost lease, stopped the attempt.
    #[error("stopped")]
    Stopped,
}

/// What is wrong with a remuxed playlist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlaylistError {
    /// No `#EXT-X-PLAYLIST-TYPE:VOD`.
    #[error("is not a VOD playlist")]
    NotVod,
    /// No `#EXT-X-ENDLIST`.
    #[error("has no end")]
    NoEnd,
    /// An `#EXTINF` that is not a number.
    #[error("has a bad #EXTINF: {0}")]
    BadDuration(String),
    /// A segment line that is not one of an asset's file names.
    #[error("names an unexpected segment: {0}")]
    UnexpectedSegment(String),
    /// No segment at all.
    #[error("has no segment")]
    NoSegment,
}
