//! Ingest health: what an ingest node reports about a broadcast, the limits a report
//! must respect, and when a new reading is a quality change.

use chrono::{DateTime, Utc};

use crate::{
    error::{Error, Result},
    service::events::Rendition,
};

/// Highest frame rate a report may carry.
pub const MAX_FRAME_RATE: f64 = 1000.0;
/// Most renditions kept from a report; the rest are dropped.
pub const MAX_RENDITIONS: usize = 16;
/// Longest free-text field (codec, rendition name) kept from a report, in characters.
pub const MAX_TEXT_CHARS: usize = 64;

/// Latest health reading of an ingest.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Health {
    /// Incoming bitrate, kb/s.
    pub bitrate_kbps: i64,
    /// Frames per second.
    pub frame_rate: f64,
    /// Width in pixels.
    pub width: i32,
    /// Height in pixels.
    pub height: i32,
    /// Video codec.
    pub video_codec: String,
    /// Audio codec.
    pub audio_codec: String,
    /// Renditions produced.
    pub renditions: Vec<Rendition>,
    /// When the reading was taken (RFC 3339).
    pub report_time: DateTime<Utc>,
}

impl Health {
    /// Returns the reading within the limits an ingest node must respect: negative
    /// figures or a frame rate above [`MAX_FRAME_RATE`] are INVALID_ARGUMENT; past
    /// [`MAX_RENDITIONS`] renditions are dropped and free text is cut at
    /// [`MAX_TEXT_CHARS`] characters.
    pub fn checked(self) -> Result<Self> {
        if self.bitrate_kbps < 0
            || self.width < 0
            || self.height < 0
            || !(0.0..=MAX_FRAME_RATE).contains(&self.frame_rate)
        {
            return Err(Error::invalid(
                "health",
                "bitrate, size and frame rate must be non-negative (frame rate at most 1000)",
            ));
        }
        Ok(Self {
            video_codec: truncate(self.video_codec),
            audio_codec: truncate(self.audio_codec),
            renditions: self
                .renditions
                .into_iter()
                .take(MAX_RENDITIONS)
                .map(|r| Rendition {
                    name: truncate(r.name),
                    ..r
                })
                .collect(),
            ..self
        })
    }

    /// Tells whether `other` is a different quality from this one, as
    /// `quality_changed` promises: the renditions (names and sizes), the source
    /// resolution or a codec changed. Bitrates and frame rates wander with the
    /// content and are not a change: the live figures stay in the stored health.
    pub fn quality_differs(&self, other: &Health) -> bool {
        let shape = |h: &Health| {
            h.renditions
                .iter()
                .map(|r| (r.name.clone(), r.width, r.height))
                .collect::<Vec<_>>()
        };
        shape(self) != shape(other)
            || (self.width, self.height) != (other.width, other.height)
            || self.video_codec != other.video_codec
            || self.audio_codec != other.audio_codec
    }
}

/// Cuts free text from the ingest node at [`MAX_TEXT_CHARS`] characters.
fn truncate(mut s: String) -> String {
    if let Some((i, _)) = s.char_indices().nth(MAX_TEXT_CHARS) {
        s.truncate(i);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading() -> Health {
        Health {
            bitrate_kbps: 2500,
            frame_rate: 30.0,
            width: 1280,
            height: 720,
            video_codec: "H264".into(),
            audio_codec: "AAC".into(),
            renditions: Vec::new(),
            report_time: Utc::now(),
        }
    }

    #[test]
    fn checked_refuses_impossible_figures() {
        for bad in [
            Health {
                bitrate_kbps: -1,
                ..reading()
            },
            Health {
                width: -1,
                ..reading()
            },
            Health {
                frame_rate: 1000.5,
                ..reading()
            },
            Health {
                frame_rate: f64::NAN,
                ..reading()
            },
        ] {
            assert!(bad.checked().is_err());
        }
        assert!(
            Health {
                frame_rate: 1000.0,
                ..reading()
            }
            .checked()
            .is_ok()
        );
    }

    #[test]
    fn checked_caps_renditions_and_text() {
        let long = "é".repeat(70);
        let rendition = Rendition {
            name: long.clone(),
            width: 640,
            height: 360,
            bitrate_kbps: 800,
        };
        let health = Health {
            video_codec: long,
            renditions: vec![rendition; 20],
            ..reading()
        }
        .checked()
        .unwrap();
        assert_eq!(health.video_codec.chars().count(), MAX_TEXT_CHARS);
        assert_eq!(health.renditions.len(), MAX_RENDITIONS);
        assert!(
            health
                .renditions
                .iter()
                .all(|r| r.name.chars().count() == MAX_TEXT_CHARS)
        );
    }
}
