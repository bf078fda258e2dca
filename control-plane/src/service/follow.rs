//! The hub's lifecycle feed: follows the durable `stream_events` log from the last
//! position it delivered, so every lifecycle event reaches this replica's watchers
//! exactly once and in log order, whatever happens to Redis.
//!
//! Pub/sub messages and this replica's own commits are hints. An event right after
//! the last delivered position goes out at once; anything else makes the follower
//! read the log after its position. Appends are serialised by an advisory lock held
//! to commit, so when event n is seen every smaller position is committed or never
//! will be: reading the log up to n leaves no hole. The log is also read whenever
//! the subscription comes back, and polled as a safety net (every second while
//! pub/sub is down, every few seconds while it is up).

use std::time::Duration;

use tokio::{
    sync::{broadcast, mpsc, watch},
    time::Instant,
};

use crate::{
    db::{DbPool, events},
    error::Result,
    service::{events::StoredEvent, live::LiveEvent},
    shutdown,
};

/// Poll period while pub/sub is down.
const POLL_DOWN: Duration = Duration::from_secs(1);
/// Poll period while pub/sub is up (a safety net only).
const POLL_UP: Duration = Duration::from_secs(5);
/// Rows read from the log per query.
const PAGE: i64 = 500;

/// What the follower listens to.
pub struct Hints {
    /// Events that came over pub/sub.
    pub remote: mpsc::Receiver<StoredEvent>,
    /// Events this replica committed.
    pub local: mpsc::Receiver<StoredEvent>,
    /// Whether the pub/sub subscription is up.
    pub connected: watch::Receiver<bool>,
}

/// Delivers lifecycle events to `tx` in log order until shutdown.
pub async fn run(
    pool: DbPool,
    mut hints: Hints,
    tx: broadcast::Sender<LiveEvent>,
    stop: shutdown::Signal,
) {
    let stopped = stop.wait();
    tokio::pin!(stopped);
    let mut follower = loop {
        match start_position(&pool).await {
            Ok(last) => break Follower { pool, tx, last },
            Err(err) => {
                tracing::warn!(error = %err, "cannot read the event log position; retrying");
                tokio::select! {
                    () = &mut stopped => return,
                    () = tokio::time::sleep(POLL_DOWN) => {}
                }
            }
        }
    };
    let mut tick = shutdown::steady(POLL_DOWN);
    let mut last_read = Instant::now();
    loop {
        let hint = tokio::select! {
            () = &mut stopped => return,
            Some(event) = hints.remote.recv() => Some(event),
            Some(event) = hints.local.recv() => Some(event),
            Ok(()) = hints.connected.changed() => {
                if !*hints.connected.borrow_and_update() {
                    continue;
                }
                tracing::info!("event subscription up; reading the log for what it missed");
                None
            }
            _ = tick.tick() => {
                let period = if *hints.connected.borrow() { POLL_UP } else { POLL_DOWN };
                if last_read.elapsed() < period {
                    continue;
                }
                None
            }
        };
        match hint {
            Some(event) if event.cursor <= follower.last => {}
            Some(event) if event.cursor == follower.last + 1 => follower.deliver(event),
            _ => {
                follower.catch_up().await;
                last_read = Instant::now();
            }
        }
    }
}

/// Position and output of the follower.
struct Follower {
    /// The log.
    pool: DbPool,
    /// The hub's fan-out.
    tx: broadcast::Sender<LiveEvent>,
    /// The last position delivered.
    last: i64,
}

impl Follower {
    fn deliver(&mut self, event: StoredEvent) {
        self.last = event.cursor;
        let _ = self.tx.send(LiveEvent::Lifecycle(event));
    }

    /// Delivers everything logged after the last position; on a database error,
    /// keeps the position for the next attempt.
    async fn catch_up(&mut self) {
        if let Err(err) = self.read_log().await {
            tracing::warn!(error = %err, after = self.last, "cannot read the event log; retrying");
        }
    }

    async fn read_log(&mut self) -> Result<()> {
        loop {
            let rows = {
                let mut conn = self.pool.get().await?;
                events::after(&mut conn, self.last, None, PAGE).await?
            };
            let full = rows.len() as i64 == PAGE;
            for row in rows {
                let position = row.id;
                match StoredEvent::from_row(row) {
                    Some(event) => self.deliver(event),
                    None => self.last = position,
                }
            }
            if !full {
                return Ok(());
            }
        }
    }
}

async fn start_position(pool: &DbPool) -> Result<i64> {
    let mut conn = pool.get().await?;
    Ok(events::newest(&mut conn).await?)
}
