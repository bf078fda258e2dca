//! The layout of the asset store, and the only code that names its objects:
//!
//! ```text
//! recordings/<stream id>/<piece>.flv    a recorded piece (one publish), from ingest-hooks
//! assets/<asset id>/<version>/          one remux run of an asset; READY names exactly one
//!     index.m3u8  0.ts 1.ts …           the HLS VOD rendition
//!     download.mp4                      the MP4 download
//! ```
//!
//! A remux run writes only under its own version folder, so a run that dies half
//! way leaves nothing the READY asset points at.

use object_store::path::Path;
use uuid::Uuid;

/// Folder of recorded pieces.
pub const RECORDINGS: &str = "recordings";
/// Folder of assets.
pub const ASSETS: &str = "assets";
/// Longest piece file name accepted.
pub const MAX_PIECE_NAME: usize = 128;

/// Why an object key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The key is not `recordings/<stream id>/<name>.flv` for this stream.
    #[error(
        "must be recordings/{{stream_id}}/{{file}}.flv for this stream, the file 1 to 128 characters of A-Z a-z 0-9 . _ -"
    )]
    NotAPiece,
}

/// Tells whether `name` is an acceptable piece file name: 1 to
/// [`MAX_PIECE_NAME`] characters of `A-Z a-z 0-9 . _ -`, not starting with a dot,
/// ending in `.flv`.
pub fn is_piece_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_PIECE_NAME
        && !name.starts_with('.')
        && name.ends_with(".flv")
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Returns the key of piece `name` of stream `stream`.
pub fn piece(stream: Uuid, name: &str) -> Result<Path, KeyError> {
    if !is_piece_name(name) {
        return Err(KeyError::NotAPiece);
    }
    Ok(Path::from(format!("{RECORDINGS}/{stream}/{name}")))
}

/// Checks that `key` is a piece of stream `stream` and returns it.
pub fn parse_piece(stream: Uuid, key: &str) -> Result<Path, KeyError> {
    let name = key
        .strip_prefix(&format!("{RECORDINGS}/{stream}/"))
        .ok_or(KeyError::NotAPiece)?;
    piece(stream, name)
}

/// Returns the folder of every remux run of `asset`.
pub fn asset_root(asset: Uuid) -> Path {
    Path::from(format!("{ASSETS}/{asset}"))
}

/// Returns the folder of run `version` of `asset`.
pub fn asset_version(asset: Uuid, version: Uuid) -> Path {
    Path::from(format!("{ASSETS}/{asset}/{version}"))
}

/// Parses a version folder `assets/<asset>/<version>` back; `None` for anything else.
pub fn parse_asset_version(prefix: &str) -> Option<(Uuid, Uuid)> {
    let rest = prefix.strip_prefix(ASSETS)?.strip_prefix('/')?;
    let (asset, version) = rest.split_once('/')?;
    let asset = canonical(asset)?;
    let version = canonical(version)?;
    Some((asset, version))
}

/// Parses a UUID only in its canonical lower-case hyphenated form.
pub fn canonical(raw: &str) -> Option<Uuid> {
    let id = Uuid::try_parse(raw).ok()?;
    (id.hyphenated().to_string() == raw).then_some(id)
}

/// A file of an asset's VOD rendition, by the names players ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VodFile {
    /// `index.m3u8`, the HLS VOD playlist.
    Playlist,
    /// `<n>.ts`, one HLS segment.
    Segment(u32),
    /// `download.mp4`, the MP4 download.
    Download,
}

impl VodFile {
    /// Name of the playlist.
    pub const PLAYLIST: &'static str = "index.m3u8";
    /// Name of the download.
    pub const DOWNLOAD: &'static str = "download.mp4";
    /// The segment file pattern given to ffmpeg's HLS muxer.
    pub const SEGMENT_PATTERN: &'static str = "%d.ts";

    /// Parses a file name players ask for: `index.m3u8`, `download.mp4` or `<n>.ts`
    /// (1 to 6 digits, no leading zero but `0.ts`).
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            Self::PLAYLIST => Some(Self::Playlist),
            Self::DOWNLOAD => Some(Self::Download),
            _ => {
                let digits = name.strip_suffix(".ts")?;
                let plain = !digits.is_empty()
                    && digits.len() <= 6
                    && digits.bytes().all(|b| b.is_ascii_digit())
                    && (digits == "0" || !digits.starts_with('0'));
                plain.then(|| digits.parse().ok().map(Self::Segment))?
            }
        }
    }

    /// Returns the file's name.
    pub fn name(self) -> String {
        match self {
            Self::Playlist => Self::PLAYLIST.into(),
            Self::Download => Self::DOWNLOAD.into(),
            Self::Segment(n) => format!("{n}.ts"),
        }
    }

    /// Returns the key of this file in the run folder `prefix`.
    pub fn key(self, prefix: &Path) -> Path {
        Path::from(format!("{prefix}/{}", self.name()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn piece_keys_belong_to_their_stream_and_have_plain_names() {
        let stream = Uuid::now_v7();
        let key = piece(stream, "ingest-1-1700000000.flv").unwrap();
        assert_eq!(parse_piece(stream, key.as_ref()).unwrap(), key);
        assert!(parse_piece(Uuid::now_v7(), key.as_ref()).is_err());
        for bad in [
            "",
            ".flv",
            "a.ts",
            "../x.flv",
            "a/b.flv",
            "a b.flv",
            "a%2f.flv",
            &format!("{}.flv", "a".repeat(130)),
        ] {
            assert_eq!(piece(stream, bad), Err(KeyError::NotAPiece), "{bad}");
        }
    }

    #[test]
    fn vod_files_parse_only_their_own_names() {
        for (name, file) in [
            ("index.m3u8", VodFile::Playlist),
            ("download.mp4", VodFile::Download),
            ("0.ts", VodFile::Segment(0)),
            ("17.ts", VodFile::Segment(17)),
        ] {
            assert_eq!(VodFile::parse(name), Some(file));
            assert_eq!(file.name(), name);
        }
        for bad in [
            "",
            "01.ts",
            ".ts",
            "1234567.ts",
            "a.ts",
            "index.m3u",
            "x.mp4",
        ] {
            assert_eq!(VodFile::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn version_folders_round_trip() {
        let (asset, version) = (Uuid::now_v7(), Uuid::new_v4());
        let prefix = asset_version(asset, version);
        assert_eq!(parse_asset_version(prefix.as_ref()), Some((asset, version)));
        assert_eq!(parse_asset_version("assets/x/y"), None);
        assert_eq!(asset_root(asset).as_ref(), format!("assets/{asset}"));
    }
}
