//! A short-lived cache of streams for the hot reads (GetStream, JoinSession,
//! viewer figures), so a crowd reading one live stream costs PostgreSQL one query per
//! stream per interval instead of one per call.
//!
//! Freshness: this replica's own changes are dropped from the cache right after they
//! commit (the publisher calls [`StreamCache::invalidate`]), so a caller reads its
//! own writes. Lifecycle changes made by other replicas arrive through the event log
//! follower ([`StreamCache::follow`]); their other changes (title, cap, policy, key
//! issue time, ingest health) are at most `ttl` old. A read that raced a change never
//! stores the row it read: every invalidation moves an epoch, and a row read before
//! the move is not cached.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use tokio::{sync::broadcast, time::Instant};
use uuid::Uuid;

use crate::{
    db::{DbPool, streams},
    error::Result,
    service::{
        Stream,
        live::{Hub, LiveEvent},
    },
    shutdown,
};

/// Most rows held; past it, expired rows go, and if none had expired, all.
const MAX_ROWS: usize = 10_000;

/// Streams by id, each for at most `ttl`; cheap to clone.
#[derive(Clone)]
pub struct StreamCache {
    /// How long a row is reused; zero disables the cache.
    ttl: Duration,
    /// The rows and the epoch.
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Id → (when it was read, the row).
    rows: Mutex<HashMap<Uuid, (Instant, Arc<Stream>)>>,
    /// Moves on every invalidation.
    epoch: AtomicU64,
}

impl StreamCache {
    /// Builds a cache reusing rows for `ttl` (zero: never).
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            inner: Arc::default(),
        }
    }

    /// Returns stream `id`, from the cache while fresh, else from the database.
    pub async fn get(&self, pool: &DbPool, id: Uuid) -> Result<Option<Arc<Stream>>> {
        if let Some(row) = self.fresh(id) {
            return Ok(Some(row));
        }
        let epoch = self.inner.epoch.load(Ordering::Acquire);
        let row = {
            let mut conn = pool.get().await?;
            streams::find(&mut conn, id).await?
        };
        Ok(row.map(|row| self.store(id, Stream::from_row(row), epoch)))
    }

    /// Forgets stream `id` (call after a change to it commits).
    pub fn invalidate(&self, id: Uuid) {
        if self.ttl.is_zero() {
            return;
        }
        self.inner.epoch.fetch_add(1, Ordering::AcqRel);
        self.rows().remove(&id);
    }

    /// Forgets every row.
    pub fn clear(&self) {
        self.inner.epoch.fetch_add(1, Ordering::AcqRel);
        self.rows().clear();
    }

    /// Forgets the stream of every lifecycle event the hub delivers (other replicas'
    /// changes included) until shutdown; forgets everything if it falls behind.
    pub async fn follow(self, hub: Hub, stop: shutdown::Signal) {
        if self.ttl.is_zero() {
            return;
        }
        let mut events = hub.subscribe();
        let stopped = stop.wait();
        tokio::pin!(stopped);
        loop {
            tokio::select! {
                () = &mut stopped => return,
                event = events.recv() => match event {
                    Ok(LiveEvent::Lifecycle(event)) => self.invalidate(event.stream_id),
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(_)) => self.clear(),
                    Err(broadcast::error::RecvError::Closed) => return,
                },
            }
        }
    }

    fn fresh(&self, id: Uuid) -> Option<Arc<Stream>> {
        if self.ttl.is_zero() {
            return None;
        }
        let rows = self.rows();
        let (at, row) = rows.get(&id)?;
        (at.elapsed() < self.ttl).then(|| row.clone())
    }

    /// Caches `row` unless an invalidation happened since `epoch`; returns it.
    fn store(&self, id: Uuid, row: Stream, epoch: u64) -> Arc<Stream> {
        let row = Arc::new(row);
        if self.ttl.is_zero() {
            return row;
        }
        let mut rows = self.rows();
        // Checked under the lock that `invalidate` removes under, after bumping.
        if self.inner.epoch.load(Ordering::Acquire) != epoch {
            return row;
        }
        if rows.len() >= MAX_ROWS {
            let ttl = self.ttl;
            rows.retain(|_, (at, _)| at.elapsed() < ttl);
            if rows.len() >= MAX_ROWS {
                rows.clear();
            }
        }
        rows.insert(id, (Instant::now(), row.clone()));
        row
    }

    fn rows(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, (Instant, Arc<Stream>)>> {
        self.inner.rows.lock().unwrap_or_else(|p| p.into_inner())
    }
}
