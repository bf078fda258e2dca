//! `GET /api/v1/streams/{id}/ws`: one WebSocket, one viewer session. The first frame
//! is a snapshot; then live events; pings keep the connection honest; close frames
//! say why it ends.

use std::{future::Future, pin::Pin, time::Duration};

use axum::{
    extract::{
        Path, State,
        ws::{CloseFrame, Message, Utf8Bytes, WebSocket},
    },
    http::HeaderMap,
    response::Response,
};
use futures::{SinkExt, StreamExt};
use nova_proto::v1::{GetViewerCountResponse, Stream};
use serde::Deserialize;
use serde_json::json;
use tokio::time::Instant;
use uuid::Uuid;

use crate::{
    error::ApiError,
    extract::{Params, Upgrade},
    json,
    metrics::{Refusal, SocketFailure},
    ratelimit::{ClientIp, admit},
    state::AppState,
    ws::{
        queue::Next,
        setup::{self, Opened, Refused},
        slots::NoSlot,
    },
};

/// Close code: the stream does not exist.
pub const CLOSE_NOT_FOUND: u16 = 4404;
/// Close code: the client read too slowly and fell too far behind.
pub const CLOSE_TOO_SLOW: u16 = 4408;
/// Close code: the control plane could not be reached.
pub const CLOSE_UNAVAILABLE: u16 = 1011;
/// Close code: the server is shutting down (SIGTERM, a rollout).
pub const CLOSE_GOING_AWAY: u16 = 1001;
/// Close reason sent with [`CLOSE_GOING_AWAY`]: clients should reconnect (with
/// backoff); another edge, or this one restarted, serves them a fresh snapshot.
pub const RECONNECT_REASON: &str = "server shutting down; reconnect";

/// Time between server pings.
const PING_EVERY: Duration = Duration::from_secs(20);
/// A client silent (no pong, no message) for this long is dropped.
const IDLE_LIMIT: Duration = Duration::from_secs(60);
/// Longest a write to one socket may take; a client that stops reading is closed
/// with 4408 instead of holding its task, its slot and shutdown.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest the closing frame may take to go out.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// Query of the WebSocket URL.
#[derive(Debug, Deserialize)]
pub struct WsQuery {
    /// Formerly a client-chosen viewer id; still checked for shape (old clients send
    /// it), never used: the edge derives the viewer id itself, so a client cannot
    /// inflate unique-viewer counts.
    viewer: Option<String>,
}

/// Upgrades to a WebSocket with small, explicit buffers (tungstenite's defaults cost
/// about 130 KB per connection), after the Origin allowlist, the client's open rate,
/// its socket cap and the edge's socket cap.
pub async fn upgrade(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    Path(id): Path<String>,
    Params(query): Params<WsQuery>,
    headers: HeaderMap,
    upgrade: Result<Upgrade, ApiError>,
) -> Result<Response, ApiError> {
    if let Some(v) = &query.viewer
        && (v.is_empty()
            || v.len() > 64
            || !v
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
    {
        return Err(ApiError::invalid(
            "viewer",
            "must be 1 to 64 characters from A-Z a-z 0-9 - _",
        ));
    }
    if let Some(allowed) = &state.config.ws_allowed_origins
        && let Err(refused) = allowed.check(&headers)
    {
        state.metrics.refused(Refusal::WsOrigin);
        return Err(refused);
    }
    let Upgrade(ws) = upgrade?;
    admit(
        &state.metrics,
        &state.limits.ws_opens,
        client,
        Refusal::WsOpenRate,
    )?;
    let slot = match state.slots.try_take(client) {
        Ok(slot) => slot,
        Err(NoSlot::EdgeFull) => {
            state.metrics.socket_failed(SocketFailure::Full);
            state.metrics.refused(Refusal::WsFull);
            return Err(ApiError::edge_full());
        }
        Err(NoSlot::ClientFull) => {
            state.metrics.refused(Refusal::WsClientSockets);
            return Err(ApiError::too_many_sockets());
        }
    };
    let viewer = state.sessions.viewer_id(client);
    // Counted as running until the socket has closed and left its session, so
    // shutdown waits for it.
    let running = state.tasks.guard();
    Ok(ws
        .read_buffer_size(512)
        .write_buffer_size(4 * 1024)
        .max_write_buffer_size(256 * 1024)
        .max_message_size(16 * 1024)
        .max_frame_size(16 * 1024)
        .on_upgrade(move |socket| async move {
            serve(socket, state, id, viewer).await;
            drop(slot);
            drop(running);
        }))
}

/// Closes a socket that never got its snapshot. Boxed: inline, this future would
/// size every socket's task for its whole life (G1 in docs/benchmarks.md).
fn close(
    mut socket: WebSocket,
    code: u16,
    reason: &'static str,
) -> Pin<Box<dyn Future<Output = ()> + Send>> {
    Box::pin(async move {
        let _ = socket
            .send(Message::Close(Some(CloseFrame {
                code,
                reason: Utf8Bytes::from_static(reason),
            })))
            .await;
    })
}

/// The first frame of a socket: the stream and its figures now.
fn snapshot_frame(stream: &Stream, figures: &GetViewerCountResponse) -> Utf8Bytes {
    json!({
        "type": "snapshot",
        "stream_id": stream.stream_id,
        "at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "status": json::status(stream.status),
        "title": stream.title,
        "viewer_count": figures.viewer_count,
        "peak_viewers": figures.peak_viewers,
        "playback": json::playback(stream.playback.as_ref()),
    })
    .to_string()
    .into()
}

async fn serve(socket: WebSocket, state: AppState, id: String, viewer: String) {
    if state.stop.fired() {
        return close(socket, CLOSE_GOING_AWAY, RECONNECT_REASON).await;
    }
    let Ok(stream_id) = Uuid::try_parse(&id) else {
        return close(socket, CLOSE_NOT_FOUND, "stream not found").await;
    };
    let name = format!("{}{stream_id}", nova_proto::STREAM_NAME_PREFIX);
    // Register before reading the snapshot, so no event falls in between.
    let registration = state.hub.register(stream_id, state.config.ws_queue);
    let opened = tokio::select! {
        () = state.stop.clone().wait() => return close(socket, CLOSE_GOING_AWAY, RECONNECT_REASON).await,
        // Boxed: the set-up calls' futures are large, and inline they would size
        // every socket's task for its whole life (G1 in docs/benchmarks.md).
        opened = Box::pin(setup::open(&state, &name, &viewer)) => opened,
    };
    let Opened {
        stream,
        handle,
        figures,
    } = match opened {
        Ok(opened) => opened,
        Err(Refused::NotFound) => {
            return close(socket, CLOSE_NOT_FOUND, "stream not found").await;
        }
        Err(Refused::Completed) => return close(socket, 4410, "stream has completed").await,
        Err(Refused::Unavailable(status)) => {
            tracing::debug!(grpc.code = ?status.code(), error = status.message(), stream.id = %stream_id, "the control plane stayed unavailable; closing the socket with 1011");
            state.metrics.socket_failed(SocketFailure::Unavailable);
            return close(
                socket,
                CLOSE_UNAVAILABLE,
                "service unavailable, retry later",
            )
            .await;
        }
    };
    state.metrics.socket_opened();
    registration
        .queue
        .snapshot_sent(figures.viewer_count, figures.peak_viewers);
    let snapshot = snapshot_frame(&stream, &figures);
    // What the socket holds for its whole life is what it costs (G1 in
    // docs/benchmarks.md): the set-up's strings and stream are not kept, and the
    // sends below are boxed, so their futures exist only while a send runs.
    drop((stream, id, name, viewer));
    let (mut tx, mut rx) = socket.split();
    let mut outcome = Box::pin(tx.send(Message::Text(snapshot)))
        .await
        .map(|_| None);
    let mut ping = tokio::time::interval_at(Instant::now() + PING_EVERY, PING_EVERY);
    let mut last_heard = Instant::now();
    let stopped = state.stop.clone().wait();
    tokio::pin!(stopped);
    while let Ok(None) = outcome {
        outcome = tokio::select! {
            () = &mut stopped => Ok(Some((CLOSE_GOING_AWAY, RECONNECT_REASON))),
            next = registration.queue.next() => match next {
                Next::TooFarBehind => Ok(Some((CLOSE_TOO_SLOW, "too far behind"))),
                Next::Send(frames) => {
                    let write = async {
                        for frame in frames {
                            tx.feed(Message::Text(frame)).await?;
                        }
                        tx.flush().await
                    };
                    // A client that stops reading would hold this write (and so the
                    // idle check, the queue and shutdown) forever.
                    match Box::pin(tokio::time::timeout(SEND_TIMEOUT, write)).await {
                        Ok(sent) => sent.map(|()| None),
                        Err(_) => Ok(Some((CLOSE_TOO_SLOW, "too far behind"))),
                    }
                }
            },
            incoming = rx.next() => match incoming {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {
                    last_heard = Instant::now();
                    Ok(None)
                }
            },
            _ = ping.tick() => {
                if last_heard.elapsed() > IDLE_LIMIT {
                    Ok(Some((1000, "idle")))
                } else {
                    match Box::pin(tokio::time::timeout(SEND_TIMEOUT, tx.send(Message::Ping(Default::default())))).await {
                        Ok(sent) => sent.map(|()| None),
                        Err(_) => Ok(Some((CLOSE_TOO_SLOW, "too far behind"))),
                    }
                }
            }
        };
    }
    match &outcome {
        Ok(Some((CLOSE_TOO_SLOW, _))) => state.metrics.socket_failed(SocketFailure::TooSlow),
        Ok(Some((1000, "idle"))) => state.metrics.socket_failed(SocketFailure::Idle),
        Err(_) => state.metrics.socket_failed(SocketFailure::SendFailed),
        _ => {}
    }
    if let Ok(Some((code, reason))) = outcome {
        let close = tx.send(Message::Close(Some(CloseFrame {
            code,
            reason: Utf8Bytes::from_static(reason),
        })));
        let _ = Box::pin(tokio::time::timeout(CLOSE_TIMEOUT, close)).await;
    }
    drop(registration);
    state.metrics.socket_closed();
    if let Some(handle) = handle {
        Box::pin(state.sessions.leave(handle)).await;
    }
}

#[cfg(test)]
#[path = "socket_tests.rs"]
mod tests;
