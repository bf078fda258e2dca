//! A signed stream's viewers are counted by their playback tokens at the media
//! origin only: anonymous WebSockets on it still get the snapshot and the events,
//! but they neither count as viewers nor fill the stream's viewer cap (before, two
//! sockets opened by anyone who knew the id filled a cap of 2 and locked every
//! token holder out).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use nova_tests::{
    edge::{self, Viewer, call, jwt},
    live::{LiveOptions, LiveStack},
    playback,
};

#[tokio::test(flavor = "multi_thread")]
async fn anonymous_sockets_on_a_signed_stream_neither_count_nor_fill_its_cap() {
    let live = LiveStack::start(LiveOptions::default()).await;
    let e = edge::start(&live.ctx, "edge-a").await;
    let base = format!("http://{}", e.addr);
    let alice = jwt("alice");
    let created = call(
        "POST",
        &format!("{base}/api/v1/streams"),
        Some(&alice),
        Some(r#"{"title":"small room","playback_policy":"signed","max_viewers":1}"#),
    )
    .await;
    assert_eq!(created.status, 201, "{:?}", created.json);
    let id = created.json["stream"]["id"].as_str().unwrap().to_owned();
    let name = format!("streams/{id}");

    let mut sockets = Vec::new();
    for _ in 0..3 {
        let mut socket = Viewer::connect(&base, &id).await;
        let snapshot = socket.next_of("snapshot", Duration::from_secs(10)).await;
        assert_eq!(snapshot["viewer_count"], 0, "{snapshot}");
        sockets.push(socket);
    }
    assert_eq!(
        live.viewer_count(&name).await,
        Ok(0),
        "sockets were counted"
    );

    // The cap of 1 is still free for a token holder.
    let issued = call(
        "POST",
        &format!("{base}/api/v1/streams/{id}/playback-tokens"),
        Some(&alice),
        Some("{}"),
    )
    .await;
    assert_eq!(issued.status, 201, "{:?}", issued.json);

    // A public stream's sockets still count.
    let (public, _) = playback::create_stream(&live, nova_proto::v1::PlaybackPolicy::Public).await;
    let public_id = public.name.trim_start_matches("streams/").to_owned();
    let mut watcher = Viewer::connect(&base, &public_id).await;
    watcher.until_count(1, Duration::from_secs(10)).await;
    assert_eq!(live.viewer_count(&public.name).await, Ok(1));
    for socket in sockets {
        socket.close().await;
    }
    watcher.close().await;
}
