//! The ABR profile: nginx transcodes a live broadcast into renditions and writes a
//! master playlist listing each with bandwidth and resolution.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    missing_docs
)]

use std::time::Duration;

use nova_proto::v1::StreamStatus;
use nova_tests::{
    ffmpeg::Broadcaster,
    hls, http,
    live::{LiveOptions, LiveStack},
    wait,
};
use tokio::time::Instant;

#[tokio::test(flavor = "multi_thread")]
async fn abr_master_playlist_lists_every_rendition_with_bandwidth_and_resolution() {
    let mut live = LiveStack::start(LiveOptions {
        abr: true,
        ..LiveOptions::default()
    })
    .await;
    let (stream, key) = live.create_stream("adaptive").await;
    let started = Instant::now();
    let _ffmpeg = Broadcaster::start(&live.publish_url(&key), Duration::from_secs(120));
    let active = live
        .wait_for_status(&stream.name, StreamStatus::Active, Duration::from_secs(15))
        .await;
    let master_url = active.playback.unwrap().hls_master_url;
    assert!(
        master_url.ends_with(&format!("/abr/{}.m3u8", stream.stream_id)),
        "{master_url}"
    );

    let variants = wait::until(
        "a master playlist with both renditions",
        Duration::from_secs(30),
        || async {
            let answer = http::get(&master_url).await.map_err(|e| e.to_string())?;
            if answer.status != 200 {
                return Err(format!("HTTP {}", answer.status));
            }
            let variants = hls::parse_master(&answer.text())?;
            if variants.len() == 2 {
                Ok(variants)
            } else {
                Err(format!("{variants:?}"))
            }
        },
    )
    .await;
    println!(
        "time from publish to master playlist: {:.2} s",
        started.elapsed().as_secs_f64()
    );
    let shape: Vec<_> = variants
        .iter()
        .map(|v| (v.bandwidth, v.resolution))
        .collect();
    assert_eq!(shape, [(1_328_000, (854, 480)), (464_000, (426, 240))]);

    // Each rendition's playlist is served and valid, and its video has that size.
    let base = master_url.rsplit_once('/').unwrap().0;
    for variant in &variants {
        let url = format!("{base}/{}", variant.uri);
        let playlist = wait::until(
            &format!("{url} with a segment"),
            Duration::from_secs(30),
            || async {
                let text = http::get(&url).await.map_err(|e| e.to_string())?.text();
                let parsed = hls::parse_media(&text)?;
                if parsed.segments.is_empty() {
                    Err("no segment yet".to_owned())
                } else {
                    Ok(parsed)
                }
            },
        )
        .await;
        let dir = url.rsplit_once('/').unwrap().0;
        let segment = http::get(&format!("{dir}/{}", playlist.segments[0].1))
            .await
            .unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("s.ts");
        std::fs::write(&file, &segment.body).unwrap();
        let out = std::process::Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-select_streams",
                "v:0",
                "-show_entries",
                "stream=width,height",
                "-of",
                "csv=p=0",
            ])
            .arg(&file)
            .output()
            .unwrap();
        let (w, h) = variant.resolution;
        let probed = String::from_utf8_lossy(&out.stdout);
        let first = probed
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or_default();
        assert_eq!(first.trim(), format!("{w},{h}"), "{}", variant.uri);
    }

    // The /stat poller reports the renditions.
    let renditions = wait::until(
        "renditions in ingest health",
        Duration::from_secs(20),
        || async {
            let health = live
                .get(&stream.name)
                .await
                .ingest_health
                .ok_or("no health yet")?;
            let names: Vec<String> = health.renditions.iter().map(|r| r.name.clone()).collect();
            if names.len() == 2 {
                Ok(names)
            } else {
                Err("renditions not yet seen")
            }
        },
    )
    .await;
    assert_eq!(renditions, ["480p", "240p"]);

    // The transcoder has been playing the stream all along, marked with the hooks
    // secret: nginx's helpers are not viewers.
    let viewers = live.viewer_count(&stream.name).await.expect("viewer count");
    assert_eq!(
        viewers, 0,
        "the ABR transcoder and the relay are not counted"
    );
    live.shutdown().await;
}
