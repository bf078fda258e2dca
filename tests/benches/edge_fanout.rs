//! WebSocket fan-out benchmark of the edge, each figure side by side with a baseline
//! measured in the same run:
//!
//! - memory per open socket: the `nova-edge` binary (every socket a viewer session,
//!   small explicit buffers) against a bare axum WebSocket server with the default
//!   buffers sending a frame of the same size;
//! - event latency: from a viewer joining (a gRPC `JoinSession`) until every socket
//!   has the new count, with `NOVA_BENCH_SOCKETS` sockets open against one socket.
//!
//! Run with `make bench` (it starts PostgreSQL and Redis itself). It prints figures and
//! asserts nothing about speed.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    missing_docs
)]

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use futures::{StreamExt, stream};
use nova_proto::v1::{
    CreateStreamRequest, GetViewerCountRequest, JoinSessionRequest, LeaveSessionRequest, Stream,
    ViewerKind,
};
use nova_tests::{TestContext, clients, edge};
use serde_json::Value;
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    net::TcpStream,
    sync::mpsc,
};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, tungstenite::Message};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How many sockets the big runs open (`NOVA_BENCH_SOCKETS`, default 2000).
fn sockets() -> usize {
    std::env::var("NOVA_BENCH_SOCKETS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000)
}

/// Count changes timed per latency run.
const ROUNDS: usize = 50;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    if let Some(bytes) = args
        .iter()
        .position(|a| a == "--baseline-server")
        .and_then(|i| args.get(i + 1))
        .and_then(|b| b.parse().ok())
    {
        runtime.block_on(baseline_server(bytes));
    } else if args.iter().any(|a| a == "--bench") {
        runtime.block_on(bench());
    }
}

async fn bench() {
    let n = sockets();
    let ctx = TestContext::start().await;
    let mut streams = clients::streams(&ctx.url(), Some(&ctx.token), Some("bench")).await;
    let stream = streams
        .create_stream(CreateStreamRequest {
            stream: Some(Stream {
                title: "bench".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .stream
        .unwrap();
    let cap = (2 * n + 100).to_string();
    // Every socket comes from 127.0.0.1: lift the per-client caps meant for the public.
    let (edge_child, base) = edge::spawn_process_with(
        &ctx,
        "bench-edge",
        &[
            ("NOVA_WS_MAX_SOCKETS", cap.clone()),
            ("NOVA_WS_MAX_SOCKETS_PER_IP", cap),
            ("NOVA_WS_OPENS_PER_MINUTE", "10000000".to_owned()),
        ],
    );
    let ws_url = format!(
        "{}/api/v1/streams/{}/ws",
        base.replacen("http://", "ws://", 1),
        stream.stream_id
    );

    println!("edge WebSocket fan-out, {n} sockets, {ROUNDS} count changes per latency run\n");

    // Memory per socket; the baseline sends a frame as large as the edge's snapshot.
    let snapshot = {
        let (mut socket, _) = tokio_tungstenite::connect_async(&ws_url).await.unwrap();
        let first = next_text(&mut socket).await.expect("a snapshot");
        let _ = socket.close(None).await;
        first.len()
    };
    let (baseline_child, baseline_url) = spawn_baseline(snapshot).await;
    let (baseline_kib, baseline_frame) =
        memory_per_socket(baseline_child.id().unwrap(), &baseline_url, n).await;
    let (edge_kib, edge_frame) = memory_per_socket(edge_child.id().unwrap(), &ws_url, n).await;
    println!("memory per open socket (RSS growth / sockets)");
    println!(
        "  {:<48} {:>8.1} KiB  (first frame {baseline_frame} B)",
        "baseline: axum WebSocket, default buffers", baseline_kib
    );
    println!(
        "  {:<48} {:>8.1} KiB  (first frame {edge_frame} B)\n",
        "nova-edge: viewer session + explicit buffers", edge_kib
    );
    drop(baseline_child);

    // Latency of one count change to every socket.
    let mut sessions = clients::sessions(&ctx.url(), &ctx.token).await;
    let name = stream.name.clone();
    println!("viewer_count_changed latency, JoinSession call to the last socket receiving it");
    for open in [1, n] {
        settle(&mut sessions, &name).await;
        let figures = latency(&ws_url, open, &mut sessions, &name).await;
        println!(
            "  {:<48} p50 {:>7.1} ms  p99 {:>7.1} ms  max {:>7.1} ms",
            format!("{open} socket(s)"),
            figures.0,
            figures.1,
            figures.2
        );
    }
    drop(edge_child);
}

/// Opens `n` sockets to `url` (64 handshakes at a time), each read up to its first
/// frame; returns the RSS growth of `pid` per socket in KiB and that frame's size.
async fn memory_per_socket(pid: u32, url: &str, n: usize) -> (f64, usize) {
    let before = rss_kib(pid);
    let opened: Vec<(Socket, usize)> = stream::iter(0..n)
        .map(|_| async {
            let (mut socket, _) = tokio_tungstenite::connect_async(url)
                .await
                .expect("WebSocket handshake");
            let first = tokio::time::timeout(Duration::from_secs(30), next_text(&mut socket))
                .await
                .expect("a first frame within 30 s")
                .expect("a first frame");
            (socket, first.len())
        })
        .buffer_unordered(64)
        .collect()
        .await;
    let after = rss_kib(pid);
    let frame = opened.first().map_or(0, |(_, len)| *len);
    for (mut socket, _) in opened {
        let _ = socket.close(None).await;
    }
    ((after.saturating_sub(before)) as f64 / n as f64, frame)
}

/// Opens `open` sockets, lets the count settle, then times `ROUNDS` joins until every
/// socket shows each new count; returns p50, p99 and max in milliseconds.
async fn latency(
    url: &str,
    open: usize,
    sessions: &mut clients::Sessions,
    name: &str,
) -> (f64, f64, f64) {
    let (tx, mut rx) = mpsc::unbounded_channel::<(usize, i64, Instant)>();
    let sockets: Vec<Socket> = stream::iter(0..open)
        .map(|_| async {
            tokio_tungstenite::connect_async(url)
                .await
                .expect("WebSocket handshake")
                .0
        })
        .buffer_unordered(64)
        .collect()
        .await;
    let mut readers = Vec::with_capacity(open);
    for (index, mut socket) in sockets.into_iter().enumerate() {
        let tx = tx.clone();
        readers.push(tokio::spawn(async move {
            while let Some(text) = next_text(&mut socket).await {
                let Ok(value) = serde_json::from_str::<Value>(&text) else {
                    continue;
                };
                if let Some(count) = value["viewer_count"].as_i64()
                    && tx.send((index, count, Instant::now())).is_err()
                {
                    break;
                }
            }
            let _ = socket.close(None).await;
        }));
    }
    drop(tx);

    let mut joined = Vec::with_capacity(ROUNDS + 1);
    let (session, mut count) = join(sessions, name).await;
    joined.push(session);
    wait_for_all(&mut rx, count, open).await;
    let mut samples = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        // Pace rounds past the 250 ms coalescing window so each change goes out at once.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let start = Instant::now();
        let session;
        (session, count) = join(sessions, name).await;
        joined.push(session);
        let last = wait_for_all(&mut rx, count, open).await;
        samples.push(last.duration_since(start).as_secs_f64() * 1000.0);
    }
    // Leave: close the sockets (the edge leaves their sessions) and our own joins.
    drop(rx);
    for reader in readers {
        reader.abort();
    }
    for session_id in joined {
        let _ = sessions
            .leave_session(LeaveSessionRequest { session_id })
            .await;
    }
    samples.sort_by(f64::total_cmp);
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.99), at(1.0))
}

/// Waits (at most 30 s) until each of the `open` sockets reported `count` (or more);
/// returns when the last one did.
async fn wait_for_all(
    rx: &mut mpsc::UnboundedReceiver<(usize, i64, Instant)>,
    count: i64,
    open: usize,
) -> Instant {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut seen = vec![false; open];
    let mut left = open;
    let mut last = Instant::now();
    while left > 0 {
        let (index, got, at) = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "only {}/{open} sockets saw count {count} in 30 s",
                    open - left
                )
            })
            .expect("socket readers alive");
        if got >= count && !seen[index] {
            seen[index] = true;
            left -= 1;
            last = at;
        }
    }
    last
}

/// Waits (at most 60 s) until the sockets of earlier runs have left the stream.
async fn settle(sessions: &mut clients::Sessions, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let count = sessions
            .get_viewer_count(GetViewerCountRequest { name: name.into() })
            .await
            .unwrap()
            .into_inner()
            .viewer_count;
        if count == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{count} viewers still counted 60 s after their sockets closed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn join(sessions: &mut clients::Sessions, name: &str) -> (String, i64) {
    let joined = sessions
        .join_session(JoinSessionRequest {
            name: name.into(),
            viewer_id: String::new(),
            kind: ViewerKind::Web.into(),
            node: "bench".into(),
        })
        .await
        .unwrap()
        .into_inner();
    (joined.session_id, joined.viewer_count)
}

async fn next_text(socket: &mut Socket) -> Option<String> {
    while let Some(message) = socket.next().await {
        match message {
            Ok(Message::Text(text)) => return Some(text.to_string()),
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => {}
        }
    }
    None
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .expect("read /proc/<pid>/status")
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/<pid>/status")
}

/// Starts this binary as the baseline server; returns it and its WebSocket URL.
async fn spawn_baseline(frame_bytes: usize) -> (tokio::process::Child, String) {
    let mut child = tokio::process::Command::new(std::env::current_exe().unwrap())
        .arg("--baseline-server")
        .arg(frame_bytes.to_string())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn the baseline server");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await
        .expect("the baseline server prints its address within 10 s")
        .unwrap()
        .expect("an address line");
    (child, format!("ws://{addr}/ws"))
}

/// A bare axum WebSocket server with default buffers: sends one frame of
/// `frame_bytes` (the size of the edge's snapshot), then reads until the client leaves.
async fn baseline_server(frame_bytes: usize) {
    use axum::{
        Router,
        extract::ws::{Message as AxumMessage, WebSocketUpgrade},
        routing::get,
    };
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    println!("{}", listener.local_addr().unwrap());
    let frame = format!(
        "{{\"type\":\"snapshot\",\"padding\":\"{}\"}}",
        "x".repeat(frame_bytes.saturating_sub(32))
    );
    let app = Router::new().route(
        "/ws",
        get(move |ws: WebSocketUpgrade| {
            let frame = frame.clone();
            async move {
                ws.on_upgrade(move |mut socket| async move {
                    if socket.send(AxumMessage::text(frame)).await.is_ok() {
                        while let Some(Ok(_)) = socket.recv().await {}
                    }
                })
            }
        }),
    );
    axum::serve(listener, app).await.unwrap();
}
