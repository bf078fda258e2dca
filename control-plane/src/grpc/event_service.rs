//! `nova.streaming.v1.EventService` over [`crate::service::watch`].

use std::pin::Pin;

use futures::Stream;
use nova_proto::v1::{
    AssetErrored, AssetReady, QualityChanged, StreamEnded, StreamEvent, StreamStarted,
    ViewerCountChanged, WatchEventsRequest, WatchEventsResponse,
    event_service_server::EventService, stream_event::Kind,
};
use tokio::sync::mpsc;
use tokio_stream::{StreamExt, wrappers::ReceiverStream};
use tonic::{Request, Response, Status};

use crate::{
    error::Error,
    grpc::{
        convert::{playback_to_proto, timestamp},
        name::{parse_stream_name, stream_name},
    },
    service::{
        StreamStatus,
        events::Event,
        live::LiveEvent,
        watch::{WatchRequest, Watches},
    },
    shutdown,
    state::AppState,
};

/// Events buffered per watcher between the watch task and gRPC.
const WATCHER_BUFFER: usize = 256;

/// gRPC face of event watching.
pub struct EventApi {
    /// The durable log and the live events of this replica.
    watches: Watches,
    /// Ends watches on shutdown.
    stop: shutdown::Signal,
    /// Tracks each watch's task, so shutdown joins it.
    tasks: shutdown::Tasks,
}

impl EventApi {
    /// Builds the service from the shared state.
    pub fn new(state: &AppState, stop: shutdown::Signal) -> Self {
        Self {
            watches: state.watches().clone(),
            stop,
            tasks: state.tasks().clone(),
        }
    }
}

/// The response stream of WatchEvents.
pub type EventStream = Pin<Box<dyn Stream<Item = Result<WatchEventsResponse, Status>> + Send>>;

#[tonic::async_trait]
impl EventService for EventApi {
    async fn watch_events(
        &self,
        request: Request<WatchEventsRequest>,
    ) -> Result<Response<EventStream>, Status> {
        let req = request.into_inner();
        let stream = match req.name.as_str() {
            "" => None,
            name => Some(parse_stream_name("name", name)?),
        };
        let after = match req.after_cursor.as_str() {
            "" => None,
            raw => Some(raw.parse::<i64>().ok().filter(|c| *c >= 0).ok_or_else(|| {
                Error::invalid(
                    "after_cursor",
                    "must be a cursor from an earlier event, or 0",
                )
            })?),
        };
        // A live-only watcher starts after the log's newest position, so it is told
        // where it starts (LOG_POSITION_HEADER) and can resume exactly after a break
        // even before its first lifecycle event.
        let after = match after {
            Some(cursor) => cursor,
            None => self.watches.log_position().await?,
        };
        let (tx, rx) = mpsc::channel(WATCHER_BUFFER);
        self.tasks.spawn(self.watches.watch(
            WatchRequest {
                stream,
                after: Some(after),
            },
            tx,
            self.stop.clone(),
        ));
        let out = ReceiverStream::new(rx).map(|item| {
            item.map(|event| WatchEventsResponse {
                event: Some(event_to_proto(&event)),
            })
            .map_err(Status::from)
        });
        let mut response = Response::new(Box::pin(out) as EventStream);
        if let Ok(value) = after.to_string().parse() {
            response.metadata_mut().insert(LOG_POSITION_HEADER, value);
        }
        Ok(response)
    }
}

/// Response metadata of WatchEvents: the cursor the stream starts after (the request's
/// `after_cursor`, or the log's newest position for a live-only watcher). Sent back as
/// `after_cursor`, it resumes without losing an event even if none was delivered yet.
pub const LOG_POSITION_HEADER: &str = "x-nova-log-position";

/// Converts a live event to its proto.
pub fn event_to_proto(event: &LiveEvent) -> StreamEvent {
    match event {
        LiveEvent::Count {
            stream_id,
            count,
            peak,
            at,
        } => StreamEvent {
            cursor: String::new(),
            name: stream_name(*stream_id),
            event_time: Some(timestamp(*at)),
            kind: Some(Kind::ViewerCountChanged(ViewerCountChanged {
                viewer_count: *count,
                peak_viewers: *peak,
            })),
        },
        LiveEvent::Lifecycle(stored) => StreamEvent {
            cursor: stored.cursor.to_string(),
            name: stream_name(stored.stream_id),
            event_time: Some(timestamp(stored.at)),
            kind: Some(match &stored.event {
                Event::StreamStarted { resumed, playback } => Kind::StreamStarted(StreamStarted {
                    resumed: *resumed,
                    playback: Some(playback_to_proto(playback)),
                }),
                Event::StreamEnded { status, reason } => Kind::StreamEnded(StreamEnded {
                    status: super::convert::status_to_proto(StreamStatus::from_db(status)).into(),
                    reason: reason.clone(),
                }),
                Event::QualityChanged { renditions } => Kind::QualityChanged(QualityChanged {
                    renditions: renditions
                        .iter()
                        .map(super::convert::rendition_to_proto)
                        .collect(),
                }),
                Event::AssetReady {
                    asset_id,
                    duration_ms,
                    size_bytes,
                } => Kind::AssetReady(AssetReady {
                    asset: super::name::asset_name(*asset_id),
                    duration: Some(super::convert::duration_ms(*duration_ms)),
                    size_bytes: *size_bytes,
                }),
                Event::AssetErrored { asset_id, reason } => Kind::AssetErrored(AssetErrored {
                    asset: super::name::asset_name(*asset_id),
                    reason: reason.clone(),
                }),
            }),
        },
    }
}
