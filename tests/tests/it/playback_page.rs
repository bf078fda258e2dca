//! The viewer page plays a signed stream given a token in its URL fragment (issue 13,
//! items 4 and 6), in headless Chromium with hls.js, and counts once: three token
//! readers (ffprobe) and the page are four viewers, four unique viewers, a
//! `viewer_count_changed` to 4 on the page's own WebSocket (which it holds for live
//! events without joining a session), and watch time. The plain page (no token)
//! cannot play it: the origin refuses its playlist. Given a token for a public
//! stream, whose socket is the viewer's session, the page plays the plain URLs and
//! counts once too.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    missing_docs
)]

use std::time::Duration;

use nova_proto::v1::{GetViewerCountRequest, PlaybackPolicy, StreamStatus};
use nova_tests::{
    clients, edge,
    ffmpeg::Broadcaster,
    live::{LiveOptions, LiveStack},
    playback,
    tools::workspace_root,
    wait,
};

/// Runs `tests/browser/signed.mjs` on `url` with `mode` (an expected viewer count,
/// or `refused`); returns its JSON line, after checking it succeeded.
async fn browse(url: &str, mode: &str) -> serde_json::Value {
    let root = workspace_root();
    let run = tokio::process::Command::new("node")
        .arg(root.join("tests/browser/signed.mjs"))
        .args([url, mode])
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
        "browser run ({mode}) failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(result["ok"], true, "{result}");
    result
}

#[tokio::test(flavor = "multi_thread")]
async fn the_page_plays_a_signed_stream_with_a_token_holds_its_socket_and_counts_once() {
    let mut live = LiveStack::start(LiveOptions::default()).await;
    let e = edge::start(&live.ctx, "edge-a").await;
    let base = format!("http://{}", e.addr);
    let (stream, key) = playback::create_stream(&live, PlaybackPolicy::Signed).await;
    let _ffmpeg = Broadcaster::start(&live.publish_url(&key), Duration::from_secs(180));
    live.wait_for_status(&stream.name, StreamStatus::Active, Duration::from_secs(15))
        .await;
    let mut readers = Vec::new();
    for sid in ["reader-1", "reader-2", "reader-3"] {
        let issued = playback::issue(&live, &stream.name, sid).await;
        live.wait_for_url(&issued.hls_url, Duration::from_secs(20))
            .await;
        readers.push(playback::reader(&issued.hls_url, 150));
    }
    live.wait_for_viewers(&stream.name, 3, Duration::from_secs(15))
        .await;

    let page = playback::issue(&live, &stream.name, "page-1").await;
    let result = browse(
        &format!("{base}/#/streams/{}?token={}", stream.stream_id, page.token),
        "4",
    )
    .await;
    assert_eq!(result["tokenized"], true, "the page plays the token URL");
    assert_eq!(result["sockets"], 1, "the page holds one WebSocket");
    let events = result["events"].as_array().unwrap();
    assert_eq!(events[0]["type"], "snapshot", "{events:?}");
    assert!(
        events
            .iter()
            .any(|e| e["type"] == "viewer_count_changed" && e["viewer_count"] == 4),
        "a live count event reached the page's socket: {events:?}"
    );
    for reader in &mut readers {
        assert!(
            reader.try_wait().unwrap().is_none(),
            "the ffprobe readers are still reading"
        );
    }

    // Counted once each: the page's socket joined no session.
    assert_eq!(live.viewer_count(&stream.name).await, Ok(4));
    let mut sessions = clients::sessions(&live.ctx.url(), &live.ctx.token).await;
    let figures = sessions
        .get_viewer_count(GetViewerCountRequest {
            name: stream.name.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(figures.unique_viewers, 4, "one unique viewer per session");
    assert_eq!(figures.peak_viewers, 4);
    // Only token sessions count on a signed stream: their watch time accrues.
    wait::until(
        "the token sessions' watch time to accrue",
        Duration::from_secs(20),
        || {
            let mut sessions = sessions.clone();
            let name = stream.name.clone();
            async move {
                let watched = sessions
                    .get_viewer_count(GetViewerCountRequest { name })
                    .await
                    .map_err(|s| s.to_string())?
                    .into_inner()
                    .total_watch_time
                    .unwrap_or_default();
                if watched.seconds > 0 || watched.nanos > 0 {
                    Ok(watched)
                } else {
                    Err(format!("{watched:?}"))
                }
            }
        },
    )
    .await;

    // The page without a token: the origin refuses the plain playlist, nothing
    // plays, and the page says why.
    let plain = browse(&format!("{base}/#/streams/{}", stream.stream_id), "refused").await;
    assert_eq!(plain["tokenized"], false, "{plain}");
    assert_eq!(plain["served"], 0, "no media file was served: {plain}");
    assert_eq!(plain["currentTime"], 0, "nothing played: {plain}");
    assert_eq!(plain["readyState"], 0, "no frame was decoded: {plain}");
    let after = sessions
        .get_viewer_count(GetViewerCountRequest {
            name: stream.name.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(after.unique_viewers, 4, "the plain page joined no session");
    assert!(after.viewer_count <= 4, "{after:?}");
    drop(readers);
    live.shutdown().await;
    e.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn given_a_token_for_a_public_stream_the_page_plays_the_plain_urls_and_counts_once() {
    let mut live = LiveStack::start(LiveOptions::default()).await;
    let e = edge::start(&live.ctx, "edge-a").await;
    let base = format!("http://{}", e.addr);
    let (stream, key) = playback::create_stream(&live, PlaybackPolicy::Public).await;
    let _ffmpeg = Broadcaster::start(&live.publish_url(&key), Duration::from_secs(120));
    live.wait_for_status(&stream.name, StreamStatus::Active, Duration::from_secs(15))
        .await;
    let issued = playback::issue(&live, &stream.name, "page-public").await;
    // Plain URLs of a public stream are not sessions: this wait counts nobody.
    let plain = issued
        .hls_url
        .replace(&format!("/t/{}/", issued.token), "/");
    live.wait_for_url(&plain, Duration::from_secs(20)).await;

    let result = browse(
        &format!(
            "{base}/#/streams/{}?token={}",
            stream.stream_id, issued.token
        ),
        "1",
    )
    .await;
    assert_eq!(result["tokenized"], false, "plain URLs: {result}");
    assert_eq!(result["sockets"], 1, "{result}");
    let figures = clients::sessions(&live.ctx.url(), &live.ctx.token)
        .await
        .get_viewer_count(GetViewerCountRequest {
            name: stream.name.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    // The socket only: a request with the token would have joined its session.
    assert_eq!(figures.unique_viewers, 1, "{figures:?}");
    assert_eq!(figures.peak_viewers, 1, "never counted twice: {figures:?}");
    live.shutdown().await;
    e.shutdown().await.unwrap();
}
