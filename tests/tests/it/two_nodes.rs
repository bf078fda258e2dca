//! Two ingest nodes (each a real nginx-rtmp with its ingest-hooks) against one control
//! plane: each stream's playback URLs point at the origin of the node that holds it,
//! and a broadcaster whose node dies resumes the same stream on the other node.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    missing_docs
)]

use std::time::Duration;

use nova_proto::v1::StreamStatus;
use nova_tests::{
    events, http,
    live::{LiveOptions, LiveStack},
    publisher::{Flv, RtmpError, publish},
    wait,
};
use tokio::time::Instant;

const LONG: Duration = Duration::from_secs(3600);

#[tokio::test(flavor = "multi_thread")]
async fn playback_points_at_the_holding_node_and_a_stream_resumes_on_the_other_node() {
    let mut live = LiveStack::start(LiveOptions::default()).await;
    let mut node_b = live.add_node("ingest-b").await;
    let origin_a = live.nginx.origin_url();
    let origin_b = node_b.nginx.origin_url();

    let (one, key_one) = live.create_stream("on node A").await;
    let (two, key_two) = live.create_stream("on node B").await;
    let mut on_a = publish(&live.publish_url(&key_one))
        .await
        .expect("publish on node A")
        .spawn(Flv::fixture(), LONG);
    let on_b = publish(&node_b.publish_url(&key_two))
        .await
        .expect("publish on node B")
        .spawn(Flv::fixture(), LONG);

    // Each stream plays from the origin of its own node, and only there.
    for (stream, origin, other) in [(&one, &origin_a, &origin_b), (&two, &origin_b, &origin_a)] {
        let active = live
            .wait_for_status(&stream.name, StreamStatus::Active, Duration::from_secs(10))
            .await;
        let hls = active.playback.expect("playback URLs").hls_url;
        assert!(hls.starts_with(origin.as_str()), "{hls} is not on {origin}");
        live.wait_for_url(&hls, Duration::from_secs(20)).await;
        let elsewhere = hls.replace(origin.as_str(), other);
        let answer = http::get(&elsewhere)
            .await
            .expect("the other origin answers");
        assert_eq!(
            answer.status, 404,
            "{elsewhere} must not exist on the other node"
        );
    }

    // Node A dies: its broadcaster is cut off, reconnects to node B with the same key
    // and resumes the same stream there once A's hold has gone stale.
    live.shutdown().await;
    let cut = on_a.ended_within(Duration::from_secs(10)).await;
    assert!(
        matches!(cut, Err(RtmpError::Closed) | Err(RtmpError::Io(_))),
        "{cut:?}"
    );
    let moved = Instant::now();
    let resumed = wait::until(
        "the broadcaster to get on air on node B",
        Duration::from_secs(20),
        || async {
            publish(&node_b.publish_url(&key_one))
                .await
                .map_err(|e| e.to_string())
        },
    )
    .await
    .spawn(Flv::fixture(), LONG);
    let active = live
        .wait_for_status(&one.name, StreamStatus::Active, Duration::from_secs(10))
        .await;
    let hls = active.playback.expect("playback URLs").hls_url;
    assert!(
        hls.starts_with(origin_b.as_str()),
        "after the move, {hls} is on node B"
    );
    live.wait_for_url(&hls, Duration::from_secs(20)).await;
    println!(
        "stream moved from node A to node B: on air again after {:.2} s",
        moved.elapsed().as_secs_f64()
    );
    let lifecycle = events::lifecycle(&mut live.ctx.db().await, &one.stream_id).await;
    assert_eq!(
        lifecycle.first().map(String::as_str),
        Some("started resumed=false")
    );
    assert_eq!(
        lifecycle.last().map(String::as_str),
        Some("started resumed=true"),
        "the same stream resumed: {lifecycle:?}"
    );
    assert_eq!(active.stream_id, one.stream_id);

    resumed.stop().await;
    on_b.stop().await;
    node_b.shutdown().await;
}
