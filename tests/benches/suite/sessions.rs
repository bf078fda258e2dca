//! G5: JoinSession and LeaveSession straight to the control plane over gRPC (32
//! calls in flight on one channel, sessions spread over 100 streams) against
//! Health/Check under the same load; WebSocket connects per second at one edge
//! process (handshake until the snapshot: the stream read shared, one join per
//! socket, the joins of sockets opening together sent in one call) against a bare
//! axum server sending one frame.

use std::time::{Duration, Instant};

use nova_proto::v1::{
    CreateStreamRequest, JoinSessionRequest, LeaveSessionRequest, Stream, ViewerKind,
};
use nova_tests::{TestContext, clients, figures};

use crate::{
    memory::{spawn_baseline, spawn_edge},
    procstat::{env_or, summary},
    sockets,
    table::{Row, Rows},
};

/// Calls in flight.
const WORKERS: usize = 32;

/// Runs `call` on `WORKERS` tasks until `per_worker` inputs each are used (or, with
/// none, for 3 s); returns calls/s, p50 and p99 in ms, and the outputs.
async fn load<I, O, F, Fut>(inputs: Vec<Vec<I>>, call: F) -> (f64, f64, f64, Vec<O>)
where
    I: Send + 'static,
    O: Send + 'static,
    F: Fn(I) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = O> + Send,
{
    let started = Instant::now();
    let tasks: Vec<_> = inputs
        .into_iter()
        .map(|inputs| {
            let call = call.clone();
            tokio::spawn(async move {
                let mut took = Vec::with_capacity(inputs.len());
                let mut out = Vec::with_capacity(inputs.len());
                for input in inputs {
                    let at = Instant::now();
                    out.push(call(input).await);
                    took.push(at.elapsed().as_secs_f64() * 1000.0);
                }
                (took, out)
            })
        })
        .collect();
    let (mut took, mut out) = (Vec::new(), Vec::new());
    for task in tasks {
        let (t, o) = task.await.unwrap();
        took.extend(t);
        out.extend(o);
    }
    let rate = took.len() as f64 / started.elapsed().as_secs_f64();
    let (p50, _, p99, _) = summary(&mut took);
    (rate, p50, p99, out)
}

pub async fn run(rows: &Rows) {
    let ops = env_or("SESSION_OPS", 20_000);
    let opens = env_or("SOCKET_OPENS", 2000);
    let ctx = TestContext::start_with(|c| c.db_pool_size = 16).await;
    let mut streams = clients::streams(&ctx.url(), Some(&ctx.token), Some("bench")).await;
    let mut names = Vec::new();
    for i in 0..100 {
        let stream = streams
            .create_stream(CreateStreamRequest {
                stream: Some(Stream {
                    title: format!("sessions {i}"),
                    ..Default::default()
                }),
            })
            .await
            .unwrap()
            .into_inner()
            .stream
            .unwrap();
        names.push(stream.name);
    }
    println!("G5: {ops} joins then {ops} leaves, {WORKERS} in flight; {opens} WebSocket opens");
    let sessions = clients::sessions(&ctx.url(), &ctx.token).await;
    let health =
        tonic_health::pb::health_client::HealthClient::new(clients::channel(&ctx.url()).await);
    let split = |n: usize| -> Vec<Vec<usize>> {
        (0..WORKERS)
            .map(|w| (w..n).step_by(WORKERS).collect())
            .collect()
    };
    let (h_rate, _, h_p99, _) = load(split(ops), move |_| {
        let mut health = health.clone();
        async move {
            health
                .check(tonic_health::pb::HealthCheckRequest::default())
                .await
                .unwrap();
        }
    })
    .await;
    let join = {
        let sessions = sessions.clone();
        let names = names.clone();
        move |i: usize| {
            let mut sessions = sessions.clone();
            let name = names[i % names.len()].clone();
            async move {
                sessions
                    .join_session(JoinSessionRequest {
                        name,
                        viewer_id: format!("viewer-{i}"),
                        kind: ViewerKind::Web.into(),
                        node: "bench".into(),
                    })
                    .await
                    .unwrap()
                    .into_inner()
                    .session_id
            }
        }
    };
    let (j_rate, j_p50, j_p99, ids) = load(split(ops), join).await;
    let mut per_worker: Vec<Vec<String>> = (0..WORKERS).map(|_| Vec::new()).collect();
    for (i, id) in ids.into_iter().enumerate() {
        per_worker[i % WORKERS].push(id);
    }
    let leave = {
        let sessions = sessions.clone();
        move |session_id: String| {
            let mut sessions = sessions.clone();
            async move {
                sessions
                    .leave_session(LeaveSessionRequest { session_id })
                    .await
                    .unwrap();
            }
        }
    };
    let (l_rate, l_p50, l_p99, _) = load(per_worker, leave).await;
    let base = format!("Health/Check, {WORKERS} in flight");
    rows.push(
        Row::new(
            "G5.join.rate",
            format!("JoinSession, {WORKERS} in flight over one channel"),
            "ops/s",
        )
        .figure(j_rate)
        .baseline(base.clone(), h_rate)
        .goal("≥ 10k ops/s")
        .note(format!("p50 {j_p50:.2} ms")),
    );
    rows.push(
        Row::new("G5.join.p99", "JoinSession p99 under that load", "ms")
            .figure(j_p99)
            .baseline(format!("{base} p99"), h_p99)
            .goal("p99 ≤ 10 ms"),
    );
    rows.push(
        Row::new(
            "G5.leave.rate",
            format!("LeaveSession, {WORKERS} in flight over one channel"),
            "ops/s",
        )
        .figure(l_rate)
        .baseline(base.clone(), h_rate)
        .goal("≥ 10k ops/s")
        .note(format!("p50 {l_p50:.2} ms")),
    );
    rows.push(
        Row::new("G5.leave.p99", "LeaveSession p99 under that load", "ms")
            .figure(l_p99)
            .baseline(format!("{base} p99"), h_p99)
            .goal("p99 ≤ 10 ms"),
    );

    // WebSocket opens: handshake until each socket holds its first frame.
    let (edge_child, edge_base) = spawn_edge(&ctx, "bench-connects", opens + 100);
    let id = names[0].trim_start_matches("streams/");
    let url = format!(
        "{}/api/v1/streams/{id}/ws",
        edge_base.replacen("http://", "ws://", 1)
    );
    let rate = |url: String| async move {
        let started = Instant::now();
        let mut crowd = sockets::open(&url, opens, 64, &[]).await;
        let first = crowd.until_all(0, Duration::from_secs(60)).await;
        let done = first
            .iter()
            .flatten()
            .max()
            .copied()
            .unwrap_or_else(Instant::now);
        let got = first.iter().flatten().count();
        (
            got as f64 / done.duration_since(started).as_secs_f64(),
            got,
            crowd.failed.len(),
        )
    };
    // The client's first crowd runs at a third of the rate of the next ones (its heap
    // grows): warm it on a throwaway server, so both figures below are a warm
    // client's against a fresh server.
    let (warm_child, warm_url) = spawn_baseline(300).await;
    rate_baseline(&warm_url, opens).await;
    drop(warm_child);
    let (baseline_child, baseline_url) = spawn_baseline(300).await;
    let (b_rate, _, _) = rate_baseline(&baseline_url, opens).await;
    drop(baseline_child);
    let calls = |method: &'static str| {
        let ctx = &ctx;
        async move {
            figures::grpc_calls(ctx, &format!("/nova.streaming.v1.SessionService/{method}")).await
        }
    };
    let (joins, batches) = (calls("JoinSession").await, calls("BatchJoinSessions").await);
    let (e_rate, got, failed) = rate(url).await;
    let (joins, batches) = (
        calls("JoinSession").await - joins,
        calls("BatchJoinSessions").await - batches,
    );
    rows.push(
        Row::new(
            "G5.ws_connects",
            format!("WebSocket connects/s at one edge ({got} of {opens} to their snapshot, 64 at a time)"),
            "connects/s",
        )
        .figure(e_rate)
        .baseline("bare axum server, handshake + one frame", b_rate)
        .goal("≥ 5k connects/s")
        .note(format!("{failed} handshakes failed; one join per connect, the joins of sockets opening together sent together: {joins} JoinSession and {batches} BatchJoinSessions calls (the stream read is shared per lifecycle generation and `NOVA_STREAM_CACHE`)")),
    );
    drop(edge_child);
}

/// Connects/s to the baseline server (its frame carries no count: the first frame
/// of any kind counts).
async fn rate_baseline(url: &str, opens: usize) -> (f64, usize, usize) {
    let started = Instant::now();
    let crowd = sockets::open(url, opens, 64, &[]).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while (crowd.frames.load(std::sync::atomic::Ordering::Relaxed) as usize) < crowd.len()
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let took = started.elapsed();
    (
        crowd.len() as f64 / took.as_secs_f64(),
        crowd.len(),
        crowd.failed.len(),
    )
}
