//! Reads an FLV file into tags (audio, video, script data).

use std::{path::Path, time::Duration};

use super::RtmpError;

/// One FLV tag.
#[derive(Debug, Clone, PartialEq)]
pub struct Tag {
    /// 8 audio, 9 video, 18 script data (also the RTMP message type).
    pub kind: u8,
    /// Timestamp in milliseconds.
    pub timestamp: u32,
    /// The tag body.
    pub data: Vec<u8>,
}

impl Tag {
    /// Tells whether this is an AVC or AAC sequence header (decoder configuration).
    pub fn is_sequence_header(&self) -> bool {
        match self.kind {
            9 => self.data.len() > 1 && self.data[0] & 0x0f == 7 && self.data[1] == 0,
            8 => self.data.len() > 1 && self.data[0] >> 4 == 10 && self.data[1] == 0,
            _ => false,
        }
    }

    /// Tells whether this is a video keyframe.
    pub fn is_keyframe(&self) -> bool {
        self.kind == 9 && self.data.first().is_some_and(|b| b >> 4 == 1)
    }
}

/// A parsed FLV file.
#[derive(Debug, Clone)]
pub struct Flv {
    /// Tags in file order.
    pub tags: Vec<Tag>,
}

impl Flv {
    /// Parses FLV bytes.
    pub fn parse(bytes: &[u8]) -> Result<Self, RtmpError> {
        let bad = |what: &str| RtmpError::Protocol(format!("FLV: {what}"));
        if bytes.len() < 13 || &bytes[..3] != b"FLV" {
            return Err(bad("not an FLV file"));
        }
        let header_len = u32::from_be_bytes([bytes[5], bytes[6], bytes[7], bytes[8]]) as usize;
        let mut at = header_len + 4;
        let mut tags = Vec::new();
        while at + 11 <= bytes.len() {
            let kind = bytes[at] & 0x1f;
            let size =
                u32::from_be_bytes([0, bytes[at + 1], bytes[at + 2], bytes[at + 3]]) as usize;
            let timestamp =
                u32::from_be_bytes([bytes[at + 7], bytes[at + 4], bytes[at + 5], bytes[at + 6]]);
            let body = at + 11;
            let end = body + size;
            if end + 4 > bytes.len() {
                return Err(bad("truncated tag"));
            }
            tags.push(Tag {
                kind,
                timestamp,
                data: bytes[body..end].to_vec(),
            });
            at = end + 4;
        }
        Ok(Self { tags })
    }

    /// Reads and parses a file.
    pub fn open(path: &Path) -> Result<Self, RtmpError> {
        Self::parse(&std::fs::read(path)?)
    }

    /// Loads `tests/fixtures/testsrc-320x180.flv` (see `make-fixture.sh`).
    pub fn fixture() -> Self {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/testsrc-320x180.flv");
        Self::open(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (run tests/fixtures/make-fixture.sh)",
                path.display()
            )
        })
    }

    /// Returns the media duration (last timestamp plus one video frame at 25 fps).
    pub fn duration(&self) -> Duration {
        let last = self.tags.iter().map(|t| t.timestamp).max().unwrap_or(0);
        Duration::from_millis(u64::from(last) + 40)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fixture_has_sequence_headers_a_leading_keyframe_and_four_seconds() {
        let flv = Flv::fixture();
        let d = flv.duration().as_secs_f64();
        assert!((3.8..=4.3).contains(&d), "{d}");
        assert!(
            flv.tags
                .iter()
                .any(|t| t.kind == 9 && t.is_sequence_header())
        );
        assert!(
            flv.tags
                .iter()
                .any(|t| t.kind == 8 && t.is_sequence_header())
        );
        let first_video = flv
            .tags
            .iter()
            .find(|t| t.kind == 9 && !t.is_sequence_header())
            .unwrap();
        assert!(first_video.is_keyframe());
        assert!(Flv::parse(b"not flv at all").is_err());
    }
}
