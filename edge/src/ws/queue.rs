//! The bounded queue between the hub and one socket.

use std::{collections::VecDeque, sync::Mutex};

use axum::extract::ws::Utf8Bytes;
use tokio::sync::Notify;

/// Frames waiting for one socket.
pub struct SocketQueue {
    /// Pending frames.
    state: Mutex<Pending>,
    /// Wakes the socket's writer.
    notify: Notify,
    /// Lifecycle frames the socket may fall behind before it is closed.
    limit: usize,
}

#[derive(Default)]
struct Pending {
    /// Lifecycle events, in order; never dropped.
    lifecycle: VecDeque<Utf8Bytes>,
    /// The newest viewer count; an older one is replaced (it is stale).
    count: Option<(Utf8Bytes, i64)>,
    /// Highest peak the socket has been told; a count with a lower peak was produced
    /// before something the socket already saw, so it is stale and dropped.
    peak_floor: i64,
    /// The (count, peak) the socket was last given; the same figures again are not
    /// news and are dropped.
    last: Option<(i64, i64)>,
    /// Set when `lifecycle` outgrew the limit: the socket must be closed.
    overflowed: bool,
}

/// What the writer should do next.
#[derive(Debug, PartialEq)]
pub enum Next {
    /// Send these frames, in order.
    Send(Vec<Utf8Bytes>),
    /// The socket fell too far behind: close it.
    TooFarBehind,
}

impl SocketQueue {
    /// Builds an empty queue holding at most `limit` lifecycle frames.
    pub fn new(limit: usize) -> Self {
        Self {
            state: Mutex::default(),
            notify: Notify::new(),
            limit,
        }
    }

    /// Queues a lifecycle frame.
    pub fn push_lifecycle(&self, frame: Utf8Bytes) {
        let mut state = self.lock();
        if state.lifecycle.len() >= self.limit {
            state.overflowed = true;
        } else {
            state.lifecycle.push_back(frame);
        }
        drop(state);
        self.notify.notify_one();
    }

    /// Queues a viewer-count frame carrying `count` and `peak`, replacing an unsent
    /// older one; drops it when it is older than, or the same as, what the socket
    /// already knows.
    pub fn push_count(&self, frame: Utf8Bytes, count: i64, peak: i64) {
        let mut state = self.lock();
        if peak < state.peak_floor || state.last == Some((count, peak)) {
            return;
        }
        state.peak_floor = peak;
        state.last = Some((count, peak));
        state.count = Some((frame, peak));
        drop(state);
        self.notify.notify_one();
    }

    /// Records the figures a snapshot told the socket, dropping a queued count that
    /// is older or the same.
    pub fn snapshot_sent(&self, count: i64, peak: i64) {
        let mut state = self.lock();
        state.peak_floor = state.peak_floor.max(peak);
        if state.count.as_ref().is_some_and(|(_, p)| *p < peak) || state.last == Some((count, peak))
        {
            state.count = None;
        }
        state.last = Some((count, peak));
    }

    /// Waits until something is queued, then takes it all: lifecycle frames first,
    /// then the newest count.
    pub async fn next(&self) -> Next {
        loop {
            {
                let mut state = self.lock();
                if state.overflowed {
                    return Next::TooFarBehind;
                }
                if !state.lifecycle.is_empty() || state.count.is_some() {
                    let mut frames: Vec<Utf8Bytes> = state.lifecycle.drain(..).collect();
                    frames.extend(state.count.take().map(|(frame, _)| frame));
                    return Next::Send(frames);
                }
            }
            self.notify.notified().await;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stale_counts_are_dropped_lifecycle_kept_and_overflow_closes() {
        let q = SocketQueue::new(2);
        q.push_count("c1".into(), 1, 1);
        q.push_lifecycle("started".into());
        q.push_count("c2".into(), 2, 2);
        assert_eq!(
            q.next().await,
            Next::Send(vec!["started".into(), "c2".into()])
        );
        q.push_count("queued".into(), 4, 4);
        q.snapshot_sent(5, 5);
        q.push_count("stale".into(), 3, 3);
        q.push_count("same as the snapshot".into(), 5, 5);
        q.push_count("fresh".into(), 4, 5);
        assert_eq!(q.next().await, Next::Send(vec!["fresh".into()]));
        q.push_lifecycle("a".into());
        q.push_lifecycle("b".into());
        q.push_lifecycle("c".into());
        assert_eq!(q.next().await, Next::TooFarBehind);
    }
}
