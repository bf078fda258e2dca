//! The asset as the rules see it: a typed state that carries what each state has
//! (a READY asset its store folder, duration and size; an ERRORED one its reason),
//! built from its row at the `db` boundary and converted to protos by `grpc`.

use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{
    db::assets::AssetRow,
    service::{AssetStatus, PlaybackPolicy},
};

/// Where an asset is in its life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssetState {
    /// Being recorded or remuxed.
    Preparing,
    /// Remuxed and stored.
    Ready {
        /// Store folder of the run that made it, `assets/<id>/<version>`.
        prefix: String,
        /// Playing time.
        duration: Duration,
        /// Bytes stored.
        size_bytes: u64,
        /// When it became READY.
        ready_at: DateTime<Utc>,
    },
    /// Could not be made.
    Errored {
        /// Why; never holds a stream key.
        reason: String,
    },
}

/// Playback addresses of a READY asset on the VOD origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssetPlayback {
    /// HLS VOD playlist.
    pub hls_url: String,
    /// MP4 download.
    pub mp4_url: String,
}

/// One recorded broadcast of a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asset {
    /// Asset id.
    pub id: Uuid,
    /// Recorded stream.
    pub stream_id: Uuid,
    /// Owner of the stream.
    pub owner: String,
    /// The stream's playback policy, which the asset follows.
    pub playback_policy: PlaybackPolicy,
    /// Where it is in its life.
    pub state: AssetState,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Where players fetch it; `Some` only when READY.
    pub playback: Option<AssetPlayback>,
}

impl Asset {
    /// Builds an asset from its row, its stream's owner and stored policy, with
    /// playback URLs under `vod_url` (the VOD origin's `/vod` base) when READY.
    pub fn from_row(row: AssetRow, owner: String, policy: &str, vod_url: &str) -> Self {
        let state = match AssetStatus::from_db(&row.status) {
            AssetStatus::Ready => AssetState::Ready {
                prefix: row.prefix.unwrap_or_default(),
                duration: Duration::from_millis(row.duration_ms.unwrap_or(0).max(0) as u64),
                size_bytes: row.size_bytes.unwrap_or(0).max(0) as u64,
                ready_at: row.ready_at.unwrap_or(row.updated_at),
            },
            AssetStatus::Errored => AssetState::Errored {
                reason: row.error_reason.unwrap_or_default(),
            },
            AssetStatus::Preparing => AssetState::Preparing,
        };
        let playback = matches!(state, AssetState::Ready { .. }).then(|| {
            let base = format!("{}/{}", vod_url.trim_end_matches('/'), row.id);
            AssetPlayback {
                hls_url: format!("{base}/{}", nova_store::VodFile::PLAYLIST),
                mp4_url: format!("{base}/{}", nova_store::VodFile::DOWNLOAD),
            }
        });
        Self {
            id: row.id,
            stream_id: row.stream_id,
            owner,
            playback_policy: PlaybackPolicy::from_db(policy),
            state,
            created_at: row.created_at,
            playback,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(status: &str) -> AssetRow {
        let now = Utc::now();
        AssetRow {
            id: Uuid::now_v7(),
            stream_id: Uuid::now_v7(),
            status: status.into(),
            error_reason: (status == "errored").then(|| "no recording arrived".into()),
            publishes: 1,
            prefix: (status == "ready").then(|| "assets/a/b".into()),
            duration_ms: (status == "ready").then_some(20_500),
            size_bytes: (status == "ready").then_some(1000),
            created_at: now,
            ready_at: (status == "ready").then_some(now),
            updated_at: now,
        }
    }

    #[test]
    fn only_ready_assets_have_playback_urls() {
        let ready = row("ready");
        let id = ready.id;
        let asset = Asset::from_row(ready, "alice".into(), "signed", "http://o/vod/");
        assert_eq!(asset.playback_policy, PlaybackPolicy::Signed);
        assert_eq!(
            asset.playback.unwrap().hls_url,
            format!("http://o/vod/{id}/index.m3u8")
        );
        assert!(matches!(
            asset.state,
            AssetState::Ready { duration, .. } if duration == Duration::from_millis(20_500)
        ));
        let errored = Asset::from_row(row("errored"), "alice".into(), "public", "http://o/vod");
        assert_eq!(errored.playback, None);
        assert_eq!(
            errored.state,
            AssetState::Errored {
                reason: "no recording arrived".into()
            }
        );
        let preparing = Asset::from_row(row("preparing"), "alice".into(), "public", "x");
        assert_eq!(preparing.state, AssetState::Preparing);
    }
}
