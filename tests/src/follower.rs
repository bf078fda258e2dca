//! A WatchEvents client that behaves as a well-written consumer does across a
//! control-plane crash: when its call breaks it calls again with the cursor of the
//! last durable event it saw, so the events it holds must equal the durable log,
//! each once and in order, however often the control plane went away.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use diesel_async::AsyncPgConnection;
use nova_proto::v1::{StreamEvent, WatchEventsRequest};

use crate::{
    clients,
    watcher::{Lifecycle, lifecycle_of, log},
};

/// What the follower has seen.
#[derive(Default)]
struct Seen {
    /// Every event received, in order, over all calls.
    events: Vec<StreamEvent>,
    /// The cursor of the last durable event ("0" before any).
    cursor: String,
    /// How many times the call broke and was made again.
    breaks: usize,
}

/// A resuming WatchEvents follower of every stream.
pub struct Follower {
    /// What it has seen, shared with the reading task.
    seen: Arc<Mutex<Seen>>,
    /// Reads and resumes until dropped.
    task: tokio::task::JoinHandle<()>,
}

impl Follower {
    /// Opens WatchEvents on `url` from the start of the log (cursor 0) and follows
    /// it, calling again after every break (every 200 ms while the call fails).
    pub async fn start(url: &str, token: &str) -> Self {
        let mut client = clients::events(url, token).await;
        let first = client
            .watch_events(request("0"))
            .await
            .expect("WatchEvents")
            .into_inner();
        let seen = Arc::new(Mutex::new(Seen {
            cursor: "0".into(),
            ..Seen::default()
        }));
        let sink = seen.clone();
        let task = tokio::spawn(async move {
            let mut stream = Some(first);
            loop {
                if let Some(mut call) = stream.take() {
                    while let Ok(Some(r)) = call.message().await {
                        let mut seen = sink.lock().unwrap();
                        if let Some(event) = r.event {
                            if !event.cursor.is_empty() {
                                seen.cursor.clone_from(&event.cursor);
                            }
                            seen.events.push(event);
                        }
                    }
                    sink.lock().unwrap().breaks += 1;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
                let cursor = sink.lock().unwrap().cursor.clone();
                if let Ok(call) = client.watch_events(request(&cursor)).await {
                    stream = Some(call.into_inner());
                }
            }
        });
        Self { seen, task }
    }

    /// Returns the lifecycle events received so far, over every call.
    pub fn lifecycle(&self) -> Vec<Lifecycle> {
        lifecycle_of(&self.seen.lock().unwrap().events)
    }

    /// Returns how many times the call broke and was made again.
    pub fn breaks(&self) -> usize {
        self.seen.lock().unwrap().breaks
    }

    /// Waits (at most `timeout`) until the follower holds exactly the durable log of
    /// lifecycle events, each once and in order; returns the log. Fails at once on an
    /// event the log does not hold in that place (a duplicate or a reordering).
    pub async fn assert_exactly_the_log(
        &self,
        db: &mut AsyncPgConnection,
        timeout: Duration,
    ) -> Vec<Lifecycle> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let log = log(db).await;
            let got = self.lifecycle();
            if got == log {
                return log;
            }
            // The log only grows: what the follower holds must be a prefix of it.
            if got.len() <= log.len() {
                assert_eq!(
                    got,
                    log[..got.len()],
                    "every lifecycle event exactly once, in log order"
                );
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the follower did not catch up with the log within {timeout:?}: \
                 received {got:?}, log {log:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn request(cursor: &str) -> WatchEventsRequest {
    WatchEventsRequest {
        name: String::new(),
        after_cursor: cursor.into(),
    }
}
