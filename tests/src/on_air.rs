//! Broadcasts through the live stack: put one on air, check it stays there, end it,
//! publish again after a drop.

use std::time::Duration;

use nova_proto::v1::{EndStreamRequest, StreamStatus};

use crate::{
    clients,
    live::LiveStack,
    publisher::{Flv, PublishTask, RtmpError, publish},
    wait,
};

/// Starts a publisher on a new stream through nginx; returns its name and task.
pub async fn on_air(live: &mut LiveStack, title: &str) -> (String, PublishTask) {
    let (name, _, task) = on_air_with_id(live, title).await;
    (name, task)
}

/// Like [`on_air`], also returning the stream's public id.
pub async fn on_air_with_id(live: &mut LiveStack, title: &str) -> (String, String, PublishTask) {
    let (stream, key) = live.create_stream(title).await;
    let task = publish(&live.publish_url(&key))
        .await
        .expect("publish accepted")
        .spawn(Flv::fixture(), Duration::from_secs(3600));
    live.wait_for_status(&stream.name, StreamStatus::Active, Duration::from_secs(10))
        .await;
    (stream.name, stream.stream_id, task)
}

/// Asserts the publisher stays on air for `window` (nginx would drop it at a failed
/// update, one update interval away).
pub async fn still_on_air(task: &mut PublishTask, window: Duration, what: &str) {
    match task.ended_within(window).await {
        Err(RtmpError::Timeout(_)) => {}
        other => panic!("the broadcaster was dropped {what}: {other:?}"),
    }
}

/// Ends the stream and asserts nginx cuts the broadcaster off at nginx's next update;
/// returns how long the cut took.
pub async fn end_and_cut(live: &LiveStack, name: &str, task: &mut PublishTask) -> Duration {
    end_via(&live.streams, name, task).await
}

/// Like [`end_and_cut`], through any owner-side client `streams`.
pub async fn end_via(streams: &clients::Streams, name: &str, task: &mut PublishTask) -> Duration {
    let ended = tokio::time::Instant::now();
    streams
        .clone()
        .end_stream(EndStreamRequest { name: name.into() })
        .await
        .expect("EndStream");
    let result = task.ended_within(Duration::from_secs(10)).await;
    assert!(
        matches!(result, Err(RtmpError::Closed)),
        "cut off: {result:?}"
    );
    ended.elapsed()
}

/// Publishes `url` again (every 50 ms, at most `timeout`) until nginx and the
/// control plane accept it, as an encoder's reconnect does.
pub async fn republish(url: &str, timeout: Duration) -> PublishTask {
    wait::until("the broadcaster's reconnect accepted", timeout, || async {
        publish(url).await.map_err(|e| e.to_string())
    })
    .await
    .spawn(Flv::fixture(), Duration::from_secs(3600))
}
