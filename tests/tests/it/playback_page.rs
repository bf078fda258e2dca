//! The viewer page plays a signed stream given a token in its URL fragment (issue 13,
//! item 6), in headless Chromium with hls.js, and counts once: three token players
//! (ffmpeg) and the page are four viewers. The plain page (no token) cannot play it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    missing_docs
)]

use std::time::Duration;

use nova_proto::v1::{PlaybackPolicy, StreamStatus};
use nova_tests::{
    edge,
    ffmpeg::Broadcaster,
    live::{LiveOptions, LiveStack},
    playback,
    tools::workspace_root,
};

#[tokio::test(flavor = "multi_thread")]
async fn the_page_plays_a_signed_stream_with_a_token_and_counts_once() {
    let mut live = LiveStack::start(LiveOptions::default()).await;
    let e = edge::start(&live.ctx, "edge-a").await;
    let base = format!("http://{}", e.addr);
    let (stream, key) = playback::create_stream(&live, PlaybackPolicy::Signed).await;
    let _ffmpeg = Broadcaster::start(&live.publish_url(&key), Duration::from_secs(180));
    live.wait_for_status(&stream.name, StreamStatus::Active, Duration::from_secs(15))
        .await;
    let mut players = Vec::new();
    for sid in ["ffmpeg-1", "ffmpeg-2", "ffmpeg-3"] {
        let issued = playback::issue(&live, &stream.name, sid).await;
        live.wait_for_url(&issued.hls_url, Duration::from_secs(20))
            .await;
        players.push(playback::player(&issued.hls_url, 90));
    }
    live.wait_for_viewers(&stream.name, 3, Duration::from_secs(15))
        .await;

    let page = playback::issue(&live, &stream.name, "page-1").await;
    let root = workspace_root();
    let run = tokio::process::Command::new("node")
        .arg(root.join("tests/browser/signed.mjs"))
        .arg(format!(
            "{base}/#/streams/{}?token={}",
            stream.stream_id, page.token
        ))
        .arg("4")
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
    assert_eq!(result["tokenized"], true, "the page plays the token URL");
    assert_eq!(result["sockets"], 0, "no second session over a WebSocket");
    assert_eq!(live.viewer_count(&stream.name).await, Ok(4));
    drop(players);
    live.shutdown().await;
    e.shutdown().await.unwrap();
}
