//! G2: from a viewer joining (a gRPC `JoinSession`) until every socket of the stream
//! holds the new `viewer_count`, at 1 socket (the baseline), 1k and
//! `NOVA_BENCH_SOCKETS` sockets on one `nova-edge` process; how many sockets never
//! got it (each explained), and the frames per second the edge delivers while the
//! count changes continuously.

use std::{
    net::Ipv4Addr,
    sync::atomic::Ordering,
    time::{Duration, Instant},
};

use nova_proto::v1::{
    CreateStreamRequest, GetViewerCountRequest, HeartbeatRequest, JoinSessionRequest,
    LeaveSessionRequest, Stream, ViewerKind,
};
use nova_tests::{TestContext, clients, edge};

use crate::{
    procstat::{env_or, summary},
    sockets::{self, Crowd},
    table::{Row, Rows},
};

/// What one size measured.
struct Fanout {
    /// Every socket's delay in every round, in ms.
    deliveries: Vec<f64>,
    /// Per round, the delay of the last socket, in ms.
    last: Vec<f64>,
    /// Sockets that never saw a round's count within 30 s.
    lost: usize,
    /// Sockets whose handshake failed.
    failed: usize,
    /// Explanations of the lost sockets.
    why: Vec<String>,
    /// Frames per second delivered while the count changed continuously.
    frames_per_s: f64,
    /// Seconds from the first handshake until every socket had its snapshot and the
    /// count including all of them.
    setup_s: f64,
}

/// Longest a socket may take to show a count.
const LIMIT: Duration = Duration::from_secs(30);

pub async fn run(rows: &Rows) {
    let big = env_or("SOCKETS", 5000);
    let rounds = env_or("ROUNDS", 30);
    // The production pool size (tests use 4).
    let ctx = TestContext::start_with(|c| c.db_pool_size = 16).await;
    let stream = clients::streams(&ctx.url(), Some(&ctx.token), Some("bench"))
        .await
        .create_stream(CreateStreamRequest {
            stream: Some(Stream {
                title: "fan-out".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .stream
        .unwrap();
    let cap = (big + 1000).to_string();
    let (_edge, base) = spawn_logged(
        &ctx,
        "bench-fanout",
        &[
            ("NOVA_WS_MAX_SOCKETS", cap.clone()),
            ("NOVA_WS_MAX_SOCKETS_PER_IP", cap),
            ("NOVA_WS_OPENS_PER_MINUTE", "100000000".to_owned()),
            // The edge's default (spawn_process_with sets 1 s for tests).
            ("NOVA_SESSION_HEARTBEAT", "10s".to_owned()),
        ],
    );
    let url = format!(
        "{}/api/v1/streams/{}/ws",
        base.replacen("http://", "ws://", 1),
        stream.stream_id
    );
    let mut sessions = clients::sessions(&ctx.url(), &ctx.token).await;
    println!("G2 fan-out: {rounds} count changes per size, sizes 1, 1000, {big}");
    let one = measure(&url, 1, rounds, &mut sessions, &stream.name).await;
    let (one_p50, _, one_p99, one_max) = summary(&mut one.deliveries.clone());
    println!("  1 socket: p50 {one_p50:.2} ms, p99 {one_p99:.2} ms, max {one_max:.2} ms");
    let mut sizes = vec![1000, big];
    sizes.dedup();
    for n in sizes {
        settle(&mut sessions, &stream.name).await;
        let mut f = measure(&url, n, rounds, &mut sessions, &stream.name).await;
        let (p50, _, p99, max) = summary(&mut f.deliveries);
        let (last50, _, _, last_max) = summary(&mut f.last);
        let goal = if n <= 1000 {
            "p99 ≤ 20 ms at 1k sockets"
        } else {
            "p99 ≤ 150 ms at 10k sockets"
        };
        rows.push(
            Row::new(
                format!("G2.p99@{n}"),
                format!("join → viewer_count_changed at each of {n} sockets, p99"),
                "ms",
            )
            .figure(p99)
            .baseline("1 socket, same edge", one_p99)
            .goal(goal)
            .note(format!(
                "p50 {p50:.1} ms, max {max:.1} ms; last socket per change p50 {last50:.1} ms, max {last_max:.1} ms"
            )),
        );
        rows.push(
            Row::new(
                format!("G2.lost@{n}"),
                format!(
                    "sockets that never saw a count within 30 s ({n} sockets × {rounds} changes)"
                ),
                "sockets",
            )
            .figure(f.lost as f64)
            .goal("none lost")
            .note(if f.why.is_empty() {
                format!("{} handshakes failed", f.failed)
            } else {
                f.why.join("; ")
            }),
        );
        rows.push(
            Row::new(
                format!("G2.setup@{n}"),
                format!("{n} sockets connecting at once: all set up (snapshot, joined, every count seen)"),
                "sockets/s",
            )
            .figure(n as f64 / f.setup_s)
            .goal("(see G5: ≥ 5k connects/s)")
            .note(format!("{:.1} s for all", f.setup_s)),
        );
        rows.push(
            Row::new(
                format!("G2.frames@{n}"),
                format!("frames/s delivered to {n} sockets while the count changes continuously"),
                "frames/s",
            )
            .figure(f.frames_per_s)
            .baseline(
                "ceiling: one count per 250 ms window per socket",
                n as f64 * 4.0,
            )
            .goal("(frames/s reported)"),
        );
    }
    println!("  edge socket failures: {}", sockets::failures(&base).await);
}

/// Starts `nova-edge` like [`edge::spawn_process_with`], its log (`RUST_LOG`, default
/// `info`) in `target/bench/<node>.log`.
fn spawn_logged(
    ctx: &TestContext,
    node: &str,
    env: &[(&str, String)],
) -> (tokio::process::Child, String) {
    let dir = nova_tests::tools::workspace_root().join("target/bench");
    std::fs::create_dir_all(&dir).unwrap();
    let log = std::fs::File::create(dir.join(format!("{node}.log"))).unwrap();
    let port = nova_stack::wait::free_port().unwrap();
    let child = tokio::process::Command::new(
        nova_stack::stack::sibling_binary("nova-edge").expect("nova-edge built"),
    )
    .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
    .env("NOVA_EDGE_ADDR", format!("127.0.0.1:{port}"))
    .env("NOVA_CONTROL_PLANE_URL", ctx.url())
    .env("NOVA_SERVICE_TOKEN", &ctx.edge_token)
    .env("NOVA_EDGE_NODE", node)
    .env("NOVA_JWT_HS256_SECRET", edge::JWT_SECRET)
    .env(
        "RUST_LOG",
        std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
    )
    .stdout(std::process::Stdio::null())
    .stderr(log)
    .kill_on_drop(true)
    .spawn()
    .expect("spawn nova-edge");
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    nova_stack::wait::until(
        &format!("nova-edge on {addr}"),
        Duration::from_secs(30),
        || nova_stack::wait::accepts(addr),
    )
    .expect("nova-edge listens");
    (child, format!("http://{addr}"))
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

/// Source addresses: one per 10,000 sockets (each holds ~28k ephemeral ports).
fn sources(n: usize) -> Vec<Ipv4Addr> {
    (0..n.div_ceil(10_000).max(1))
        .map(|i| Ipv4Addr::new(127, 0, 1, 1 + i as u8))
        .collect()
}

async fn measure(
    url: &str,
    n: usize,
    rounds: usize,
    sessions: &mut clients::Sessions,
    name: &str,
) -> Fanout {
    let opening = Instant::now();
    let mut crowd = sockets::open(url, n, 64, &sources(n)).await;
    println!(
        "  {n} sockets open in {:.1} s ({} handshakes failed)",
        crowd.took.as_secs_f64(),
        crowd.failed.len()
    );
    let mut out = Fanout {
        deliveries: Vec::with_capacity(n * rounds),
        last: Vec::with_capacity(rounds),
        lost: 0,
        failed: crowd.failed.len(),
        why: Vec::new(),
        frames_per_s: 0.0,
        setup_s: 0.0,
    };
    let mut joined = Vec::with_capacity(rounds + 1);
    // Every socket first shows a count that includes all the others. The edge sets
    // sockets up a bounded number at a time (three control-plane calls each), so the
    // wait grows with the crowd.
    let (session, _) = join(sessions, name).await;
    joined.push(session);
    let all = crowd.len() as i64 + 1;
    let first = crowd
        .until_all(all, LIMIT + Duration::from_millis(10 * n as u64))
        .await;
    out.setup_s = opening.elapsed().as_secs_f64();
    lost(&crowd, &first, &format!("the count of all {all}"), &mut out);
    for _ in 0..rounds {
        if out.lost > 0 {
            break;
        }
        // Pace rounds past two 250 ms coalescing windows, so each change goes out at
        // once instead of at a window's end (the previous one may itself have waited
        // for its window).
        tokio::time::sleep(Duration::from_millis(600)).await;
        // The bench's own viewers stay live however many rounds run (unheartbeated,
        // they would expire after the session TTL and the count would fall).
        sessions
            .heartbeat(HeartbeatRequest {
                session_ids: joined.clone(),
            })
            .await
            .unwrap();
        let start = Instant::now();
        let (session, count) = join(sessions, name).await;
        joined.push(session);
        let seen = crowd.until_all(count, LIMIT).await;
        let delays: Vec<f64> = seen
            .iter()
            .flatten()
            .map(|at| at.duration_since(start).as_secs_f64() * 1000.0)
            .collect();
        out.last.push(delays.iter().copied().fold(0.0, f64::max));
        out.deliveries.extend(delays);
        lost(&crowd, &seen, &format!("count {count}"), &mut out);
    }
    out.frames_per_s = churn(&crowd, sessions, name).await;
    for session_id in joined {
        let _ = sessions
            .leave_session(LeaveSessionRequest { session_id })
            .await;
    }
    out
}

/// Records the sockets that never saw `what`, with how each ended.
fn lost(crowd: &Crowd, seen: &[Option<Instant>], what: &str, out: &mut Fanout) {
    let missing = crowd.missing(seen);
    if missing.is_empty() {
        return;
    }
    out.lost += missing.len();
    let why = crowd.explain(&missing);
    println!(
        "  LOST: {} of {} sockets never saw {what} within {LIMIT:?}:",
        missing.len(),
        crowd.len()
    );
    for line in why.iter().take(10) {
        println!("    {line}");
    }
    out.why.extend(why.into_iter().take(3));
}

/// Joins and leaves continuously for 5 s (4 calls in flight); returns the frames per
/// second the sockets received meanwhile.
async fn churn(crowd: &Crowd, sessions: &clients::Sessions, name: &str) -> f64 {
    let before = crowd.frames.load(Ordering::Relaxed);
    let started = Instant::now();
    let workers = (0..4).map(|_| {
        let mut sessions = sessions.clone();
        let name = name.to_owned();
        async move {
            while started.elapsed() < Duration::from_secs(5) {
                let (session_id, _) = join(&mut sessions, &name).await;
                let _ = sessions
                    .leave_session(LeaveSessionRequest { session_id })
                    .await;
            }
        }
    });
    futures::future::join_all(workers).await;
    // Counts still in the edge's queues arrive within a window or two.
    tokio::time::sleep(Duration::from_millis(500)).await;
    (crowd.frames.load(Ordering::Relaxed) - before) as f64 / started.elapsed().as_secs_f64()
}
