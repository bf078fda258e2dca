//! Faults around the edge, with real WebSocket viewers on real edges (in-process and
//! the `nova-edge` binary) over the real control plane, PostgreSQL and Redis: a
//! control-plane restart while lifecycle events happen (each viewer sees each event
//! once, in order; counts converge), an edge killed with SIGKILL and restarted
//! (viewers reconnect, the dead edge's sessions expire, nobody is counted twice), and
//! SIGTERM on an edge (every socket gets 1001 with the reconnect hint, sessions are
//! left, the process exits within its drain deadline).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    missing_docs
)]

use std::time::Duration;

use nova_proto::v1::{
    AuthorizePublishRequest, EndStreamRequest, GetViewerCountRequest, PublishEndedRequest,
};
use nova_tests::{
    TestContext, clients,
    edge::{self, Ended, Viewer},
};
use serde_json::Value;
use tokio::time::Instant;

const SECOND: Duration = Duration::from_secs(1);
const NODE: &str = "ingest-chaos";
const ORIGIN: &str = "http://127.0.0.1:8088";

/// A viewer and what it has been shown: lifecycle events in order, the last count.
struct Watched {
    viewer: Viewer,
    lifecycle: Vec<String>,
    count: Option<i64>,
}

impl Watched {
    async fn connect(base: &str, id: &str) -> Self {
        let mut viewer = Viewer::connect(base, id).await;
        let snapshot = viewer.next(5 * SECOND).await.expect("a snapshot");
        assert_eq!(snapshot["type"], "snapshot", "first frame: {snapshot}");
        Self {
            count: snapshot["viewer_count"].as_i64(),
            viewer,
            lifecycle: Vec::new(),
        }
    }

    /// Reads one frame within `left`, recording it.
    async fn read(&mut self, left: Duration, waiting_for: &str) {
        let Ok(next) = tokio::time::timeout(left, self.viewer.next(left + SECOND)).await else {
            panic!(
                "waited in vain for {waiting_for}: shown so far {:?}, last count {:?}",
                self.lifecycle, self.count
            );
        };
        let m: Value =
            next.unwrap_or_else(|e| panic!("socket ended ({e:?}) while waiting for {waiting_for}"));
        match m["type"].as_str().unwrap_or_default() {
            "viewer_count_changed" => self.count = m["viewer_count"].as_i64(),
            "stream_started" => self
                .lifecycle
                .push(format!("started resumed={}", m["resumed"])),
            "stream_ended" => self.lifecycle.push(format!(
                "ended {} {}",
                m["status"].as_str().unwrap_or_default(),
                m["reason"].as_str().unwrap_or_default()
            )),
            "quality_changed" => self.lifecycle.push("quality_changed".into()),
            other => panic!("unexpected frame {other}: {m}"),
        }
    }

    /// Reads until `n` lifecycle events were shown (at most `timeout`).
    async fn until_lifecycle(&mut self, n: usize, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.lifecycle.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "only {:?} within {timeout:?}, expected {n} lifecycle events",
                self.lifecycle
            );
            self.read(left, &format!("{n} lifecycle events")).await;
        }
    }

    /// Reads until the last count shown is `count` (at most `timeout`).
    async fn until_count(&mut self, count: i64, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.count != Some(count) {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "count stayed {:?} for {timeout:?}, expected {count}",
                self.count
            );
            self.read(left, &format!("viewer count {count}")).await;
        }
    }
}

/// Owner and ingest clients of the control plane at `url`.
struct Callers {
    streams: clients::Streams,
    ingest: clients::Ingest,
}

impl Callers {
    async fn new(ctx: &TestContext, url: &str) -> Self {
        Self {
            streams: clients::streams(url, Some(&ctx.token), Some("alice")).await,
            ingest: clients::ingest(url, &ctx.ingest_token).await,
        }
    }

    async fn create(&mut self, title: &str) -> (String, String) {
        let (stream, key) = nova_tests::clients::create_titled(&mut self.streams, title).await;
        (stream.stream_id, key)
    }

    async fn go_live(&mut self, key: &str) {
        self.ingest
            .authorize_publish(AuthorizePublishRequest {
                stream_key: key.into(),
                client_addr: "127.0.0.1".into(),
                app: "live".into(),
                ingest_node: NODE.into(),
                origin_url: ORIGIN.into(),
                abr: false,
                client_id: format!("c-{key}"),
                recording: false,
            })
            .await
            .expect("AuthorizePublish");
    }

    async fn drop_publisher(&mut self, key: &str) {
        self.ingest
            .publish_ended(PublishEndedRequest {
                stream_key: key.into(),
                ingest_node: NODE.into(),
                client_id: format!("c-{key}"),
            })
            .await
            .expect("PublishEnded");
    }

    async fn end(&mut self, id: &str) {
        self.streams
            .end_stream(EndStreamRequest {
                name: format!("streams/{id}"),
            })
            .await
            .expect("EndStream");
    }
}

/// Returns the live viewer count of stream `id`, as the control plane knows it.
async fn live_count(ctx: &TestContext, id: &str) -> i64 {
    clients::sessions(&ctx.url(), &ctx.token)
        .await
        .get_viewer_count(GetViewerCountRequest {
            name: format!("streams/{id}"),
        })
        .await
        .expect("GetViewerCount")
        .into_inner()
        .viewer_count
}

#[tokio::test(flavor = "multi_thread")]
async fn an_edge_that_has_seen_no_event_yet_still_misses_none_across_a_restart() {
    // The edge's first WatchEvents is live only; the control plane tells it where that
    // starts (x-nova-log-position), so the break below resumes exactly.
    let mut ctx = TestContext::start_with(|c| c.ingest_timeout = Duration::from_secs(300)).await;
    let e = edge::start(&ctx, "edge-fresh").await;
    let base = format!("http://{}", e.addr);
    let mut main = Callers::new(&ctx, &ctx.url()).await;
    let (a, key_a) = main.create("first event during the outage").await;
    let mut viewer = Watched::connect(&base, &a).await;
    let replica = ctx.replica().await;
    let mut other = Callers::new(&ctx, &format!("http://{}", replica.addr)).await;
    ctx.restart_while(other.go_live(&key_a)).await;
    viewer.until_lifecycle(1, 15 * SECOND).await;
    assert_eq!(viewer.lifecycle, ["started resumed=false"]);
    let mut main = Callers::new(&ctx, &ctx.url()).await;
    main.end(&a).await;
    viewer.until_lifecycle(2, 15 * SECOND).await;
    assert_eq!(
        viewer.lifecycle,
        ["started resumed=false", "ended completed ended_by_owner"],
        "each event once, in order"
    );
    replica.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn viewers_see_each_lifecycle_event_once_in_order_across_a_control_plane_restart() {
    // No ingest heartbeats in this test: keep the reaper from declaring ingest lost.
    let mut ctx = TestContext::start_with(|c| c.ingest_timeout = Duration::from_secs(300)).await;
    let e = edge::start(&ctx, "edge-a").await;
    let base = format!("http://{}", e.addr);
    let mut main = Callers::new(&ctx, &ctx.url()).await;
    let (a, key_a) = main.create("a").await;
    let (b, key_b) = main.create("b").await;

    let mut on_a = Vec::new();
    for _ in 0..3 {
        on_a.push(Watched::connect(&base, &a).await);
    }
    let mut on_b = Vec::new();
    for _ in 0..2 {
        on_b.push(Watched::connect(&base, &b).await);
    }
    on_a[0].until_count(3, 5 * SECOND).await;
    main.go_live(&key_a).await;
    for v in &mut on_a {
        v.until_lifecycle(1, 5 * SECOND).await;
    }

    // The control plane goes away. Meanwhile a replica (same database and Redis)
    // interrupts A and starts B, and a viewer of A leaves; the edge cannot hear of any
    // of it until it is back.
    let replica = ctx.replica().await;
    let mut other = Callers::new(&ctx, &format!("http://{}", replica.addr)).await;
    let gone = on_a.pop().unwrap();
    ctx.restart_while(async {
        gone.viewer.close().await;
        other.drop_publisher(&key_a).await;
        other.go_live(&key_b).await;
    })
    .await;
    let back = Instant::now();
    // After the restart: A resumes, B completes, then A completes.
    let mut main = Callers::new(&ctx, &ctx.url()).await;
    main.go_live(&key_a).await;
    main.end(&b).await;
    main.end(&a).await;

    let expect_a = [
        "started resumed=false",
        "ended interrupted publisher_disconnected",
        "started resumed=true",
        "ended completed ended_by_owner",
    ];
    let expect_b = ["started resumed=false", "ended completed ended_by_owner"];
    for v in &mut on_a {
        v.until_lifecycle(expect_a.len(), 15 * SECOND).await;
        assert_eq!(
            v.lifecycle, expect_a,
            "viewer of A: each event once, in order"
        );
    }
    for v in &mut on_b {
        v.until_lifecycle(expect_b.len(), 15 * SECOND).await;
        assert_eq!(
            v.lifecycle, expect_b,
            "viewer of B: each event once, in order"
        );
    }
    // Counts converge: the viewer who left during the outage is no longer counted,
    // within two heartbeat intervals (1 s here) of the edge reaching the control plane.
    for v in &mut on_a {
        v.until_count(2, 4 * SECOND).await;
    }
    assert_eq!(live_count(&ctx, &a).await, 2);
    println!(
        "control-plane restart: every viewer saw each lifecycle event once; counts converged {:.2} s after it was back",
        back.elapsed().as_secs_f64()
    );
    // Waiting for the counts read more frames: still no lifecycle event repeated.
    for v in &on_a {
        assert_eq!(v.lifecycle, expect_a, "nothing repeated later");
    }
    e.shutdown().await.unwrap();
    replica.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn viewers_of_a_killed_edge_reconnect_to_its_restart_and_are_counted_once() {
    let ctx = TestContext::start_with(|c| c.session_ttl = Duration::from_secs(3)).await;
    let mut main = Callers::new(&ctx, &ctx.url()).await;
    let (id, _) = main.create("killed edge").await;
    let port = nova_stack::wait::free_port().unwrap();
    let (mut doomed, base) = edge::spawn_process_on(&ctx, "edge-k", port, &[]);

    let mut viewers = Vec::new();
    for _ in 0..3 {
        viewers.push(Watched::connect(&base, &id).await);
    }
    viewers[0].until_count(3, 5 * SECOND).await;

    let pid = nix::unistd::Pid::from_raw(doomed.id().unwrap() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).unwrap();
    doomed.wait().await.unwrap();
    let killed = Instant::now();
    for v in &mut viewers {
        assert_eq!(
            v.viewer.until_closed(5 * SECOND).await,
            Ended::Dropped,
            "a killed edge sends no close frame"
        );
    }
    // The dead edge's sessions are still counted until they expire.
    assert_eq!(live_count(&ctx, &id).await, 3);

    let (_edge, base) = edge::spawn_process_on(&ctx, "edge-k", port, &[]);
    let mut viewers = Vec::new();
    for _ in 0..3 {
        viewers.push(Watched::connect(&base, &id).await);
    }
    // At first the old sessions and the new ones are both live; within the session
    // TTL (3 s) plus one sweep the old ones age out and everyone shows 3, not 6.
    for v in &mut viewers {
        v.until_count(3, 10 * SECOND).await;
    }
    let converged = killed.elapsed();
    assert_eq!(live_count(&ctx, &id).await, 3, "no viewer counted twice");
    println!(
        "edge SIGKILL + restart: viewers back, counts converged to 3 {:.2} s after the kill (session TTL 3 s)",
        converged.as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_closes_every_socket_with_1001_and_a_reconnect_hint_within_the_drain_deadline() {
    let ctx = TestContext::start().await;
    let mut main = Callers::new(&ctx, &ctx.url()).await;
    let (id, _) = main.create("sigterm").await;
    let drain = 3 * SECOND;
    let (mut edge, base) =
        edge::spawn_process_with(&ctx, "edge-t", &[("NOVA_EDGE_DRAIN_TIMEOUT", "3s".into())]);
    let mut viewers = Vec::new();
    for _ in 0..5 {
        viewers.push(Watched::connect(&base, &id).await);
    }
    viewers[0].until_count(5, 5 * SECOND).await;
    assert_eq!(live_count(&ctx, &id).await, 5);

    let pid = nix::unistd::Pid::from_raw(edge.id().unwrap() as i32);
    let sent = Instant::now();
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    for v in &mut viewers {
        assert_eq!(
            v.viewer.until_closed(drain).await,
            Ended::Closed(1001, "server shutting down; reconnect".into())
        );
    }
    let status = tokio::time::timeout(drain + SECOND, edge.wait())
        .await
        .unwrap_or_else(|_| panic!("nova-edge still running {:?} after SIGTERM", drain + SECOND))
        .unwrap();
    let exited = sent.elapsed();
    assert!(status.success(), "a drained edge exits 0: {status}");
    assert_eq!(
        live_count(&ctx, &id).await,
        0,
        "every socket left its session before the process exited"
    );
    println!(
        "edge SIGTERM: 5 sockets closed 1001, process exited {:.0} ms after the signal (drain deadline 3 s)",
        exited.as_secs_f64() * 1e3
    );
}
