//! Real ffmpeg broadcasting into the real ingest path (nginx-rtmp from the deploy
//! template, ingest-hooks, control plane): going live, HLS/DASH output, refusals,
//! being cut off, disconnect and resume.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    missing_docs
)]

use std::{path::Path, time::Duration};

use nova_proto::v1::{EndStreamRequest, RotateStreamKeyRequest, StreamStatus};
use nova_tests::{
    events,
    ffmpeg::Broadcaster,
    hls, http,
    live::{LiveOptions, LiveStack},
    wait,
};
use tokio::time::Instant;

const LONG: Duration = Duration::from_secs(120);

/// Lists every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path.to_string_lossy().into_owned());
        }
    }
    out
}

/// Returns the codec names ffprobe sees in `bytes`.
fn probe(bytes: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("segment.ts");
    std::fs::write(&file, bytes).unwrap();
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name",
            "-of",
            "csv=p=0",
        ])
        .arg(&file)
        .output()
        .expect("ffprobe is installed");
    assert!(
        out.status.success(),
        "ffprobe failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn ffmpeg_goes_live_with_valid_hls_and_dash_and_is_cut_off_when_the_stream_ends() {
    let mut live = LiveStack::start(LiveOptions::default()).await;
    let (stream, key) = live.create_stream("ffmpeg live").await;

    let started = Instant::now();
    let mut ffmpeg = Broadcaster::start(&live.publish_url(&key), LONG);
    let active = live
        .wait_for_status(&stream.name, StreamStatus::Active, Duration::from_secs(15))
        .await;
    let playback = active.playback.clone().expect("playback URLs once live");
    assert!(
        playback
            .hls_url
            .ends_with(&format!("/hls/{}.m3u8", stream.stream_id))
    );

    let first = live
        .wait_for_url(&playback.hls_url, Duration::from_secs(20))
        .await;
    println!(
        "time from publish to first playlist: {:.2} s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(first.content_type, "application/vnd.apple.mpegurl");
    assert_eq!(first.cors, "*");

    // A playlist with at least two segments, valid, whose segments decode.
    let playlist = wait::until("two HLS segments", Duration::from_secs(20), || async {
        let text = http::get(&playback.hls_url)
            .await
            .map_err(|e| e.to_string())?
            .text();
        let parsed = hls::parse_media(&text)?;
        if parsed.segments.len() >= 2 {
            Ok((text, parsed))
        } else {
            Err(format!("{} segments", parsed.segments.len()))
        }
    })
    .await;
    let (text, parsed) = playlist;
    assert!(parsed.version >= 3, "{text}");
    assert!(parsed.target_duration <= 2, "1 s fragments: {text}");
    let base = playback.hls_url.rsplit_once('/').unwrap().0;
    let segment = http::get(&format!("{base}/{}", parsed.segments[0].1))
        .await
        .unwrap();
    assert_eq!(segment.status, 200);
    assert_eq!(segment.content_type, "video/mp2t");
    let codecs = probe(&segment.body);
    assert!(
        codecs.contains("h264") && codecs.contains("aac"),
        "codecs: {codecs}"
    );

    let dash = live
        .wait_for_url(&playback.dash_url, Duration::from_secs(20))
        .await;
    assert_eq!(dash.content_type, "application/dash+xml");
    assert!(dash.text().contains("<MPD"), "{}", dash.text());

    // The key appears in no file name, playlist or nginx log.
    for file in files_under(&live.media()) {
        assert!(!file.contains(&key), "a media path carries the key: {file}");
    }
    assert!(!text.contains(&key) && !dash.text().contains(&key));
    let nginx_logs = live.media().parent().unwrap().join("nginx/logs");
    for file in files_under(&nginx_logs) {
        let content = std::fs::read_to_string(&file).unwrap_or_default();
        assert!(!content.contains(&key), "{file} carries the key");
    }

    // The /stat poller reports ingest health.
    let health = wait::until(
        "ingest health from /stat",
        Duration::from_secs(15),
        || async {
            live.get(&stream.name)
                .await
                .ingest_health
                .filter(|h| h.width > 0)
                .ok_or("none yet")
        },
    )
    .await;
    assert_eq!((health.width, health.height), (320, 180));
    assert_eq!(health.video_codec, "H264");
    assert_eq!(health.renditions.len(), 1);

    // Ending the stream cuts the broadcaster off at its next update.
    let ended_at = Instant::now();
    live.streams
        .end_stream(EndStreamRequest {
            name: stream.name.clone(),
        })
        .await
        .unwrap();
    let (ok, _) = ffmpeg
        .exited_within(Duration::from_secs(15))
        .await
        .expect("ffmpeg was not cut off within 15 s of EndStream");
    assert!(!ok, "ffmpeg should fail when cut off");
    println!(
        "broadcaster cut off {:.2} s after EndStream (update interval 1 s)",
        ended_at.elapsed().as_secs_f64()
    );
    assert_eq!(
        live.get(&stream.name).await.status(),
        StreamStatus::Completed
    );
    live.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_and_rotated_keys_are_refused_and_the_new_key_works() {
    let mut live = LiveStack::start(LiveOptions::default()).await;
    let wrong = format!("sk_live_{}", "x".repeat(43));
    let started = Instant::now();
    let mut refused = Broadcaster::start(&live.publish_url(&wrong), LONG);
    let (ok, _) = refused
        .exited_within(Duration::from_secs(10))
        .await
        .expect("a wrong key is refused within 10 s");
    assert!(!ok);
    println!(
        "wrong key refused after {:.2} s",
        started.elapsed().as_secs_f64()
    );

    let (stream, old_key) = live.create_stream("rotated").await;
    let new_key = live
        .streams
        .rotate_stream_key(RotateStreamKeyRequest {
            name: stream.name.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .stream_key;
    let mut old = Broadcaster::start(&live.publish_url(&old_key), LONG);
    let (ok, _) = old
        .exited_within(Duration::from_secs(10))
        .await
        .expect("the rotated key is refused within 10 s");
    assert!(!ok);
    assert_eq!(live.get(&stream.name).await.status(), StreamStatus::Pending);

    let _new = Broadcaster::start(&live.publish_url(&new_key), LONG);
    live.wait_for_status(&stream.name, StreamStatus::Active, Duration::from_secs(15))
        .await;
    live.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ffmpeg_disconnects_resumes_within_the_window_then_completes() {
    let mut live = LiveStack::start(LiveOptions {
        reconnect_window: Duration::from_secs(4),
        ..LiveOptions::default()
    })
    .await;
    let (stream, key) = live.create_stream("comes and goes").await;

    let mut first = Broadcaster::start(&live.publish_url(&key), Duration::from_secs(3));
    live.wait_for_status(&stream.name, StreamStatus::Active, Duration::from_secs(15))
        .await;
    let (ok, err) = first
        .exited_within(Duration::from_secs(15))
        .await
        .expect("ffmpeg ends after 3 s");
    assert!(ok, "ffmpeg failed: {err}");
    let interrupted = live
        .wait_for_status(
            &stream.name,
            StreamStatus::Interrupted,
            Duration::from_secs(10),
        )
        .await;
    assert!(interrupted.reconnect_deadline.is_some());

    let mut second = Broadcaster::start(&live.publish_url(&key), Duration::from_secs(2));
    let resumed = live
        .wait_for_status(&stream.name, StreamStatus::Active, Duration::from_secs(10))
        .await;
    assert_eq!(resumed.stream_id, stream.stream_id);
    second
        .exited_within(Duration::from_secs(15))
        .await
        .expect("ffmpeg ends after 2 s");
    live.wait_for_status(
        &stream.name,
        StreamStatus::Interrupted,
        Duration::from_secs(10),
    )
    .await;
    live.wait_for_status(
        &stream.name,
        StreamStatus::Completed,
        Duration::from_secs(15),
    )
    .await;

    let mut db = live.ctx.db().await;
    let logged = events::lifecycle(&mut db, &stream.stream_id).await;
    assert_eq!(
        logged,
        [
            "started resumed=false",
            "ended interrupted publisher_disconnected",
            "started resumed=true",
            "ended interrupted publisher_disconnected",
            "ended completed reconnect_window_closed",
        ]
    );
    live.shutdown().await;
}
