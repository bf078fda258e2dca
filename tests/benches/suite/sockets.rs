//! A crowd of WebSocket viewers for the benchmarks: every socket is read from the
//! moment its handshake completes (so it answers the edge's pings, as a browser
//! does), and each keeps a log of what it saw and how it ended, so a socket that
//! misses an update can be explained instead of counted.

use std::{
    net::{Ipv4Addr, SocketAddr},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use futures::{StreamExt, stream};
use tokio::{net::TcpSocket, sync::mpsc, task::JoinHandle};
use tokio_tungstenite::tungstenite::Message;

/// A viewer count a socket received.
#[derive(Debug, Clone, Copy)]
pub struct Seen {
    /// Which socket.
    pub index: usize,
    /// The count it carried.
    pub count: i64,
    /// When it was read.
    pub at: Instant,
}

/// What one socket saw.
#[derive(Debug, Default)]
pub struct Log {
    /// `(type, viewer_count, peak_viewers)` of every frame carrying a count, in order.
    pub counts: Vec<(String, i64, i64)>,
    /// How it ended, once it did.
    pub ended: Option<String>,
}

/// Open sockets and their readers.
pub struct Crowd {
    /// Each socket's log.
    pub logs: Vec<Arc<Mutex<Log>>>,
    /// Every count any socket received, in arrival order.
    pub seen: mpsc::UnboundedReceiver<Seen>,
    /// Frames received by all sockets.
    pub frames: Arc<AtomicU64>,
    /// Handshakes that failed (and why).
    pub failed: Vec<String>,
    /// How long opening took.
    pub took: Duration,
    /// The readers.
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Crowd {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Returns the `host:port` of a `ws://host:port/...` URL.
fn address(url: &str) -> SocketAddr {
    let rest = url.strip_prefix("ws://").expect("a ws:// URL");
    rest.split('/')
        .next()
        .and_then(|a| a.parse().ok())
        .expect("ws://<ip>:<port>/…")
}

/// Opens `n` sockets to `url`, `concurrency` handshakes at a time, round-robin over
/// the `sources` addresses (empty: the system picks), each read from its handshake on.
pub async fn open(url: &str, n: usize, concurrency: usize, sources: &[Ipv4Addr]) -> Crowd {
    let (tx, seen) = mpsc::unbounded_channel();
    let frames = Arc::new(AtomicU64::new(0));
    let logs: Vec<Arc<Mutex<Log>>> = (0..n).map(|_| Arc::default()).collect();
    let started = Instant::now();
    let addr = address(url);
    let results: Vec<Result<JoinHandle<()>, String>> = stream::iter(0..n)
        .map(|index| {
            let (tx, frames, log) = (tx.clone(), frames.clone(), logs[index].clone());
            let source = (!sources.is_empty()).then(|| sources[index % sources.len()]);
            let failed_log = log.clone();
            let opening = async move {
                let socket = TcpSocket::new_v4().map_err(|e| e.to_string())?;
                if let Some(ip) = source {
                    socket
                        .bind(SocketAddr::from((ip, 0)))
                        .map_err(|e| format!("bind {ip}: {e}"))?;
                }
                let tcp = tokio::time::timeout(Duration::from_secs(30), socket.connect(addr))
                    .await
                    .map_err(|_| "TCP connect timed out (30 s)".to_owned())?
                    .map_err(|e| format!("connect: {e}"))?;
                let _ = tcp.set_nodelay(true);
                let (ws, _) = tokio::time::timeout(
                    Duration::from_secs(30),
                    tokio_tungstenite::client_async_with_config(
                        url,
                        tcp,
                        Some(nova_tests::edge::client_config()),
                    ),
                )
                .await
                .map_err(|_| "handshake timed out (30 s)".to_owned())?
                .map_err(|e| format!("handshake: {e}"))?;
                Ok(tokio::spawn(read(index, ws, tx, frames, log)))
            };
            async move {
                let opened = opening.await;
                if let Err(err) = &opened {
                    failed_log.lock().unwrap_or_else(|p| p.into_inner()).ended =
                        Some(format!("{HANDSHAKE_FAILED}{err}"));
                }
                opened
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let took = started.elapsed();
    let mut tasks = Vec::with_capacity(n);
    let mut failed = Vec::new();
    for result in results {
        match result {
            Ok(task) => tasks.push(task),
            Err(err) => failed.push(err),
        }
    }
    Crowd {
        logs,
        seen,
        frames,
        failed,
        took,
        tasks,
    }
}

/// How the log of a socket that never opened ends.
const HANDSHAKE_FAILED: &str = "handshake failed: ";

type Ws = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// The fields of a frame the crowd looks at (the rest is skipped unparsed).
#[derive(serde::Deserialize)]
struct CountFrame<'a> {
    /// `snapshot`, `viewer_count_changed`, …
    #[serde(rename = "type", borrow)]
    kind: Option<&'a str>,
    /// Present on frames carrying a count.
    viewer_count: Option<i64>,
    /// Present with it.
    peak_viewers: Option<i64>,
}

async fn read(
    index: usize,
    mut ws: Ws,
    tx: mpsc::UnboundedSender<Seen>,
    frames: Arc<AtomicU64>,
    log: Arc<Mutex<Log>>,
) {
    let ended = loop {
        let next = ws.next().await;
        // Delivered when read: the client's own parsing is not the edge's delay.
        let at = Instant::now();
        match next {
            Some(Ok(Message::Text(text))) => {
                frames.fetch_add(1, Ordering::Relaxed);
                let Ok(frame) = serde_json::from_str::<CountFrame<'_>>(&text) else {
                    continue;
                };
                if let Some(count) = frame.viewer_count {
                    log.lock().unwrap_or_else(|p| p.into_inner()).counts.push((
                        frame.kind.unwrap_or("?").to_owned(),
                        count,
                        frame.peak_viewers.unwrap_or(-1),
                    ));
                    let _ = tx.send(Seen { index, count, at });
                }
            }
            Some(Ok(Message::Close(frame))) => {
                break match frame {
                    Some(f) => format!("closed by the edge: {} {}", u16::from(f.code), f.reason),
                    None => "closed by the edge without a code".to_owned(),
                };
            }
            Some(Ok(_)) => {}
            Some(Err(err)) => break format!("error: {err}"),
            None => break "dropped without a close frame".to_owned(),
        }
    };
    log.lock().unwrap_or_else(|p| p.into_inner()).ended = Some(ended);
}

impl Crowd {
    /// Returns how many sockets are open.
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    /// Returns how many sockets the edge closed or dropped.
    pub fn ended(&self) -> usize {
        self.logs
            .iter()
            .filter(|l| l.lock().unwrap_or_else(|p| p.into_inner()).ended.is_some())
            .count()
    }

    /// Waits (at most `limit`) until every opened socket received a count of at least
    /// `count`; returns, per socket, when it first did (`None`: never, within the limit).
    pub async fn until_all(&mut self, count: i64, limit: Duration) -> Vec<Option<Instant>> {
        let opened = self.logs.len();
        let mut first: Vec<Option<Instant>> = vec![None; opened];
        // A socket whose handshake failed is not waited for.
        let mut left = self.tasks.len();
        let deadline = tokio::time::Instant::now() + limit;
        while left > 0 {
            match tokio::time::timeout_at(deadline, self.seen.recv()).await {
                Ok(Some(seen)) => {
                    if seen.count >= count && first[seen.index].is_none() {
                        first[seen.index] = Some(seen.at);
                        left -= 1;
                    }
                }
                Ok(None) | Err(_) => break,
            }
        }
        first
    }

    /// Returns the opened sockets that have no instant in `seen`.
    pub fn missing(&self, seen: &[Option<Instant>]) -> Vec<usize> {
        seen.iter()
            .enumerate()
            .filter(|(i, s)| {
                s.is_none()
                    && !self.logs[*i]
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .ended
                        .as_deref()
                        .is_some_and(|e| e.starts_with(HANDSHAKE_FAILED))
            })
            .map(|(i, _)| i)
            .collect()
    }

    /// Returns a line per socket in `missing` saying how it ended and the last counts
    /// it saw.
    pub fn explain(&self, missing: &[usize]) -> Vec<String> {
        missing
            .iter()
            .map(|i| {
                let log = self.logs[*i].lock().unwrap_or_else(|p| p.into_inner());
                let tail: Vec<String> = log
                    .counts
                    .iter()
                    .rev()
                    .take(6)
                    .rev()
                    .map(|(kind, count, peak)| format!("{kind} {count}/{peak}"))
                    .collect();
                format!(
                    "socket {i}: {}; {} counts seen, last: [{}]",
                    log.ended.as_deref().unwrap_or("still open"),
                    log.counts.len(),
                    tail.join(", ")
                )
            })
            .collect()
    }
}

/// Returns `nova_streaming_websocket_failures_total` of the edge at `base`, by reason.
pub async fn failures(base: &str) -> String {
    match nova_tests::http::get(&format!("{base}/metrics")).await {
        Ok(answer) => answer
            .text()
            .lines()
            .filter(|l| l.starts_with("nova_streaming_websocket_failures") && !l.ends_with(" 0"))
            .map(|l| l.replace("nova_streaming_websocket_failures_total", ""))
            .collect::<Vec<_>>()
            .join(" "),
        Err(err) => format!("(no /metrics: {err})"),
    }
}

/// The client-process mode (`--ws-clients <url> <n> <source ip>`): opens `n` sockets
/// from `source`, prints one JSON line (opened, failed, first error), then keeps them
/// read until stdin closes, and prints how many are still open.
pub async fn client_process(url: String, n: usize, source: Ipv4Addr) {
    let crowd = open(&url, n, 128, &[source]).await;
    println!(
        "{}",
        serde_json::json!({
            "opened": crowd.len(),
            "failed": crowd.failed.len(),
            "first_error": crowd.failed.first(),
            "took_s": crowd.took.as_secs_f64(),
        })
    );
    // Each line on stdin asks for a report; EOF (the parent dropping us) ends.
    let (tx, mut asked) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            if line.is_err() || tx.send(()).is_err() {
                break;
            }
        }
    });
    while asked.recv().await.is_some() {
        println!(
            "{}",
            serde_json::json!({"open": crowd.len() - crowd.ended()})
        );
    }
}
