//! The sockets of each stream on this edge, and the fan-out of one upstream event
//! to them (see `watch` for the upstream WatchEvents itself).

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, Weak,
        atomic::{AtomicU64, Ordering},
    },
};

use axum::extract::ws::Utf8Bytes;
use nova_proto::v1::stream_event::Kind;
use uuid::Uuid;

use crate::{json, ws::queue::SocketQueue};

/// The sockets of every stream on this edge.
#[derive(Clone, Default)]
pub struct Hub {
    /// Stream id → its sockets' queues (weak: a closed socket drops its queue).
    streams: Arc<Mutex<HashMap<Uuid, Vec<Weak<SocketQueue>>>>>,
    /// Moves before every lifecycle event (anything but a count) is queued; see
    /// [`Hub::generation`].
    generation: Arc<AtomicU64>,
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

    /// Returns the lifecycle generation. A stream read after a socket registered,
    /// by anyone, while the generation still has the value the socket reads after
    /// registering, is as fresh for that socket's snapshot as a read of its own:
    /// every lifecycle event dispatched since the read either moved the generation
    /// before the socket registered (so the socket reads another value) or is queued
    /// for the socket (it registered before the event's queues were collected).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Returns the streams that have sockets on this edge.
    pub fn streams(&self) -> Vec<Uuid> {
        self.lock()
            .iter()
            .filter(|(_, queues)| queues.iter().any(|q| q.strong_count() > 0))
            .map(|(id, _)| *id)
            .collect()
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
        let figures = match &event.kind {
            Some(Kind::ViewerCountChanged(c)) => Some((c.viewer_count, c.peak_viewers)),
            _ => None,
        };
        if figures.is_none() {
            // Before the queues are collected: see `generation`.
            self.generation.fetch_add(1, Ordering::SeqCst);
        }
        let queues: Vec<Arc<SocketQueue>> = match self.lock().get(&id) {
            Some(queues) => queues.iter().filter_map(Weak::upgrade).collect(),
            None => return,
        };
        let Some(value) = json::event(event) else {
            return;
        };
        let frame = Utf8Bytes::from(value.to_string());
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

#[cfg(test)]
mod generation_tests {
    use nova_proto::v1::{StreamEvent, StreamStarted, ViewerCountChanged, stream_event::Kind};

    use super::*;

    fn event(id: Uuid, kind: Kind) -> StreamEvent {
        StreamEvent {
            cursor: String::new(),
            name: format!("{}{id}", nova_proto::STREAM_NAME_PREFIX),
            event_time: None,
            kind: Some(kind),
        }
    }

    #[test]
    fn a_lifecycle_event_moves_the_generation_and_a_count_does_not() {
        let hub = Hub::default();
        let id = Uuid::new_v4();
        let registered = hub.register(id, 8);
        let before = hub.generation();
        hub.dispatch(&event(
            id,
            Kind::ViewerCountChanged(ViewerCountChanged {
                viewer_count: 1,
                peak_viewers: 1,
            }),
        ));
        assert_eq!(hub.generation(), before, "a count is not a lifecycle event");
        hub.dispatch(&event(id, Kind::StreamStarted(StreamStarted::default())));
        assert_eq!(
            hub.generation(),
            before + 1,
            "a socket registering now must not reuse a stream read before the start"
        );
        drop(registered);
    }
}

#[cfg(test)]
#[path = "hub_tests.rs"]
mod tests;
