//! The viewer page in headless Chromium: a live stream plays (the video's
//! currentTime advances) and the viewer count moves when a second tab opens.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    missing_docs
)]

use std::time::Duration;

use nova_proto::v1::StreamStatus;
use nova_tests::{
    edge::{self, Viewer},
    ffmpeg::Broadcaster,
    live::{LiveOptions, LiveStack},
    tools::workspace_root,
};

#[tokio::test(flavor = "multi_thread")]
async fn the_viewer_page_plays_a_live_stream_and_shows_the_count() {
    let mut live = LiveStack::start(LiveOptions::default()).await;
    let e = edge::start(&live.ctx, "edge-a").await;
    let base = format!("http://{}", e.addr);
    let (stream, key) = live.create_stream("browser").await;
    let _ffmpeg = Broadcaster::start(&live.publish_url(&key), Duration::from_secs(120));
    let active = live
        .wait_for_status(&stream.name, StreamStatus::Active, Duration::from_secs(15))
        .await;
    live.wait_for_url(&active.playback.unwrap().hls_url, Duration::from_secs(20))
        .await;
    // Someone already watches over a plain WebSocket.
    let mut other = Viewer::connect(&base, &stream.stream_id).await;
    other.next_of("snapshot", Duration::from_secs(2)).await;

    let root = workspace_root();
    let run = tokio::process::Command::new("node")
        .arg(root.join("tests/browser/viewer.mjs"))
        .arg(format!("{base}/#/streams/{}", stream.stream_id))
        .arg("1")
        .env(
            "PLAYWRIGHT_CORE",
            root.join(".nova/tools/node_modules/playwright-core/index.mjs"),
        )
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("the browser run finished within 120 s")
        .expect("node runs (scripts/install-deps.sh installs playwright-core)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "browser run failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(result["ok"], true);
    assert!(result["t2"].as_f64().unwrap() > result["t1"].as_f64().unwrap());
    assert_eq!(result["status"], "active");
    assert_eq!(result["overflow"], false, "no horizontal scroll on a phone");
    // The page's tabs were real viewers: the other socket saw the count reach 3.
    other.until_count(3, Duration::from_secs(5)).await;
    live.shutdown().await;
    e.shutdown().await.unwrap();
}
