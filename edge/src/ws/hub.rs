//! One upstream WatchEvents per edge process, fanned out to the sockets of each stream.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, Weak},
    time::Duration,
};

use axum::extract::ws::Utf8Bytes;
use nova_proto::v1::{WatchEventsRequest, stream_event::Kind};
use nova_runtime::shutdown;
use uuid::Uuid;

use crate::{json, upstream::Upstream, ws::queue::SocketQueue};

/// The sockets of every stream on this edge.
#[derive(Clone, Default)]
pub struct Hub {
    /// Stream id → its sockets' queues (weak: a closed socket drops its queue).
    streams: Arc<Mutex<HashMap<Uuid, Vec<Weak<SocketQueue>>>>>,
}

/// Keeps a socket registered with the hub; deregisters on drop.
pub struct Registration {
    /// The socket's queue.
    pub queue: Arc<SocketQueue>,
    /// The stream.
    stream: Uuid,
    /// The hub.
    hub: Hub,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut streams = self.hub.lock();
        if let Some(queues) = streams.get_mut(&self.stream) {
            queues.retain(|q| {
                q.strong_count() > 0 && !std::ptr::eq(q.as_ptr(), Arc::as_ptr(&self.queue))
            });
            if queues.is_empty() {
                streams.remove(&self.stream);
            }
        }
    }
}

impl Hub {
    /// Registers a socket of `stream` with a queue of `limit` lifecycle frames.
    pub fn register(&self, stream: Uuid, limit: usize) -> Registration {
        let queue = Arc::new(SocketQueue::new(limit));
        self.lock()
            .entry(stream)
            .or_default()
            .push(Arc::downgrade(&queue));
        Registration {
            queue,
            stream,
            hub: self.clone(),
        }
    }

    /// Returns how many sockets are registered.
    pub fn sockets(&self) -> usize {
        self.lock().values().map(Vec::len).sum()
    }

    /// Serialises an event once and queues it for every socket of its stream.
    pub fn dispatch(&self, event: &nova_proto::v1::StreamEvent) {
        let Some(id) = event
            .name
            .strip_prefix(nova_proto::STREAM_NAME_PREFIX)
            .and_then(|id| Uuid::try_parse(id).ok())
        else {
            return;
        };
        let queues: Vec<Arc<SocketQueue>> = match self.lock().get(&id) {
            Some(queues) => queues.iter().filter_map(Weak::upgrade).collect(),
            None => return,
        };
        let Some(value) = json::event(event) else {
            return;
        };
        let frame = Utf8Bytes::from(value.to_string());
        let figures = match &event.kind {
            Some(Kind::ViewerCountChanged(c)) => Some((c.viewer_count, c.peak_viewers)),
            _ => None,
        };
        for queue in queues {
            match figures {
                Some((count, peak)) => queue.push_count(frame.clone(), count, peak),
                None => queue.push_lifecycle(frame.clone()),
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Vec<Weak<SocketQueue>>>> {
        self.streams.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Keeps one WatchEvents open to the control plane until shutdown, dispatching what
/// arrives; after a break it resumes after the last lifecycle cursor it saw, so
/// sockets miss no lifecycle event.
pub async fn run_upstream(upstream: Upstream, hub: Hub, stop: shutdown::Signal) {
    let mut cursor = String::new();
    let stopped = stop.wait();
    tokio::pin!(stopped);
    loop {
        let session = async {
            let mut events = upstream.events.clone();
            let mut stream = events
                .watch_events(WatchEventsRequest {
                    name: String::new(),
                    after_cursor: cursor.clone(),
                })
                .await?
                .into_inner();
            tracing::info!("watching control-plane events");
            while let Some(message) = stream.message().await? {
                let Some(event) = message.event else { continue };
                if !matches!(event.kind, Some(Kind::ViewerCountChanged(_)))
                    && !event.cursor.is_empty()
                {
                    cursor.clone_from(&event.cursor);
                }
                hub.dispatch(&event);
            }
            Ok::<_, tonic::Status>(())
        };
        tokio::select! {
            () = &mut stopped => return,
            result = session => {
                if let Err(status) = result {
                    tracing::warn!(grpc.code = ?status.code(), error = status.message(), "event stream lost; reconnecting");
                }
            }
        }
        tokio::select! {
            () = &mut stopped => return,
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}
