//! Server-side viewer sessions from token playback (issue 13, item 4): each token's
//! session becomes a viewer session at its first authorised request at the origin,
//! is renewed while its player fetches files, and is left when they stop; players
//! sharing one session count once. Real nginx-rtmp, ffmpeg as broadcaster and as
//! unmodified HLS/DASH players.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use nova_proto::v1::{GetViewerCountRequest, PlaybackPolicy, StreamStatus};
use nova_tests::{
    clients,
    ffmpeg::Broadcaster,
    live::{LiveOptions, LiveStack},
    playback::{self, ffprobe},
};

#[tokio::test(flavor = "multi_thread")]
async fn token_players_are_viewers_once_per_session_and_leave_when_they_stop() {
    let mut live = LiveStack::start(LiveOptions::default()).await;
    let (stream, key) = playback::create_stream(&live, PlaybackPolicy::Signed).await;
    let _ffmpeg = Broadcaster::start(&live.publish_url(&key), Duration::from_secs(120));
    live.wait_for_status(&stream.name, StreamStatus::Active, Duration::from_secs(15))
        .await;
    let mut tokens = Vec::new();
    for sid in ["reader-1", "reader-2", "reader-3"] {
        tokens.push(playback::issue(&live, &stream.name, sid).await);
    }
    live.wait_for_url(&tokens[0].hls_url, Duration::from_secs(20))
        .await;
    // Fetching the playlist with reader-1's token made reader-1 a viewer already.
    live.wait_for_viewers(&stream.name, 1, Duration::from_secs(5))
        .await;

    // Three sessions: two HLS players and a DASH player; a fourth player shares the
    // first session (same token) and is not counted again.
    let players = vec![
        playback::player(&tokens[0].hls_url, 25),
        playback::player(&tokens[1].hls_url, 25),
        playback::player(&tokens[2].dash_url, 25),
        playback::player(&tokens[0].hls_url, 25),
    ];
    live.wait_for_viewers(&stream.name, 3, Duration::from_secs(15))
        .await;
    // ffprobe with one of the same tokens: still three.
    assert!(ffprobe(&tokens[1].hls_url).await);
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(
        live.viewer_count(&stream.name).await,
        Ok(3),
        "renewed while they play"
    );
    let figures = clients::sessions(&live.ctx.url(), &live.ctx.token)
        .await
        .get_viewer_count(GetViewerCountRequest {
            name: stream.name.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(figures.unique_viewers, 3, "one unique viewer per session");
    assert_eq!(figures.peak_viewers, 3);

    // The players stop: their sessions are left once quiet.
    drop(players);
    live.wait_for_viewers(&stream.name, 0, Duration::from_secs(30))
        .await;
    live.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restarted_verifier_leaves_its_sessions_so_they_are_not_counted_twice() {
    let mut live = LiveStack::start(LiveOptions::default()).await;
    let watcher = nova_tests::watcher::Watcher::start(&live.ctx.url(), &live.ctx.token).await;
    let (stream, key) = playback::create_stream(&live, PlaybackPolicy::Signed).await;
    let _ffmpeg = Broadcaster::start(&live.publish_url(&key), Duration::from_secs(120));
    live.wait_for_status(&stream.name, StreamStatus::Active, Duration::from_secs(15))
        .await;
    let first = playback::issue(&live, &stream.name, "restart-1").await;
    let second = playback::issue(&live, &stream.name, "restart-2").await;
    live.wait_for_url(&first.hls_url, Duration::from_secs(20))
        .await;
    let _players = [
        playback::player(&first.hls_url, 90),
        playback::player(&second.hls_url, 90),
    ];
    live.wait_for_viewers(&stream.name, 2, Duration::from_secs(15))
        .await;
    let before = watcher.counts(&stream.name).len();

    // A graceful restart (what SIGTERM does): the old sessions are left on shutdown,
    // and the players' next requests join them again on the new process.
    live.restart_hooks(Duration::ZERO).await;
    let after = nova_tests::wait::until(
        "the count to fall and come back to 2 after the restart",
        Duration::from_secs(40),
        || async {
            let counts = watcher.counts(&stream.name)[before..].to_vec();
            let fell = counts.iter().position(|c| *c < 2);
            match fell {
                Some(i) if counts[i..].last() == Some(&2) => Ok(counts),
                _ => Err(counts),
            }
        },
    )
    .await;
    assert!(
        after.iter().all(|c| *c <= 2),
        "never counted twice: {after:?}"
    );
    assert_eq!(live.viewer_count(&stream.name).await, Ok(2));
    live.shutdown().await;
}
