//! The edge's one upstream `WatchEvents`: kept open until shutdown, reconnected with
//! jittered exponential backoff after any break (a control-plane restart, a network
//! blip, a stream the server ended), resumed after the last delivered lifecycle
//! cursor so sockets miss and repeat nothing, and followed by fresh viewer counts
//! each time it opens (counts are live-only: the ones produced during a break, or
//! before the first open while sockets were already being accepted, are gone).

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use nova_proto::v1::{
    BatchGetViewerCountsRequest, StreamEvent, ViewerCountChanged, WatchEventsRequest,
    stream_event::Kind,
};
use nova_runtime::shutdown;

use crate::{
    upstream::Upstream,
    ws::{hub::Hub, resume::Resume},
};

/// Streams per BatchGetViewerCounts call (the control plane's cap).
const COUNTS_BATCH: usize = 1000;

/// The reconnect delays: from 100 ms, doubling, at most 5 s, with jitter so a fleet
/// of edges does not reconnect in step after a control-plane restart.
fn reconnect_delays() -> impl Iterator<Item = Duration> {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(100))
        .with_max_delay(Duration::from_secs(5))
        .with_jitter()
        .without_max_times()
        .build()
}

/// How one WatchEvents call ended.
enum Ended {
    /// It never opened (the control plane could not be reached or refused).
    NotOpened(tonic::Status),
    /// It opened, then broke or was ended by the server.
    Broke(Option<tonic::Status>),
}

/// Keeps one WatchEvents open to the control plane until shutdown, dispatching what
/// arrives to the hub's sockets.
pub async fn run(upstream: Upstream, hub: Hub, stop: shutdown::Signal) {
    let mut resume = Resume::default();
    let mut delays = reconnect_delays();
    let stopped = stop.wait();
    tokio::pin!(stopped);
    loop {
        let watched = watch_once(&upstream, &hub, &mut resume);
        let ended = tokio::select! {
            () = &mut stopped => return,
            ended = watched => ended,
        };
        match ended {
            Ended::NotOpened(status) => {
                // At most one line per backoff step (5 s once the outage lasts).
                tracing::warn!(grpc.code = ?status.code(), error = status.message(), "cannot open the event stream; retrying");
            }
            Ended::Broke(status) => {
                delays = reconnect_delays();
                tracing::warn!(
                    grpc.code = ?status.as_ref().map(tonic::Status::code),
                    events.after_cursor = %resume.after_cursor(),
                    "event stream lost; reconnecting and resuming after the last cursor"
                );
                if !resume.has_cursor() {
                    tracing::warn!(
                        "no resume point (the control plane sent no log position): resuming with live events only"
                    );
                }
            }
        }
        let delay = delays.next().unwrap_or(Duration::from_secs(5));
        tokio::select! {
            () = &mut stopped => return,
            () = tokio::time::sleep(delay) => {}
        }
    }
}

/// Response metadata naming the position a WatchEvents stream starts after (see the
/// control plane's `grpc::event_service::LOG_POSITION_HEADER`).
const LOG_POSITION_HEADER: &str = "x-nova-log-position";

/// Opens WatchEvents after the resume cursor and dispatches until it ends. Once it
/// is open, every socket gets its stream's current viewer count: also on the first
/// open, since a restarted edge accepts sockets before its event stream is live,
/// and a count that changed in between (the other sockets of a reconnecting crowd
/// joining) would otherwise never reach them.
async fn watch_once(upstream: &Upstream, hub: &Hub, resume: &mut Resume) -> Ended {
    let request = WatchEventsRequest {
        name: String::new(),
        after_cursor: resume.after_cursor(),
    };
    let mut stream = match upstream.events.clone().watch_events(request).await {
        Ok(answer) => {
            // Where a live-only stream starts: the first resume point.
            if let Some(position) = answer
                .metadata()
                .get(LOG_POSITION_HEADER)
                .and_then(|v| v.to_str().ok())
            {
                resume.start_at(position);
            }
            answer.into_inner()
        }
        Err(status) => return Ended::NotOpened(status),
    };
    tracing::info!(events.after_cursor = %resume.after_cursor(), "watching control-plane events");
    refresh_counts(upstream, hub).await;
    loop {
        match stream.message().await {
            Ok(Some(message)) => {
                let Some(event) = message.event else { continue };
                if resume.admit(&event.cursor) {
                    hub.dispatch(&event);
                } else {
                    tracing::debug!(events.cursor = %event.cursor, "duplicate lifecycle event dropped");
                }
            }
            Ok(None) => return Ended::Broke(None),
            Err(status) => return Ended::Broke(Some(status)),
        }
    }
}

/// Sends every socket its stream's current viewer count (one batched call per
/// thousand streams); the queues drop figures a socket already has.
async fn refresh_counts(upstream: &Upstream, hub: &Hub) {
    let streams = hub.streams();
    for batch in streams.chunks(COUNTS_BATCH) {
        let names: Vec<String> = batch
            .iter()
            .map(|id| format!("{}{id}", nova_proto::STREAM_NAME_PREFIX))
            .collect();
        let answer = upstream
            .sessions
            .clone()
            .batch_get_viewer_counts(BatchGetViewerCountsRequest { names })
            .await;
        let counts = match answer {
            Ok(answer) => answer.into_inner().viewer_counts,
            Err(status) => {
                tracing::warn!(grpc.code = ?status.code(), "cannot refresh viewer counts after a reconnect");
                return;
            }
        };
        let now = prost_types::Timestamp::from(std::time::SystemTime::now());
        for count in counts {
            hub.dispatch(&StreamEvent {
                cursor: String::new(),
                name: count.name,
                event_time: Some(now),
                kind: Some(Kind::ViewerCountChanged(ViewerCountChanged {
                    viewer_count: count.viewer_count,
                    peak_viewers: count.peak_viewers,
                })),
            });
        }
    }
}
