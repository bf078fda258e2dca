//! Playback enforcement at the media origin: nginx asks, through `auth_request`,
//! whether to serve each HLS/DASH file and each file of an on-demand asset
//! (`route`), and this module answers from rules it holds in memory (`verify`), so
//! no request costs a control-plane call. The rules (every token-signing public
//! key, the streams to check, the READY assets and their streams) are refreshed
//! from the control plane every [`REFRESH`]; a broadcast this node admits is known
//! at once. An asset follows its stream's policy. `path` is the URL grammar;
//! `viewers` turns token sessions of live streams into viewer sessions.

pub mod path;
pub mod route;
pub mod verify;
pub mod viewers;

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{Arc, Mutex, RwLock},
    time::{Duration, Instant},
};

use jsonwebtoken::DecodingKey;
use nova_proto::v1::{GetPlaybackRulesResponse, PlaybackPolicy};
use uuid::Uuid;

use crate::{metrics::HooksMetrics, shutdown, upstream::Upstream};
use verify::{Grant, Key, Refusal, StreamRule};

/// Time between two reads of the rules. A deleted key or a policy change takes
/// effect at the origin within this, plus nginx's decision cache (1 s).
pub const REFRESH: Duration = Duration::from_secs(2);

/// A READY asset as the verifier knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct AssetRule {
    /// Its stream, whose policy applies.
    stream: Uuid,
    /// Store folder of its files.
    prefix: String,
}

/// What the verifier lets through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allowed {
    /// The stream whose policy applied.
    pub stream: Uuid,
    /// The token's grant; `None` for a plain URL.
    pub grant: Option<Grant>,
    /// For a file of an asset: its key in the asset store.
    pub vod_key: Option<String>,
}

/// The rules at one moment.
#[derive(Default)]
struct Snapshot {
    /// Keys by id.
    keys: HashMap<String, Key>,
    /// Streams by id.
    streams: HashMap<Uuid, StreamRule>,
    /// READY assets by id.
    assets: HashMap<Uuid, AssetRule>,
    /// Whether the control plane ever answered.
    loaded: bool,
}

/// The rules a verifier holds; cheap to clone.
#[derive(Clone, Default)]
pub struct PlaybackRules {
    /// The current snapshot.
    current: Arc<RwLock<Arc<Snapshot>>>,
    /// Streams this node admitted since a refresh started, kept across it.
    learned: Arc<Mutex<HashMap<Uuid, (StreamRule, Instant)>>>,
}

impl PlaybackRules {
    /// Decides a request for `raw_uri` (nginx's `$request_uri`) from `client` (the
    /// viewer's address, if known) at unix time `now`: what may be served (a plain
    /// URL of a public stream or asset, or a valid token), or the refusal. An
    /// asset that is not READY is refused.
    pub fn decide(
        &self,
        raw_uri: &str,
        client: Option<IpAddr>,
        now: i64,
    ) -> Result<Allowed, Refusal> {
        let media = path::parse(raw_uri).map_err(|e| match e {
            path::PathError::Malformed => Refusal::Malformed,
            path::PathError::Oversized => Refusal::Oversized,
        })?;
        let snapshot = self.snapshot();
        if !snapshot.loaded {
            return Err(Refusal::NotReady);
        }
        let (stream, vod_key) = match media.media {
            path::Media::Live(stream) => (stream, None),
            path::Media::Vod { asset, file } => {
                let rule = snapshot.assets.get(&asset).ok_or(Refusal::UnknownAsset)?;
                let key = format!("{}/{}", rule.prefix, file.name());
                (rule.stream, Some(key))
            }
        };
        let grant = match media.token {
            None => match snapshot.streams.get(&stream) {
                Some(rule) if rule.signed => return Err(Refusal::TokenRequired),
                // An asset's stream is always in the rules: fail closed if not.
                None if vod_key.is_some() => return Err(Refusal::UnknownStream),
                _ => None,
            },
            Some(token) => Some(verify::verify(
                token,
                stream,
                &snapshot.keys,
                &snapshot.streams,
                client,
                now,
            )?),
        };
        Ok(Allowed {
            stream,
            grant,
            vod_key,
        })
    }

    /// Tells whether playing stream `id` needs a token: it is signed, or the rules
    /// were never loaded (fail closed).
    pub fn requires_token(&self, id: Uuid) -> bool {
        let snapshot = self.snapshot();
        !snapshot.loaded || snapshot.streams.get(&id).is_some_and(|r| r.signed)
    }

    /// Verifies a token presented for stream `id` outside HTTP (RTMP play) by
    /// `client`.
    pub fn verify_token(
        &self,
        token: &str,
        id: Uuid,
        client: Option<IpAddr>,
        now: i64,
    ) -> Result<Grant, Refusal> {
        if token.len() > path::MAX_TOKEN {
            return Err(Refusal::Oversized);
        }
        let snapshot = self.snapshot();
        if !snapshot.loaded {
            return Err(Refusal::NotReady);
        }
        verify::verify(token, id, &snapshot.keys, &snapshot.streams, client, now)
    }

    /// Records a stream this node just admitted, so its policy holds before the
    /// next refresh.
    pub fn learn(&self, id: Uuid, owner: &str, policy: PlaybackPolicy, max_viewers: i32) {
        let rule = StreamRule {
            owner: owner.to_owned(),
            signed: policy != PlaybackPolicy::Public,
            max_viewers: Some(i64::from(max_viewers)).filter(|n| *n > 0),
        };
        self.learned_map()
            .insert(id, (rule.clone(), Instant::now()));
        let mut current = self.write();
        let mut next = Snapshot {
            keys: current.keys.clone(),
            streams: current.streams.clone(),
            assets: current.assets.clone(),
            loaded: current.loaded,
        };
        next.streams.insert(id, rule);
        *current = Arc::new(next);
    }

    /// Replaces the rules with what the control plane answered to a read that
    /// started at `started`; streams learned since then are kept.
    fn apply(&self, answer: GetPlaybackRulesResponse, started: Instant) {
        let mut keys = HashMap::new();
        for key in answer.keys {
            if key.public_key.len() != 65 {
                continue;
            }
            keys.insert(
                key.key_id,
                Key {
                    owner: Some(key.owner).filter(|o| !o.is_empty()),
                    decoding: DecodingKey::from_ec_der(&key.public_key),
                },
            );
        }
        let mut streams = HashMap::new();
        for stream in answer.streams {
            let Ok(id) = Uuid::try_parse(&stream.stream_id) else {
                continue;
            };
            let signed = stream.playback_policy() != PlaybackPolicy::Public;
            streams.insert(
                id,
                StreamRule {
                    owner: stream.owner,
                    signed,
                    max_viewers: Some(i64::from(stream.max_viewers)).filter(|n| *n > 0),
                },
            );
        }
        let mut assets = HashMap::new();
        for asset in answer.assets {
            let (Some(id), Some(stream)) = (
                nova_store::keys::canonical(&asset.asset_id),
                nova_store::keys::canonical(&asset.stream_id),
            ) else {
                continue;
            };
            // Only a folder of this asset: the verifier names files under it.
            if nova_store::keys::parse_asset_version(&asset.prefix).is_some_and(|(a, _)| a == id) {
                assets.insert(
                    id,
                    AssetRule {
                        stream,
                        prefix: asset.prefix,
                    },
                );
            }
        }
        {
            let mut learned = self.learned_map();
            learned.retain(|_, (_, at)| *at > started);
            for (id, (rule, _)) in learned.iter() {
                streams.insert(*id, rule.clone());
            }
        }
        *self.write() = Arc::new(Snapshot {
            keys,
            streams,
            assets,
            loaded: true,
        });
    }

    fn snapshot(&self) -> Arc<Snapshot> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Arc<Snapshot>> {
        self.current.write().unwrap_or_else(|p| p.into_inner())
    }

    fn learned_map(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, (StreamRule, Instant)>> {
        self.learned.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Reads the rules now and every [`REFRESH`] until shutdown. A failed read keeps
/// the last rules (a verifier that never loaded any refuses everything). After
/// every attempt the rules' age goes to `nova_streaming_playback_rules_age_seconds`.
pub async fn run(
    rules: PlaybackRules,
    upstream: Upstream,
    metrics: HooksMetrics,
    stop: shutdown::Signal,
) {
    let mut tick = tokio::time::interval(REFRESH);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    let mut read_at = Instant::now();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = stop.clone().wait() => return,
        }
        let started = Instant::now();
        match upstream.playback_rules().await {
            Ok(answer) => {
                if failing {
                    tracing::info!("playback rules read again");
                }
                failing = false;
                rules.apply(answer, started);
                read_at = started;
            }
            Err(err) => {
                if !failing {
                    tracing::warn!(error = %err, "cannot read playback rules; keeping the last ones");
                }
                failing = true;
            }
        }
        metrics.rules_age(read_at.elapsed());
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use nova_proto::v1::{PlaybackAsset, PlaybackStream};

    use super::*;

    const PUBLIC: &str = "01a2102f-4525-72d8-b6d1-96977f3fd789";
    const SIGNED: &str = "01a2102f-4525-72d8-b6d1-96977f3fd78a";
    const OPEN_ASSET: &str = "01a2102f-4525-72d8-b6d1-96977f3fd78b";
    const CLOSED_ASSET: &str = "01a2102f-4525-72d8-b6d1-96977f3fd78c";
    const VERSION: &str = "5b0c7f0e-5a2c-4f7e-9a43-2d1c9f8f0b11";

    fn rules() -> PlaybackRules {
        let stream = |id: &str, policy: PlaybackPolicy| PlaybackStream {
            stream_id: id.into(),
            owner: "alice".into(),
            playback_policy: policy.into(),
            max_viewers: 0,
        };
        let asset = |id: &str, stream: &str, prefix: String| PlaybackAsset {
            asset_id: id.into(),
            stream_id: stream.into(),
            prefix,
        };
        let rules = PlaybackRules::default();
        rules.apply(
            GetPlaybackRulesResponse {
                streams: vec![
                    stream(PUBLIC, PlaybackPolicy::Public),
                    stream(SIGNED, PlaybackPolicy::Signed),
                ],
                assets: vec![
                    asset(OPEN_ASSET, PUBLIC, format!("assets/{OPEN_ASSET}/{VERSION}")),
                    asset(
                        CLOSED_ASSET,
                        SIGNED,
                        format!("assets/{CLOSED_ASSET}/{VERSION}"),
                    ),
                    // A folder of another asset is never believed.
                    asset(PUBLIC, PUBLIC, format!("assets/{OPEN_ASSET}/{VERSION}")),
                ],
                ..Default::default()
            },
            Instant::now(),
        );
        rules
    }

    #[test]
    fn asset_files_follow_their_streams_policy_and_name_their_store_key() {
        let rules = rules();
        let allowed = rules
            .decide(&format!("/vod/{OPEN_ASSET}/3.ts"), None, 0)
            .unwrap();
        assert_eq!(allowed.stream.to_string(), PUBLIC);
        assert_eq!(allowed.grant, None);
        assert_eq!(
            allowed.vod_key.as_deref(),
            Some(format!("assets/{OPEN_ASSET}/{VERSION}/3.ts").as_str())
        );
        assert_eq!(
            rules.decide(&format!("/vod/{CLOSED_ASSET}/index.m3u8"), None, 0),
            Err(Refusal::TokenRequired)
        );
        for unknown in [PUBLIC, "01a2102f-4525-72d8-b6d1-96977f3fd7ff"] {
            assert_eq!(
                rules.decide(&format!("/vod/{unknown}/index.m3u8"), None, 0),
                Err(Refusal::UnknownAsset),
                "{unknown}"
            );
        }
        // A live file of the public stream is unchanged: plain, no store key.
        let live = rules
            .decide(&format!("/hls/{PUBLIC}.m3u8"), None, 0)
            .unwrap();
        assert_eq!((live.grant, live.vod_key), (None, None));
    }
}
