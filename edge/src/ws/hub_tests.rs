//! Unit tests of the hub: sockets register per stream, leave on drop, and an event
//! reaches every socket of its stream, in order, and no other.

use std::time::Duration;

use nova_proto::v1::{
    StreamEnded, StreamEvent, StreamStarted, ViewerCountChanged, stream_event::Kind,
};
use serde_json::Value;

use super::*;
use crate::ws::queue::Next;

fn event(stream: Uuid, cursor: &str, kind: Kind) -> StreamEvent {
    StreamEvent {
        cursor: cursor.to_owned(),
        name: format!("{}{stream}", nova_proto::STREAM_NAME_PREFIX),
        event_time: None,
        kind: Some(kind),
    }
}

fn count(stream: Uuid, viewers: i64, peak: i64) -> StreamEvent {
    event(
        stream,
        "",
        Kind::ViewerCountChanged(ViewerCountChanged {
            viewer_count: viewers,
            peak_viewers: peak,
        }),
    )
}

fn started(stream: Uuid, cursor: &str) -> StreamEvent {
    event(
        stream,
        cursor,
        Kind::StreamStarted(StreamStarted::default()),
    )
}

fn ended(stream: Uuid, cursor: &str) -> StreamEvent {
    event(stream, cursor, Kind::StreamEnded(StreamEnded::default()))
}

/// The frames queued for `registration`, parsed; fails if none comes within a second.
async fn frames(registration: &Registration) -> Vec<Value> {
    let next = tokio::time::timeout(Duration::from_secs(1), registration.queue.next())
        .await
        .expect("a frame is queued within a second");
    match next {
        Next::Send(frames) => frames
            .iter()
            .map(|f| serde_json::from_str(f.as_str()).unwrap())
            .collect(),
        Next::TooFarBehind => panic!("the queue overflowed"),
    }
}

/// Whether anything is queued for `registration` (waits briefly).
async fn nothing_queued(registration: &Registration) -> bool {
    tokio::time::timeout(Duration::from_millis(50), registration.queue.next())
        .await
        .is_err()
}

#[tokio::test]
async fn sockets_register_per_stream_and_leave_on_drop() {
    let hub = Hub::default();
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    assert_eq!(hub.sockets(), 0);
    let first = hub.register(a, 8);
    let second = hub.register(a, 8);
    let other = hub.register(b, 8);
    assert_eq!(hub.sockets(), 3);
    let mut streams = hub.streams();
    streams.sort();
    let mut expected = vec![a, b];
    expected.sort();
    assert_eq!(streams, expected);

    drop(first);
    assert_eq!(hub.sockets(), 2, "a dropped registration leaves the hub");
    assert_eq!(hub.streams().len(), 2, "the stream keeps its other socket");
    drop(second);
    assert_eq!(
        hub.streams(),
        vec![b],
        "a stream without sockets is forgotten"
    );
    drop(other);
    assert_eq!(hub.sockets(), 0);
    assert!(hub.streams().is_empty());
}

#[tokio::test]
async fn a_count_reaches_every_socket_of_its_stream_and_no_other() {
    let hub = Hub::default();
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    let watchers = [hub.register(a, 8), hub.register(a, 8)];
    let elsewhere = hub.register(b, 8);

    hub.dispatch(&count(a, 3, 5));
    for watcher in &watchers {
        let got = frames(watcher).await;
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0]["type"], "viewer_count_changed");
        assert_eq!(got[0]["stream_id"], a.to_string());
        assert_eq!(got[0]["viewer_count"], 3);
        assert_eq!(got[0]["peak_viewers"], 5);
    }
    assert!(
        nothing_queued(&elsewhere).await,
        "another stream hears nothing"
    );
}

#[tokio::test]
async fn lifecycle_events_keep_their_order_and_a_newer_count_replaces_an_older_one() {
    let hub = Hub::default();
    let stream = Uuid::new_v4();
    let watcher = hub.register(stream, 8);

    hub.dispatch(&count(stream, 1, 1));
    hub.dispatch(&started(stream, "c1"));
    hub.dispatch(&count(stream, 2, 2));
    hub.dispatch(&ended(stream, "c2"));
    let got = frames(&watcher).await;
    let kinds: Vec<&str> = got.iter().map(|f| f["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        ["stream_started", "stream_ended", "viewer_count_changed"],
        "lifecycle first, in order; then only the newest count"
    );
    assert_eq!(got[0]["cursor"], "c1");
    assert_eq!(got[1]["cursor"], "c2");
    assert_eq!(got[2]["viewer_count"], 2);
}

#[tokio::test]
async fn events_for_unknown_streams_or_foreign_names_are_ignored() {
    let hub = Hub::default();
    let stream = Uuid::new_v4();
    let watcher = hub.register(stream, 8);

    hub.dispatch(&count(Uuid::new_v4(), 1, 1));
    let mut foreign = count(stream, 1, 1);
    foreign.name = stream.to_string();
    hub.dispatch(&foreign);
    let mut kindless = count(stream, 1, 1);
    kindless.kind = None;
    hub.dispatch(&kindless);
    assert!(nothing_queued(&watcher).await);
}

#[tokio::test]
async fn a_socket_that_falls_too_far_behind_is_told_to_close() {
    let hub = Hub::default();
    let stream = Uuid::new_v4();
    let watcher = hub.register(stream, 2);
    for cursor in ["c1", "c2", "c3"] {
        hub.dispatch(&started(stream, cursor));
    }
    assert_eq!(watcher.queue.next().await, Next::TooFarBehind);
}
