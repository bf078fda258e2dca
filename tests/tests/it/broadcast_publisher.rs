//! The Rust RTMP test publisher through the real ingest path: the broadcaster
//! lifecycle (live, disconnect, resume, window closes), being cut off by EndStream,
//! refused keys, and HLS/DASH output that decodes.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    missing_docs
)]

use std::time::Duration;

use nova_proto::v1::{EndStreamRequest, RotateStreamKeyRequest, StreamStatus};
use nova_tests::{
    hls, http,
    live::{LiveOptions, LiveStack},
    publisher::{Flv, RtmpError, publish},
    wait,
};
use tokio::time::Instant;

const LONG: Duration = Duration::from_secs(3600);

#[tokio::test(flavor = "multi_thread")]
async fn the_publisher_goes_live_disconnects_resumes_and_completes_after_the_window() {
    let mut live = LiveStack::start(LiveOptions {
        reconnect_window: Duration::from_secs(3),
        ..LiveOptions::default()
    })
    .await;
    let (stream, key) = live.create_stream("rust publisher").await;
    let flv = Flv::fixture();

    let started = Instant::now();
    let publisher = publish(&live.publish_url(&key))
        .await
        .expect("publish accepted");
    let task = publisher.spawn(flv.clone(), LONG);
    let active = live
        .wait_for_status(&stream.name, StreamStatus::Active, Duration::from_secs(10))
        .await;
    let playback = active.playback.unwrap();
    let playlist = live
        .wait_for_url(&playback.hls_url, Duration::from_secs(20))
        .await;
    println!(
        "test publisher: first playlist {:.2} s after connecting",
        started.elapsed().as_secs_f64()
    );
    let parsed = hls::parse_media(&playlist.text()).expect("valid HLS");
    assert!(parsed.target_duration <= 2);

    // Disconnect: INTERRUPTED with the window open.
    task.stop().await;
    let interrupted = live
        .wait_for_status(
            &stream.name,
            StreamStatus::Interrupted,
            Duration::from_secs(10),
        )
        .await;
    assert!(interrupted.reconnect_deadline.is_some());

    // Republish inside the window: the same stream resumes.
    let again = publish(&live.publish_url(&key))
        .await
        .expect("republish accepted");
    let task = again.spawn(flv, LONG);
    let resumed = live
        .wait_for_status(&stream.name, StreamStatus::Active, Duration::from_secs(10))
        .await;
    assert_eq!(resumed.stream_id, stream.stream_id);
    assert_eq!(
        resumed.start_time, active.start_time,
        "a resume keeps the first start time"
    );
    task.stop().await;

    // Leave again and let the window close.
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
    live.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn end_stream_cuts_the_publisher_off_and_bad_keys_are_refused() {
    let mut live = LiveStack::start(LiveOptions::default()).await;
    let (stream, key) = live.create_stream("cut off").await;
    let mut task = publish(&live.publish_url(&key))
        .await
        .unwrap()
        .spawn(Flv::fixture(), LONG);
    live.wait_for_status(&stream.name, StreamStatus::Active, Duration::from_secs(10))
        .await;
    assert!(!task.is_finished());
    let ended = Instant::now();
    live.streams
        .end_stream(EndStreamRequest {
            name: stream.name.clone(),
        })
        .await
        .unwrap();
    let result = task.ended_within(Duration::from_secs(10)).await;
    assert!(
        matches!(result, Err(RtmpError::Closed)),
        "cut off by the server: {result:?}"
    );
    println!(
        "test publisher cut off {:.2} s after EndStream (update interval 1 s)",
        ended.elapsed().as_secs_f64()
    );

    // A wrong key and a rotated key are refused quickly (never a timeout).
    let wrong = format!("sk_live_{}", "y".repeat(43));
    let refused = Instant::now();
    let err = publish(&live.publish_url(&wrong))
        .await
        .err()
        .expect("a wrong key is refused");
    assert!(
        matches!(err, RtmpError::Closed | RtmpError::Refused { .. }),
        "{err:?}"
    );
    println!(
        "wrong key refused after {:.2} s",
        refused.elapsed().as_secs_f64()
    );

    let (other, old_key) = live.create_stream("rotated").await;
    live.streams
        .rotate_stream_key(RotateStreamKeyRequest {
            name: other.name.clone(),
        })
        .await
        .unwrap();
    let err = publish(&live.publish_url(&old_key))
        .await
        .err()
        .expect("a rotated key is refused");
    assert!(
        matches!(err, RtmpError::Closed | RtmpError::Refused { .. }),
        "{err:?}"
    );
    live.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn hls_segments_and_dash_from_the_publisher_decode_and_never_carry_the_key() {
    let mut live = LiveStack::start(LiveOptions::default()).await;
    let (stream, key) = live.create_stream("formats").await;
    let task = publish(&live.publish_url(&key))
        .await
        .unwrap()
        .spawn(Flv::fixture(), LONG);
    let active = live
        .wait_for_status(&stream.name, StreamStatus::Active, Duration::from_secs(10))
        .await;
    let playback = active.playback.unwrap();
    let parsed = wait::until(
        "an HLS playlist with three segments",
        Duration::from_secs(30),
        || async {
            let text = http::get(&playback.hls_url)
                .await
                .map_err(|e| e.to_string())?
                .text();
            let parsed = hls::parse_media(&text)?;
            if parsed.segments.len() >= 3 {
                Ok(parsed)
            } else {
                Err(format!("{} segments", parsed.segments.len()))
            }
        },
    )
    .await;
    assert!(parsed.version >= 3);
    let base = playback.hls_url.rsplit_once('/').unwrap().0;
    for (_, uri) in &parsed.segments {
        assert!(!uri.contains(&key));
        let segment = http::get(&format!("{base}/{uri}")).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("s.ts");
        std::fs::write(&file, &segment.body).unwrap();
        let out = std::process::Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-show_entries",
                "stream=codec_name,width,height",
                "-of",
                "csv=p=0",
            ])
            .arg(&file)
            .output()
            .unwrap();
        let probed = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && probed.contains("h264,320,180") && probed.contains("aac"),
            "{uri}: {probed}"
        );
    }
    let dash = live
        .wait_for_url(&playback.dash_url, Duration::from_secs(20))
        .await;
    assert!(dash.text().contains("<MPD"));
    task.stop().await;
    live.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn rtmp_players_are_counted_as_viewers_while_they_play() {
    let mut live = LiveStack::start(LiveOptions::default()).await;
    let (stream, key) = live.create_stream("rtmp viewers").await;
    let task = publish(&live.publish_url(&key))
        .await
        .unwrap()
        .spawn(Flv::fixture(), LONG);
    live.wait_for_status(&stream.name, StreamStatus::Active, Duration::from_secs(10))
        .await;
    let player_url = format!(
        "rtmp://127.0.0.1:{}/stream/{}",
        live.nginx.settings().rtmp_port,
        stream.stream_id
    );
    let mut player = tokio::process::Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-nostdin",
            "-i",
            &player_url,
            "-t",
            "4",
            "-f",
            "null",
            "-",
        ])
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    live.wait_for_viewers(&stream.name, 1, Duration::from_secs(10))
        .await;
    let status = tokio::time::timeout(Duration::from_secs(20), player.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "the RTMP player played: {status}");
    live.wait_for_viewers(&stream.name, 0, Duration::from_secs(10))
        .await;
    // Playing the ingest application (stream names are keys there) is refused.
    let out = tokio::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-i"])
        .arg(live.publish_url(&key))
        .args(["-t", "1", "-f", "null", "-"])
        .output();
    let out = tokio::time::timeout(Duration::from_secs(20), out)
        .await
        .unwrap()
        .unwrap();
    assert!(!out.status.success(), "playing live/<key> must fail");
    assert_eq!(
        live.viewer_count(&stream.name).await,
        Ok(0),
        "a refused player is not counted"
    );
    task.stop().await;
    live.shutdown().await;
}
