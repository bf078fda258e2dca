//! Names of recorded pieces on disk: the file nginx's recording application closes
//! (`<stream id>-<unix seconds>.flv`, from `record_unique on` and `record_suffix
//! .flv`), the name it gets in the `done/` folder once handed (`<stream
//! id>_<unix seconds>_<tag>.flv`, the tag telling apart two pieces nginx opened in
//! the same second), and its object name in the store.

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// Suffix of recorded files (nginx's `record_suffix`).
pub const SUFFIX: &str = ".flv";

/// A recorded piece, by what its name says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PieceName {
    /// Recorded stream.
    pub stream: Uuid,
    /// Unix seconds when nginx opened it.
    pub opened: i64,
    /// `c<nginx client id>` for a handed piece, `o` for one found without its
    /// callback.
    pub tag: String,
}

impl PieceName {
    /// Parses the name nginx gave a recorded file.
    pub fn from_nginx(file: &str) -> Option<(Uuid, i64)> {
        let stem = file.strip_suffix(SUFFIX)?;
        let (id, opened) = stem.rsplit_once('-')?;
        let stream = nova_store::keys::canonical(id)?;
        Some((stream, seconds(opened)?))
    }

    /// Parses the name of a handed piece in `done/`.
    pub fn from_done(file: &str) -> Option<Self> {
        let stem = file.strip_suffix(SUFFIX)?;
        let mut parts = stem.splitn(3, '_');
        let stream = nova_store::keys::canonical(parts.next()?)?;
        let opened = seconds(parts.next()?)?;
        let tag = parts.next()?;
        let plain = !tag.is_empty()
            && tag.len() <= 24
            && tag
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        plain.then(|| Self {
            stream,
            opened,
            tag: tag.to_owned(),
        })
    }

    /// Returns the name in `done/`.
    pub fn done_name(&self) -> String {
        format!("{}_{}_{}{SUFFIX}", self.stream, self.opened, self.tag)
    }

    /// Returns the piece's file name in the store, unique across ingest nodes.
    pub fn object_name(&self, node: &str) -> String {
        let node: String = node
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '-'
                }
            })
            .take(64)
            .collect();
        format!("{node}_{}_{}{SUFFIX}", self.opened, self.tag)
    }

    /// Returns when nginx opened the piece.
    pub fn opened_at(&self) -> DateTime<Utc> {
        DateTime::from_timestamp(self.opened, 0).unwrap_or_default()
    }
}

/// Parses 1 to 12 digits of unix seconds.
fn seconds(raw: &str) -> Option<i64> {
    let plain = !raw.is_empty() && raw.len() <= 12 && raw.bytes().all(|b| b.is_ascii_digit());
    plain.then(|| raw.parse().ok())?
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0193a0b2-0000-7000-8000-000000000001";

    #[test]
    fn nginx_names_and_done_names_round_trip() {
        let (stream, opened) = PieceName::from_nginx(&format!("{ID}-1700000000.flv")).unwrap();
        let piece = PieceName {
            stream,
            opened,
            tag: "c42".into(),
        };
        assert_eq!(
            PieceName::from_done(&piece.done_name()),
            Some(piece.clone())
        );
        assert_eq!(
            piece.object_name("ingest:1.a"),
            "ingest-1-a_1700000000_c42.flv"
        );
        assert!(nova_store::keys::is_piece_name(&piece.object_name("n")));
        for bad in [
            format!("{ID}.flv"),
            format!("{ID}-.flv"),
            format!("{ID}-12x.flv"),
            format!("{}-1.flv", ID.to_uppercase()),
            format!("x-{ID}-1.flv"),
            format!("{ID}-1.mp4"),
        ] {
            assert_eq!(PieceName::from_nginx(&bad), None, "{bad}");
        }
        assert_eq!(PieceName::from_done(&format!("{ID}_1_C42.flv")), None);
        assert_eq!(PieceName::from_done(&format!("{ID}_1_.flv")), None);
    }
}
