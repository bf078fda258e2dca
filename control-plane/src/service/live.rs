//! The live hub of one replica, broadcast to every WatchEvents call: lifecycle events
//! in log order, exactly once, from [`crate::service::follow`] (which reads the
//! durable log after any gap, so a Redis outage loses none), and viewer counts from
//! Redis pub/sub, coalesced per stream (the first change goes out at once, later
//! ones at most once per window with the latest value). Counts are not durable: after
//! a Redis outage they converge as sessions heartbeat or rejoin.

use std::{collections::HashMap, time::Duration};

use chrono::{DateTime, Utc};
use tokio::{
    sync::{broadcast, mpsc, watch},
    time::Instant,
};
use uuid::Uuid;

use crate::{
    db::DbPool,
    redis::{Keys, Target, fanout},
    service::{events::StoredEvent, follow},
    shutdown,
};

/// Something a watcher should see.
#[derive(Debug, Clone, PartialEq)]
pub enum LiveEvent {
    /// A durable lifecycle event.
    Lifecycle(StoredEvent),
    /// A (coalesced) viewer-count change.
    Count {
        /// Stream id.
        stream_id: Uuid,
        /// Live viewers.
        count: i64,
        /// Peak so far.
        peak: i64,
        /// When it was sent.
        at: DateTime<Utc>,
    },
}

impl LiveEvent {
    /// Returns the stream the event is about.
    pub fn stream_id(&self) -> Uuid {
        match self {
            Self::Lifecycle(e) => e.stream_id,
            Self::Count { stream_id, .. } => *stream_id,
        }
    }
}

/// Hands live events to watchers of this replica.
#[derive(Clone)]
pub struct Hub {
    /// Fan-out to every watcher; slow watchers lag and resume from the log.
    tx: broadcast::Sender<LiveEvent>,
    /// This replica's committed events, to the follower.
    local: mpsc::Sender<StoredEvent>,
    /// Whether the pub/sub subscription is up.
    subscribed: watch::Receiver<bool>,
}

/// Capacity of the per-replica broadcast buffer.
const HUB_CAPACITY: usize = 4096;

impl Hub {
    /// Follows the event log, subscribes to Redis (retrying while it is away) and
    /// starts coalescing counts; runs until shutdown, its tasks tracked by `tasks`.
    pub fn start(
        pool: DbPool,
        redis: Target,
        keys: Keys,
        window: Duration,
        (stop, tasks): (shutdown::Signal, &shutdown::Tasks),
    ) -> Self {
        let (tx, _) = broadcast::channel(HUB_CAPACITY);
        let (counts_tx, counts_rx) = mpsc::channel(HUB_CAPACITY);
        let (remote_tx, remote) = mpsc::channel(HUB_CAPACITY);
        let (local, local_rx) = mpsc::channel(HUB_CAPACITY);
        let (connected_tx, connected) = watch::channel(false);
        let subscriber = fanout::Subscriber {
            events: remote_tx,
            counts: counts_tx,
            connected: connected_tx,
        };
        tasks.spawn(fanout::subscribe(redis, keys, subscriber, stop.clone()));
        let subscribed = connected.clone();
        let hints = follow::Hints {
            remote,
            local: local_rx,
            connected,
        };
        tasks.spawn(follow::run(pool, hints, tx.clone(), stop));
        // Ends when the subscriber (its only sender) does.
        tasks.spawn(coalesce(counts_rx, tx.clone(), window));
        Self {
            tx,
            local,
            subscribed,
        }
    }

    /// Returns true while the Redis pub/sub subscription is up (viewer counts from
    /// other replicas arrive only then).
    pub fn subscribed(&self) -> bool {
        *self.subscribed.borrow()
    }

    /// Hands the hub an event this replica committed; never waits (if the hint is
    /// dropped, the follower finds the event in the log).
    pub fn local(&self, event: StoredEvent) {
        let _ = self.local.try_send(event);
    }

    /// Returns a receiver of every live event from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<LiveEvent> {
        self.tx.subscribe()
    }
}

/// Per-stream coalescing state.
struct Window {
    /// When a count last went out.
    last_sent: Instant,
    /// The latest count held back, if any.
    pending: Option<(i64, i64)>,
}

async fn coalesce(
    mut rx: mpsc::Receiver<fanout::Wire<StoredEvent>>,
    tx: broadcast::Sender<LiveEvent>,
    window: Duration,
) {
    let mut windows: HashMap<Uuid, Window> = HashMap::new();
    let mut tick = shutdown::steady((window / 5).max(Duration::from_millis(10)));
    let send_count = |stream_id: Uuid, (count, peak): (i64, i64)| {
        let _ = tx.send(LiveEvent::Count {
            stream_id,
            count,
            peak,
            at: Utc::now(),
        });
    };
    loop {
        tokio::select! {
            message = rx.recv() => match message {
                None => return,
                Some(fanout::Wire::Event(_)) => {}
                Some(fanout::Wire::Count { stream_id, count, peak }) => {
                    let Ok(stream_id) = Uuid::try_parse(&stream_id) else { continue };
                    let now = Instant::now();
                    let w = windows.entry(stream_id).or_insert(Window { last_sent: now - window, pending: None });
                    if now.duration_since(w.last_sent) >= window {
                        w.last_sent = now;
                        w.pending = None;
                        send_count(stream_id, (count, peak));
                    } else {
                        w.pending = Some((count, peak));
                    }
                }
            },
            _ = tick.tick() => {
                let now = Instant::now();
                for (stream_id, w) in windows.iter_mut() {
                    if now.duration_since(w.last_sent) < window {
                        continue;
                    }
                    if let Some(latest) = w.pending.take() {
                        w.last_sent = now;
                        send_count(*stream_id, latest);
                    }
                }
                windows.retain(|_, w| w.pending.is_some() || now.duration_since(w.last_sent) < Duration::from_secs(60));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn counts_are_coalesced_per_stream_latest_wins() {
        let (raw_tx, raw_rx) = mpsc::channel(64);
        let (tx, mut out) = broadcast::channel(64);
        tokio::spawn(coalesce(raw_rx, tx, Duration::from_millis(250)));
        let a = Uuid::now_v7();
        let b = Uuid::now_v7();
        let count = |id: Uuid, n: i64| fanout::Wire::Count {
            stream_id: id.to_string(),
            count: n,
            peak: n,
        };
        for n in 1..=5 {
            raw_tx.send(count(a, n)).await.unwrap();
        }
        raw_tx.send(count(b, 9)).await.unwrap();
        let mut seen = Vec::new();
        for _ in 0..3 {
            match tokio::time::timeout(Duration::from_secs(1), out.recv())
                .await
                .unwrap()
                .unwrap()
            {
                LiveEvent::Count {
                    stream_id, count, ..
                } => seen.push((stream_id == a, count)),
                other => panic!("{other:?}"),
            }
        }
        // a: the first at once, then only the latest (5) after the window; b: at once.
        assert_eq!(seen, vec![(true, 1), (false, 9), (true, 5)]);
        assert!(
            tokio::time::timeout(Duration::from_secs(1), out.recv())
                .await
                .is_err(),
            "nothing more"
        );
    }
}
