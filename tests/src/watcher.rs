//! A WatchEvents client that records everything it receives from one call held open
//! for the whole test, and the durable log to compare it with.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use diesel::sql_types::Text;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use nova_proto::v1::{StreamEvent, WatchEventsRequest, stream_event::Kind};

use crate::{clients, wait};

/// A lifecycle event as `(cursor, kind, stream name)`.
pub type Lifecycle = (String, String, String);

/// One open WatchEvents call and what it received.
pub struct Watcher {
    /// Every event received, in order.
    received: Arc<Mutex<Vec<StreamEvent>>>,
    /// How the call ended, if it did.
    ended: Arc<Mutex<Option<String>>>,
    /// The reading task.
    task: tokio::task::JoinHandle<()>,
}

impl Watcher {
    /// Opens WatchEvents on `url` from the start of the log (cursor 0), so nothing
    /// between the call and its subscription can be missed.
    pub async fn start(url: &str, token: &str) -> Self {
        let mut client = clients::events(url, token).await;
        let mut stream = client
            .watch_events(WatchEventsRequest {
                name: String::new(),
                after_cursor: "0".into(),
            })
            .await
            .expect("WatchEvents")
            .into_inner();
        let received = Arc::new(Mutex::new(Vec::new()));
        let ended = Arc::new(Mutex::new(None));
        let (sink, end) = (received.clone(), ended.clone());
        let task = tokio::spawn(async move {
            loop {
                match stream.message().await {
                    Ok(Some(r)) => sink.lock().unwrap().extend(r.event),
                    other => {
                        *end.lock().unwrap() = Some(format!("{other:?}"));
                        return;
                    }
                }
            }
        });
        Self {
            received,
            ended,
            task,
        }
    }

    /// Returns the lifecycle events received so far.
    pub fn lifecycle(&self) -> Vec<Lifecycle> {
        if let Some(how) = self.ended.lock().unwrap().as_ref() {
            panic!("the WatchEvents call ended: {how}");
        }
        lifecycle_of(&self.received.lock().unwrap())
    }

    /// Returns the viewer counts received for `name`, in order.
    pub fn counts(&self, name: &str) -> Vec<i64> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.name == name)
            .filter_map(|e| match e.kind.as_ref()? {
                Kind::ViewerCountChanged(c) => Some(c.viewer_count),
                _ => None,
            })
            .collect()
    }

    /// Waits (at most `timeout`) until the watcher has received as many lifecycle
    /// events as the log holds, then asserts it received exactly the log: every
    /// event once, in order.
    pub async fn assert_exactly_the_log(&self, db: &mut AsyncPgConnection, timeout: Duration) {
        let log = log(db).await;
        let received = wait::until(
            "the watcher to receive every logged lifecycle event",
            timeout,
            || {
                let got = self.lifecycle();
                let ready = got.len() >= log.len();
                async move { if ready { Ok(got) } else { Err(got) } }
            },
        )
        .await;
        assert_eq!(
            received, log,
            "every lifecycle event exactly once, in log order"
        );
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Returns the lifecycle events among `events` (viewer counts left out).
pub fn lifecycle_of(events: &[StreamEvent]) -> Vec<Lifecycle> {
    events
        .iter()
        .filter_map(|e| {
            let kind = match e.kind.as_ref()? {
                Kind::StreamStarted(_) => "stream_started",
                Kind::StreamEnded(_) => "stream_ended",
                Kind::QualityChanged(_) => "quality_changed",
                Kind::AssetReady(_) => "asset_ready",
                Kind::AssetErrored(_) => "asset_errored",
                Kind::ViewerCountChanged(_) => return None,
            };
            Some((e.cursor.clone(), kind.to_owned(), e.name.clone()))
        })
        .collect()
}

#[derive(diesel::QueryableByName)]
struct Row {
    #[diesel(sql_type = Text)]
    cursor: String,
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = Text)]
    name: String,
}

/// Returns the whole durable log of lifecycle events, oldest first.
pub async fn log(db: &mut AsyncPgConnection) -> Vec<Lifecycle> {
    diesel::sql_query(format!(
        "SELECT id::text AS cursor, kind, 'streams/' || stream_id::text AS name \
         FROM stream_events WHERE kind IN {} ORDER BY id",
        crate::events::WATCHED_KINDS
    ))
    .load::<Row>(db)
    .await
    .expect("read stream_events")
    .into_iter()
    .map(|r| (r.cursor, r.kind, r.name))
    .collect()
}
