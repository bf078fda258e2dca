//! Tests of the socket loop: a real router on `127.0.0.1:0` with a WebSocket client
//! (tokio-tungstenite), over a control plane in the test process.

use std::{net::SocketAddr, time::Duration};

use futures::{SinkExt, StreamExt};
use nova_proto::v1::{StreamEvent, StreamStarted, ViewerCountChanged, stream_event::Kind};
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, tungstenite::Message as Frame};

use super::*;
use crate::{
    fake_control_plane::{FakeControlPlane, PEAK, VIEWERS},
    routes, shutdown,
};

type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Serves an edge over `upstream` with `args` as extra flags; returns its address,
/// its state and its shutdown trigger.
async fn serve_edge(
    upstream: &FakeControlPlane,
    args: &[&str],
) -> (SocketAddr, AppState, shutdown::Trigger) {
    let (state, trigger) = upstream.edge(args);
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let app = routes::router(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, state, trigger)
}

async fn connect(addr: SocketAddr, stream: impl std::fmt::Display) -> Client {
    let url = format!("ws://{addr}/api/v1/streams/{stream}/ws");
    tokio_tungstenite::connect_async(url).await.unwrap().0
}

/// The next frame that is not a ping, within five seconds.
async fn next(client: &mut Client) -> Frame {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(5), client.next())
            .await
            .expect("a frame within 5 s")
            .expect("the socket is open")
            .unwrap();
        if !matches!(frame, Frame::Ping(_)) {
            return frame;
        }
    }
}

async fn next_json(client: &mut Client) -> Value {
    match next(client).await {
        Frame::Text(text) => serde_json::from_str(text.as_str()).unwrap(),
        other => panic!("expected a text frame, got {other:?}"),
    }
}

/// The code and reason of the close frame that comes next.
async fn next_close(client: &mut Client) -> (u16, String) {
    match next(client).await {
        Frame::Close(Some(frame)) => (u16::from(frame.code), frame.reason.to_string()),
        other => panic!("expected a close frame, got {other:?}"),
    }
}

fn event(stream: Uuid, kind: Kind) -> StreamEvent {
    StreamEvent {
        cursor: "c1".to_owned(),
        name: format!("{}{stream}", nova_proto::STREAM_NAME_PREFIX),
        event_time: None,
        kind: Some(kind),
    }
}

#[tokio::test]
async fn a_snapshot_comes_first_then_the_streams_events_and_closing_leaves_the_session() {
    let upstream = FakeControlPlane::start().await;
    let id = upstream.add_stream("alice");
    let (addr, state, _trigger) = serve_edge(&upstream, &[]).await;
    let mut client = connect(addr, id).await;

    let snapshot = next_json(&mut client).await;
    assert_eq!(snapshot["type"], "snapshot");
    assert_eq!(snapshot["stream_id"], id.to_string());
    assert_eq!(snapshot["status"], "active");
    assert_eq!(snapshot["viewer_count"], VIEWERS);
    assert_eq!(snapshot["peak_viewers"], PEAK);
    assert_eq!(upstream.joined(), ["session-1"]);
    assert_eq!(state.hub.sockets(), 1);
    assert_eq!(state.metrics.sockets(), 1);

    // The snapshot's own figures are not news; newer ones and lifecycle events are.
    let count = |viewers, peak| {
        Kind::ViewerCountChanged(ViewerCountChanged {
            viewer_count: viewers,
            peak_viewers: peak,
        })
    };
    state.hub.dispatch(&event(id, count(VIEWERS, PEAK)));
    state
        .hub
        .dispatch(&event(id, Kind::StreamStarted(StreamStarted::default())));
    state.hub.dispatch(&event(id, count(VIEWERS + 1, PEAK)));
    assert_eq!(next_json(&mut client).await["type"], "stream_started");
    let fresh = next_json(&mut client).await;
    assert_eq!(fresh["type"], "viewer_count_changed");
    assert_eq!(fresh["viewer_count"], VIEWERS + 1);

    client.send(Frame::Close(None)).await.unwrap();
    upstream.wait_left("session-1").await;
    assert_eq!(state.hub.sockets(), 0, "the socket left the hub");
    assert_eq!(state.metrics.sockets(), 0);
}

#[tokio::test]
async fn a_stream_the_control_plane_does_not_know_closes_with_4404() {
    let upstream = FakeControlPlane::start().await;
    let (addr, _state, _trigger) = serve_edge(&upstream, &[]).await;
    let mut client = connect(addr, Uuid::new_v4()).await;
    assert_eq!(
        next_close(&mut client).await,
        (CLOSE_NOT_FOUND, "stream not found".to_owned())
    );
    assert!(
        upstream.joined().is_empty(),
        "no session for a missing stream"
    );
}

#[tokio::test]
async fn shutdown_closes_sockets_with_1001_and_a_reconnect_hint() {
    let upstream = FakeControlPlane::start().await;
    let id = upstream.add_stream("alice");
    let (addr, _state, trigger) = serve_edge(&upstream, &[]).await;
    let mut client = connect(addr, id).await;
    assert_eq!(next_json(&mut client).await["type"], "snapshot");
    trigger.fire();
    assert_eq!(
        next_close(&mut client).await,
        (CLOSE_GOING_AWAY, RECONNECT_REASON.to_owned())
    );
    upstream.wait_left("session-1").await;
}

#[tokio::test]
async fn a_socket_that_falls_too_far_behind_is_closed_with_4408() {
    let upstream = FakeControlPlane::start().await;
    let id = upstream.add_stream("alice");
    let (addr, state, _trigger) = serve_edge(&upstream, &["--ws-queue", "2"]).await;
    let mut client = connect(addr, id).await;
    assert_eq!(next_json(&mut client).await["type"], "snapshot");
    // On this single-threaded runtime the socket's task cannot run between these.
    for _ in 0..3 {
        state
            .hub
            .dispatch(&event(id, Kind::StreamStarted(StreamStarted::default())));
    }
    assert_eq!(
        next_close(&mut client).await,
        (CLOSE_TOO_SLOW, "too far behind".to_owned())
    );
    upstream.wait_left("session-1").await;
}
