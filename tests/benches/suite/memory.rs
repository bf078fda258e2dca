//! G1: memory per open socket of `nova-edge` (RSS growth / sockets) against a bare
//! axum WebSocket server with default buffers sending a frame of the same size, and
//! how many sockets one edge process holds (client sockets come from child processes
//! of this binary, each on its own 127.0.2.x address, so no process nears the
//! 20,000-descriptor limit but the edge); with `NOVA_BENCH_SOCKETS_TOTAL`, that many
//! across several edge processes.

use std::{net::Ipv4Addr, process::Stdio, time::Duration};

use futures::StreamExt;
use nova_proto::v1::{CreateStreamRequest, Stream};
use nova_tests::{TestContext, clients, edge};
use serde_json::Value;
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines},
    process::{Child, ChildStdin, ChildStdout},
};
use tokio_tungstenite::tungstenite::Message;

use crate::{
    procstat::{env_or, rss_kib},
    table::{Row, Rows},
};

/// Most sockets one client process opens.
const PER_CLIENT: usize = 9_000;

pub async fn run(rows: &Rows) {
    let n = env_or("MEMORY_SOCKETS", 2000);
    let most = env_or("EDGE_SOCKETS", 5000);
    let total = env_or("SOCKETS_TOTAL", 0);
    let ctx = TestContext::start().await;
    let stream = clients::streams(&ctx.url(), Some(&ctx.token), Some("bench"))
        .await
        .create_stream(CreateStreamRequest {
            stream: Some(Stream {
                title: "memory".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .stream
        .unwrap();
    let path = format!("/api/v1/streams/{}/ws", stream.stream_id);
    println!("G1 memory: {n} sockets per figure, up to {most} on one edge");

    let (edge_child, base) = spawn_edge(&ctx, "bench-memory", most.max(n) + 100);
    let url = format!("{}{path}", base.replacen("http://", "ws://", 1));
    let snapshot = {
        let (mut socket, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
        let mut len = 0;
        while let Some(Ok(message)) = socket.next().await {
            if let Message::Text(text) = message {
                len = text.len();
                break;
            }
        }
        let _ = socket.close(None).await;
        len
    };
    let (baseline_child, baseline_url) = spawn_baseline(snapshot).await;
    let (b_opened, b_kib) =
        per_socket(baseline_child.id().unwrap(), &baseline_url, None, n, 1).await;
    drop(baseline_child);
    let (e_opened, e_kib) = per_socket(edge_child.id().unwrap(), &url, Some(&base), n, 10).await;
    rows.push(
        Row::new(
            "G1.memory",
            format!("nova-edge memory per open socket ({e_opened} sockets, RSS growth / sockets)"),
            "KiB",
        )
        .figure(e_kib)
        .baseline(
            format!(
                "bare axum WebSocket, default buffers, {b_opened} sockets, {snapshot} B first frame"
            ),
            b_kib,
        )
        .goal("≤ 8 KiB"),
    );
    drop(edge_child);

    // As many as the goal asks on one process (a fresh edge, so the RSS is its own).
    let (edge_child, base) = spawn_edge(&ctx, "bench-most", most + 100);
    let url = format!("{}{path}", base.replacen("http://", "ws://", 1));
    let (opened, kib) = per_socket(edge_child.id().unwrap(), &url, Some(&base), most, 20).await;
    rows.push(
        Row::new(
            format!("G1.sockets@{most}"),
            format!("sockets one nova-edge process held (of {most} opened; {kib:.1} KiB each)"),
            "sockets",
        )
        .figure(opened as f64)
        .baseline("asked for", most as f64)
        .goal("19k per process (20k-fd limit)"),
    );
    drop(edge_child);

    if total > 0 {
        let edges = total.div_ceil(17_000);
        let mut children = Vec::new();
        let mut held = Vec::new();
        for e in 0..edges {
            // The remainder goes to the first edges: `total` sockets in all.
            let share = total / edges + usize::from(e < total % edges);
            let (child, base) = spawn_edge(&ctx, &format!("bench-many-{e}"), share + 100);
            let url = format!("{}{path}", base.replacen("http://", "ws://", 1));
            held.push(hold(&url, share, 30 + 10 * e as u8).await);
            children.push(child);
        }
        let opened: usize = held.iter().flat_map(|h| h.iter().map(|c| c.opened)).sum();
        let mut open_now = 0;
        for clients in &mut held {
            for client in clients.iter_mut() {
                open_now += client.still_open().await;
            }
        }
        let rss: u64 = children.iter().map(|c| rss_kib(c.id().unwrap_or(0))).sum();
        rows.push(
            Row::new(
                format!("G1.sockets_total@{total}"),
                format!(
                    "sockets held across {edges} edge processes (still open after all were opened)"
                ),
                "sockets",
            )
            .figure(open_now as f64)
            .baseline("opened", opened as f64)
            .goal("50k+ on the box")
            .note(format!(
                "edges' RSS {:.0} MiB in total",
                rss as f64 / 1024.0
            )),
        );
    } else {
        rows.push(
            Row::new(
                "G1.sockets_total",
                "sockets across several edge processes",
                "sockets",
            )
            .goal("50k+ on the box")
            .note("not run: NOVA_BENCH_SOCKETS_TOTAL=50000 runs it"),
        );
    }
}

/// Starts a `nova-edge` process allowing `cap` sockets from anyone.
pub fn spawn_edge(ctx: &TestContext, node: &str, cap: usize) -> (Child, String) {
    edge::spawn_process_with(
        ctx,
        node,
        &[
            ("NOVA_WS_MAX_SOCKETS", cap.to_string()),
            ("NOVA_WS_MAX_SOCKETS_PER_IP", cap.to_string()),
            ("NOVA_WS_OPENS_PER_MINUTE", "100000000".to_owned()),
            ("NOVA_SESSION_HEARTBEAT", "10s".to_owned()),
        ],
    )
}

/// Opens `n` sockets to `url` from client processes; returns how many opened and the
/// RSS growth of `pid` per socket in KiB, measured once the edge at `edge` (if given)
/// counts them all as open viewers.
async fn per_socket(
    pid: u32,
    url: &str,
    edge: Option<&str>,
    n: usize,
    first_address: u8,
) -> (usize, f64) {
    let before = rss_kib(pid);
    let clients = hold(url, n, first_address).await;
    let opened: usize = clients.iter().map(|c| c.opened).sum();
    if let Some(base) = edge {
        // The edge sets sockets up a bounded number at a time.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
        while open_sockets(base).await < opened as i64 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let after = rss_kib(pid);
    for c in &clients {
        if let Some(err) = &c.first_error {
            println!("  a client's first failed handshake: {err}");
        }
    }
    (
        opened,
        after.saturating_sub(before) as f64 / opened.max(1) as f64,
    )
}

/// Returns `nova_streaming_websocket_connections` of the edge at `base`.
pub async fn open_sockets(base: &str) -> i64 {
    let Ok(answer) = nova_tests::http::get(&format!("{base}/metrics")).await else {
        return -1;
    };
    answer
        .text()
        .lines()
        .find(|l| l.starts_with("nova_streaming_websocket_connections"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(-1, |v| v as i64)
}

/// A client process holding sockets.
pub struct Client {
    /// Sockets it opened.
    pub opened: usize,
    /// Its first failed handshake, if any.
    pub first_error: Option<String>,
    /// Closing its stdin ends it.
    stdin: ChildStdin,
    /// Its answers.
    lines: Lines<BufReader<ChildStdout>>,
    /// The process.
    _child: Child,
}

impl Client {
    /// Asks the client how many of its sockets are still open.
    pub async fn still_open(&mut self) -> usize {
        let _ = self.stdin.write_all(b"report\n").await;
        let line = tokio::time::timeout(Duration::from_secs(30), self.lines.next_line())
            .await
            .ok()
            .and_then(Result::ok)
            .flatten()
            .unwrap_or_default();
        serde_json::from_str::<Value>(&line)
            .ok()
            .and_then(|v| v["open"].as_u64())
            .unwrap_or(0) as usize
    }
}

/// Opens `n` sockets to `url` from ⌈n / 9000⌉ client processes on 127.0.2.<first…>;
/// returns once every client reported.
pub async fn hold(url: &str, n: usize, first_address: u8) -> Vec<Client> {
    let processes = n.div_ceil(PER_CLIENT).max(1);
    let spawned: Vec<_> = (0..processes)
        .map(|i| {
            let share = n / processes + usize::from(i < n % processes);
            let source = Ipv4Addr::new(127, 0, 2, first_address + i as u8);
            let mut child = tokio::process::Command::new(std::env::current_exe().unwrap())
                .args(["--ws-clients", url, &share.to_string(), &source.to_string()])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .expect("spawn a client process");
            let stdin = child.stdin.take().unwrap();
            let lines = BufReader::new(child.stdout.take().unwrap()).lines();
            (child, stdin, lines)
        })
        .collect();
    let mut clients = Vec::new();
    for (child, stdin, mut lines) in spawned {
        let line = tokio::time::timeout(Duration::from_secs(600), lines.next_line())
            .await
            .expect("a client process reports within 600 s")
            .unwrap()
            .unwrap_or_default();
        let report: Value = serde_json::from_str(&line).unwrap_or_default();
        clients.push(Client {
            opened: report["opened"].as_u64().unwrap_or(0) as usize,
            first_error: report["first_error"].as_str().map(str::to_owned),
            stdin,
            lines,
            _child: child,
        });
    }
    clients
}

/// Starts the baseline server (`nova-bench-baseline`, a bare axum server with
/// default buffers and the system allocator); returns it and its WebSocket URL.
pub async fn spawn_baseline(frame_bytes: usize) -> (Child, String) {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_nova-bench-baseline"))
        .arg(frame_bytes.to_string())
        .stdout(Stdio::piped())
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
