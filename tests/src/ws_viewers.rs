//! WebSocket viewers that behave as the player page does: each holds a socket to an
//! edge and, when it drops, connects again (every 200 ms until the edge answers).
//! What they were shown (the last viewer count, lifecycle frames) is kept for the
//! test to read.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use futures::StreamExt;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

use crate::wait;

/// What one viewer has been shown.
#[derive(Debug, Default, Clone)]
pub struct Shown {
    /// The last viewer count (from a snapshot or a `viewer_count_changed`) on the
    /// open socket; `None` while it has none.
    pub count: Option<i64>,
    /// How many sockets it opened.
    pub connects: usize,
    /// `stream_started` and `stream_ended` frames, as `type status reason resumed`.
    pub lifecycle: Vec<String>,
}

/// A few reconnecting viewers of one stream.
pub struct WsViewers {
    /// Each viewer's view, shared with its task.
    shown: Vec<Arc<Mutex<Shown>>>,
    /// The viewers' tasks.
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl WsViewers {
    /// Connects `n` viewers to stream `id` on the edge at `base` (`http://…`); returns
    /// once each has its first snapshot (at most 10 s).
    pub async fn connect(base: &str, id: &str, n: usize) -> Self {
        let url = format!(
            "{}/api/v1/streams/{id}/ws",
            base.replacen("http://", "ws://", 1)
        );
        let mut shown = Vec::new();
        let mut tasks = Vec::new();
        for _ in 0..n {
            let view = Arc::new(Mutex::new(Shown::default()));
            tasks.push(tokio::spawn(watch(url.clone(), view.clone())));
            shown.push(view);
        }
        let this = Self { shown, tasks };
        this.until(
            "every viewer's first snapshot",
            Duration::from_secs(10),
            |s| s.count.is_some(),
        )
        .await;
        this
    }

    /// Returns what each viewer has been shown.
    pub fn shown(&self) -> Vec<Shown> {
        self.shown
            .iter()
            .map(|s| s.lock().unwrap().clone())
            .collect()
    }

    /// Waits (at most `timeout`) until every viewer was last shown `count`.
    pub async fn until_count(&self, count: i64, timeout: Duration) {
        self.until(
            &format!("every socket to show viewer count {count}"),
            timeout,
            |s| s.count == Some(count),
        )
        .await;
    }

    async fn until(&self, what: &str, timeout: Duration, ok: impl Fn(&Shown) -> bool) {
        wait::until(what, timeout, || {
            let shown = self.shown();
            let done = shown.iter().all(&ok);
            async move { if done { Ok(()) } else { Err(shown) } }
        })
        .await;
    }
}

impl Drop for WsViewers {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// One viewer: connect, read frames into `view`, connect again when the socket ends.
async fn watch(url: String, view: Arc<Mutex<Shown>>) {
    loop {
        if let Ok((mut socket, _)) = tokio_tungstenite::connect_async_with_config(
            url.as_str(),
            Some(crate::edge::client_config()),
            true,
        )
        .await
        {
            view.lock().unwrap().connects += 1;
            while let Some(Ok(message)) = socket.next().await {
                let Message::Text(text) = message else {
                    continue;
                };
                let Ok(frame) = serde_json::from_str::<Value>(&text) else {
                    continue;
                };
                record(&mut view.lock().unwrap(), &frame);
            }
            // What a dead socket showed is no longer shown.
            view.lock().unwrap().count = None;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn record(view: &mut Shown, frame: &Value) {
    match frame["type"].as_str().unwrap_or_default() {
        "snapshot" | "viewer_count_changed" => view.count = frame["viewer_count"].as_i64(),
        kind @ ("stream_started" | "stream_ended") => view.lifecycle.push(format!(
            "{kind} {} {} {}",
            frame["status"].as_str().unwrap_or_default(),
            frame["reason"].as_str().unwrap_or_default(),
            frame["resumed"]
        )),
        _ => {}
    }
}
