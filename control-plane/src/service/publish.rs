//! Tells the world what a committed transaction did, without ever making the caller
//! wait for Redis: events go into a bounded in-process queue that one task drains,
//! first to this replica's hub (so its own watchers hear at once, Redis or not),
//! then to Redis pub/sub for the other replicas. A full queue or a Redis failure
//! loses nothing: every hub reads the durable log after any gap. Then the final
//! analytics of each stream the transaction completed are persisted.

use std::time::Duration;

use tokio::sync::mpsc;

use crate::{
    metrics::CpMetrics,
    redis::{Keys, Redis, availability::Availability, fanout},
    service::{
        StreamStatus,
        analytics::Analytics,
        events::{Event, Outbox, StoredEvent},
        live::Hub,
        stream_cache::StreamCache,
    },
    shutdown,
};

/// Batches of events waiting to be published.
const QUEUE: usize = 1024;
/// Longest a publish to Redis may take before the batch is given up.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(2);

/// Publishes committed events; cheap to clone.
#[derive(Clone)]
pub struct Publisher {
    /// The drain task's queue.
    queue: mpsc::Sender<Vec<StoredEvent>>,
    /// Stream durations and dropped publishes.
    metrics: CpMetrics,
    /// Rows this replica's commits change are dropped from it.
    cache: StreamCache,
}

/// What the drain task needs.
pub struct Drain {
    /// Connections.
    pub redis: Redis,
    /// Names.
    pub keys: Keys,
    /// Skip Redis at once while it is away.
    pub availability: Availability,
    /// This replica's hub.
    pub hub: Hub,
    /// Persists a completed stream's figures.
    pub analytics: Analytics,
}

impl Publisher {
    /// Starts the drain task (until shutdown, tracked by `tasks`) and returns the
    /// publisher.
    pub fn start(
        drain: Drain,
        cache: StreamCache,
        metrics: CpMetrics,
        (stop, tasks): (shutdown::Signal, &shutdown::Tasks),
    ) -> Self {
        let (queue, rx) = mpsc::channel(QUEUE);
        tasks.spawn(run(drain, rx, metrics.clone(), stop));
        Self {
            queue,
            metrics,
            cache,
        }
    }

    /// Says that stream `id` changed in a committed transaction that logged no event.
    pub fn changed(&self, id: uuid::Uuid) {
        self.cache.invalidate(id);
    }

    /// Queues what a committed transaction did; never waits. Records completed
    /// streams' durations.
    pub fn publish(&self, out: &Outbox) {
        for event in &out.events {
            self.cache.invalidate(event.stream_id);
        }
        for duration in &out.completed {
            self.metrics.completed(*duration);
        }
        if out.events.is_empty() {
            return;
        }
        if self.queue.try_send(out.events.clone()).is_err() {
            self.metrics.unpublished("queue_full", out.events.len());
            tracing::warn!(
                events = out.events.len(),
                "event publish queue full; watchers will read these events from the log"
            );
        }
    }
}

async fn run(
    drain: Drain,
    mut rx: mpsc::Receiver<Vec<StoredEvent>>,
    metrics: CpMetrics,
    stop: shutdown::Signal,
) {
    let stopped = stop.wait();
    tokio::pin!(stopped);
    loop {
        let events = tokio::select! {
            () = &mut stopped => return,
            events = rx.recv() => match events {
                Some(events) => events,
                None => return,
            },
        };
        for event in &events {
            drain.hub.local(event.clone());
        }
        publish_to_redis(&drain, &metrics, &events).await;
        for event in events.iter().filter(|e| completes(&e.event)) {
            let persisted = tokio::time::timeout(
                PUBLISH_TIMEOUT,
                drain.analytics.persist_completed(event.stream_id),
            )
            .await;
            let failure = match persisted {
                Ok(Ok(())) => continue,
                Ok(Err(err)) => err.to_string(),
                Err(_) => "timed out".to_owned(),
            };
            tracing::warn!(
                stream.id = %event.stream_id,
                error = %failure,
                "could not persist a completed stream's analytics; the sampler will"
            );
        }
    }
}

/// Tells whether `event` completes its stream.
fn completes(event: &Event) -> bool {
    matches!(event, Event::StreamEnded { status, .. } if status == StreamStatus::Completed.as_db())
}

/// Publishes `events` to the other replicas through Redis, unless it is away.
async fn publish_to_redis(drain: &Drain, metrics: &CpMetrics, events: &[StoredEvent]) {
    if !drain.availability.is_up() {
        metrics.unpublished("redis_unavailable", events.len());
        return;
    }
    let published = tokio::time::timeout(
        PUBLISH_TIMEOUT,
        fanout::publish_events(&drain.redis, &drain.keys, events),
    )
    .await
    .unwrap_or_else(|_| Err(anyhow::anyhow!("timed out")));
    if let Err(err) = published {
        metrics.unpublished("redis_error", events.len());
        tracing::warn!(
            error = %err,
            events = events.len(),
            "could not publish events to Redis; other replicas will read them from the log"
        );
    }
}
