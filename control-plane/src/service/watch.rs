//! WatchEvents: replay the durable log after a cursor, then tail live events, never
//! delivering a lifecycle event twice; a watcher that falls behind the live buffer
//! is caught up from the log.

use tokio::sync::{broadcast::error::RecvError, mpsc};
use uuid::Uuid;

use crate::{
    db::{DbPool, events},
    error::Result,
    service::{
        events::StoredEvent,
        live::{Hub, LiveEvent},
    },
    shutdown,
};

/// Rows read from the log per query while replaying.
const REPLAY_PAGE: i64 = 500;

/// What a watcher asked for.
#[derive(Debug, Clone, Copy)]
pub struct WatchRequest {
    /// Only this stream, or every stream.
    pub stream: Option<Uuid>,
    /// Replay the log after this cursor first; `None` means live only.
    pub after: Option<i64>,
}

/// Event watching over the durable log and this replica's hub; cheap to clone.
#[derive(Clone)]
pub struct Watches {
    /// The durable log.
    pool: DbPool,
    /// Live events of this replica.
    hub: Hub,
}

impl Watches {
    /// Builds the service over the log's pool and the live hub.
    pub fn new(pool: DbPool, hub: Hub) -> Self {
        Self { pool, hub }
    }

    /// Returns the durable log's newest position (0 when it is empty): where a
    /// watcher that wants only what happens from now on starts.
    pub async fn log_position(&self) -> Result<i64> {
        let mut conn = self.pool.get().await?;
        Ok(events::newest(&mut conn).await?)
    }

    /// Returns the task that streams the events `request` asks for into `out` (see
    /// [`run`]); the caller spawns it.
    pub fn watch(
        &self,
        request: WatchRequest,
        out: mpsc::Sender<Result<LiveEvent>>,
        stop: shutdown::Signal,
    ) -> impl Future<Output = ()> + Send + 'static {
        run(self.pool.clone(), self.hub.clone(), request, out, stop)
    }
}

/// Streams events into `out` until the receiver is dropped or shutdown. Errors end
/// the stream and are sent as the last item.
pub async fn run(
    pool: DbPool,
    hub: Hub,
    request: WatchRequest,
    out: mpsc::Sender<Result<LiveEvent>>,
    stop: shutdown::Signal,
) {
    // Subscribe before replaying so nothing falls between the two.
    let mut live = hub.subscribe();
    let mut last = request.after;
    if let Some(cursor) = request.after {
        match replay(&pool, request.stream, cursor, &out).await {
            Ok(Some(newest)) => last = Some(newest),
            Ok(None) => {}
            Err(err) => {
                let _ = out.send(Err(err)).await;
                return;
            }
        }
    }
    let stopped = stop.wait();
    tokio::pin!(stopped);
    loop {
        let received = tokio::select! {
            () = &mut stopped => return,
            () = out.closed() => return,
            received = live.recv() => received,
        };
        let event = match received {
            Ok(event) => event,
            Err(RecvError::Closed) => return,
            Err(RecvError::Lagged(missed)) => {
                tracing::warn!(missed, "watcher fell behind; catching up from the log");
                if let Some(cursor) = last {
                    match replay(&pool, request.stream, cursor, &out).await {
                        Ok(Some(newest)) => last = Some(newest),
                        Ok(None) => {}
                        Err(err) => {
                            let _ = out.send(Err(err)).await;
                            return;
                        }
                    }
                }
                continue;
            }
        };
        if request.stream.is_some_and(|s| s != event.stream_id()) {
            continue;
        }
        if let LiveEvent::Lifecycle(e) = &event {
            if last.is_some_and(|c| e.cursor <= c) {
                continue;
            }
            last = Some(e.cursor);
        }
        if out.send(Ok(event)).await.is_err() {
            return;
        }
    }
}

/// Sends every logged event after `cursor`; returns the newest cursor sent.
async fn replay(
    pool: &DbPool,
    stream: Option<Uuid>,
    mut cursor: i64,
    out: &mpsc::Sender<Result<LiveEvent>>,
) -> Result<Option<i64>> {
    let mut newest = None;
    loop {
        let rows = {
            let mut conn = pool.get().await?;
            events::after(&mut conn, cursor, stream, REPLAY_PAGE).await?
        };
        let full = rows.len() as i64 == REPLAY_PAGE;
        for row in rows {
            cursor = row.id;
            newest = Some(row.id);
            let Some(stored) = StoredEvent::from_row(row) else {
                continue;
            };
            if out.send(Ok(LiveEvent::Lifecycle(stored))).await.is_err() {
                return Ok(newest);
            }
        }
        if !full {
            return Ok(newest);
        }
    }
}
