//! Recording helpers: an AssetService client, a recorded broadcast with one drop
//! and resume, waits on assets, and players that read a VOD rendition to its end.

use std::{path::Path, time::Duration};

use nova_proto::v1::{
    Asset, AssetStatus, CreateStreamRequest, EndStreamRequest, ListAssetsRequest, PlaybackPolicy,
    Stream, StreamStatus, asset_service_client::AssetServiceClient,
};
use tonic::{service::interceptor::InterceptedService, transport::Channel};

use crate::{
    clients::{self, Credentials},
    ffmpeg::Broadcaster,
    live::LiveStack,
    wait,
};

/// An AssetService client with credentials.
pub type Assets = AssetServiceClient<InterceptedService<Channel, Credentials>>;

/// An AssetService client for `url` acting as `principal` with `token`.
pub async fn assets(url: &str, token: &str, principal: Option<&str>) -> Assets {
    AssetServiceClient::with_interceptor(
        clients::channel(url).await,
        Credentials::new(Some(token), principal),
    )
}

/// Creates a stream owned by `alice` with `record` and `policy`; returns it and its key.
pub async fn create_stream(
    live: &LiveStack,
    record: bool,
    policy: PlaybackPolicy,
) -> (Stream, String) {
    let created = live
        .streams
        .clone()
        .create_stream(CreateStreamRequest {
            stream: Some(Stream {
                title: "recorded".into(),
                record,
                playback_policy: policy.into(),
                ..Default::default()
            }),
        })
        .await
        .expect("create a stream")
        .into_inner();
    (created.stream.expect("stream"), created.stream_key)
}

/// Broadcasts to `key` `rounds` times for `each` (real ffmpeg, which then leaves:
/// the first round goes live, every later one resumes within the reconnect window),
/// then ends the stream; returns when it is COMPLETED.
pub async fn broadcast(live: &LiveStack, name: &str, key: &str, rounds: u32, each: Duration) {
    for round in 0..rounds {
        let mut ffmpeg = Broadcaster::start(&live.publish_url(key), each);
        live.wait_for_status(name, StreamStatus::Active, Duration::from_secs(15))
            .await;
        let (ok, said) = ffmpeg
            .exited_within(each + Duration::from_secs(20))
            .await
            .unwrap_or_else(|| panic!("ffmpeg round {round} did not finish its {each:?}"));
        assert!(ok, "ffmpeg round {round} failed: {said}");
        live.wait_for_status(name, StreamStatus::Interrupted, Duration::from_secs(10))
            .await;
    }
    live.streams
        .clone()
        .end_stream(EndStreamRequest { name: name.into() })
        .await
        .expect("end the stream");
}

/// Returns the assets of stream `name`, as its owner `alice` sees them.
pub async fn list(live: &LiveStack, name: &str) -> Vec<Asset> {
    list_in(&live.ctx, name).await
}

/// Returns the assets of stream `name` on `ctx`'s control plane, as `alice` sees them.
pub async fn list_in(ctx: &crate::TestContext, name: &str) -> Vec<Asset> {
    assets(&ctx.url(), &ctx.token, Some("alice"))
        .await
        .list_assets(ListAssetsRequest {
            stream: name.into(),
            ..Default::default()
        })
        .await
        .expect("list the stream's assets")
        .into_inner()
        .assets
}

/// Waits (at most `timeout`) until stream `name` has exactly one asset and it is no
/// longer PREPARING; returns it.
pub async fn wait_for_asset(live: &LiveStack, name: &str, timeout: Duration) -> Asset {
    wait::until(&format!("{name}'s asset to be made"), timeout, || async {
        let assets = list(live, name).await;
        match assets.as_slice() {
            [one] if one.status() != AssetStatus::Preparing => Ok(one.clone()),
            _ => Err(assets
                .iter()
                .map(|a| (a.status(), a.error_reason.clone()))
                .collect::<Vec<_>>()),
        }
    })
    .await
}

/// What a player read from a VOD rendition or download.
#[derive(Debug, Clone)]
pub struct Probe {
    /// Duration ffprobe reports, seconds.
    pub duration: f64,
    /// Video packets read, to the last segment.
    pub video_packets: u64,
    /// Audio packets read.
    pub audio_packets: u64,
}

/// Attempts of [`probe`] when the origin failed a segment fetch.
const PROBE_ATTEMPTS: u32 = 3;

/// Reads `url` to its end with ffprobe (every packet of every segment); `Err` says
/// what ffprobe said. ffprobe's HLS reader skips a segment whose fetch fails and
/// still exits 0, which would look like media missing from the asset: a read that
/// skipped a segment is an origin hiccup (e.g. its verifier answering after
/// nginx's 2 s on a loaded machine), said as such and read again, at most
/// [`PROBE_ATTEMPTS`] times; a complete read that finds too few packets is the
/// asset's fault and left to the caller's assertions. Each skipped read is printed
/// (test output, shown by nextest beside a failure).
#[allow(clippy::print_stdout)]
pub async fn probe(url: &str) -> Result<Probe, String> {
    let mut attempt = 1;
    loop {
        match probe_once(url).await {
            Err(Skipped(said)) if attempt < PROBE_ATTEMPTS => {
                println!("ffprobe attempt {attempt} skipped a segment, reading again: {said}");
                attempt += 1;
            }
            Err(Skipped(said)) => {
                return Err(format!(
                    "ffprobe skipped segments in {PROBE_ATTEMPTS} reads: {said}"
                ));
            }
            Ok(read) => return read,
        }
    }
}

/// A read on which ffprobe skipped a segment it could not fetch: what it said.
struct Skipped(String);

/// One ffprobe read of `url`.
async fn probe_once(url: &str) -> Result<Result<Probe, String>, Skipped> {
    let out = tokio::process::Command::new("ffprobe")
        .args(["-v", "warning", "-rw_timeout", "8000000", "-count_packets"])
        .args([
            "-show_entries",
            "format=duration:stream=codec_type,nb_read_packets",
        ])
        .args(["-of", "json"])
        .arg(url)
        .kill_on_drop(true)
        .output();
    let out = match tokio::time::timeout(Duration::from_secs(60), out).await {
        Err(_) => return Ok(Err("ffprobe ran longer than 60 s".to_owned())),
        Ok(Err(e)) => return Ok(Err(format!("ffprobe: {e}"))),
        Ok(Ok(out)) => out,
    };
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    if ["Failed to open segment", "HTTP error", "Server returned"]
        .iter()
        .any(|sign| said.contains(sign))
    {
        return Err(Skipped(said));
    }
    if !out.status.success() {
        return Ok(Err(said));
    }
    Ok(parse_probe(&out.stdout))
}

/// Reads ffprobe's JSON answer.
fn parse_probe(stdout: &[u8]) -> Result<Probe, String> {
    let json: serde_json::Value =
        serde_json::from_slice(stdout).map_err(|e| format!("ffprobe's JSON: {e}"))?;
    let packets = |kind: &str| {
        json["streams"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|s| s["codec_type"] == kind)
            .filter_map(|s| s["nb_read_packets"].as_str()?.parse::<u64>().ok())
            .sum()
    };
    Ok(Probe {
        duration: json["format"]["duration"]
            .as_str()
            .and_then(|d| d.parse().ok())
            .ok_or("ffprobe gave no duration")?,
        video_packets: packets("video"),
        audio_packets: packets("audio"),
    })
}

/// Returns every file under `dir` (recursively), relative to it, sorted.
pub fn files_under(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(root, &path, out);
            } else if let Ok(relative) = path.strip_prefix(root) {
                out.push(relative.to_string_lossy().into_owned());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}
