//! The edge's WebSockets against real control planes, Redis and nginx-rtmp: counts
//! in real time, identical sequences for every viewer, two edges, a killed edge,
//! clean closes.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    missing_docs
)]

use std::time::Duration;

use nova_proto::v1::{EndStreamRequest, StreamStatus};
use nova_tests::{
    TestContext,
    edge::{self, Ended, Viewer, call, jwt},
    ffmpeg::Broadcaster,
    frames,
    live::{LiveOptions, LiveStack},
};
use serde_json::Value;
use tokio::time::Instant;

const SECOND: Duration = Duration::from_secs(1);

async fn create(base: &str) -> String {
    let created = call(
        "POST",
        &format!("{base}/api/v1/streams"),
        Some(&jwt("alice")),
        Some(r#"{"title":"ws"}"#),
    )
    .await;
    assert_eq!(created.status, 201);
    created.json["stream"]["id"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_viewer_sees_another_join_within_2s_and_leave() {
    let ctx = TestContext::start().await;
    let e = edge::start(&ctx, "edge-a").await;
    let base = format!("http://{}", e.addr);
    let id = create(&base).await;

    let mut a = Viewer::connect(&base, &id).await;
    let snapshot = a.next(2 * SECOND).await.unwrap();
    assert_eq!(snapshot["type"], "snapshot");
    assert_eq!(snapshot["stream_id"], id.as_str());
    assert_eq!(snapshot["status"], "pending");
    assert_eq!(snapshot["viewer_count"], 1);

    let joined_at = Instant::now();
    let b = Viewer::connect(&base, &id).await;
    let change = a.until_count(2, 2 * SECOND).await;
    println!(
        "viewer_count_changed reached another socket {:.1} ms after a join",
        joined_at.elapsed().as_secs_f64() * 1e3
    );
    assert_eq!(change["viewer_count"], 2);
    assert_eq!(change["type"], "viewer_count_changed");
    assert_eq!(change["peak_viewers"], 2);
    assert!(change["at"].is_string());

    b.close().await;
    a.until_count(1, 2 * SECOND).await;
    e.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_streams_close_with_4404_and_shutdown_closes_with_1001() {
    let ctx = TestContext::start().await;
    let e = edge::start(&ctx, "edge-a").await;
    let base = format!("http://{}", e.addr);
    let mut ghost = Viewer::connect(&base, &uuid::Uuid::now_v7().to_string()).await;
    assert_eq!(
        ghost.next(2 * SECOND).await.unwrap_err(),
        Ended::Closed(4404, "stream not found".into())
    );
    let mut bad = Viewer::connect(&base, "not-a-uuid").await;
    assert_eq!(
        bad.next(2 * SECOND).await.unwrap_err(),
        Ended::Closed(4404, "stream not found".into())
    );

    let id = create(&base).await;
    let mut viewer = Viewer::connect(&base, &id).await;
    viewer.next_of("snapshot", 2 * SECOND).await;
    let stopping = tokio::spawn(e.shutdown());
    assert_eq!(
        viewer.until_closed(5 * SECOND).await,
        Ended::Closed(1001, "server shutting down; reconnect".into())
    );
    stopping.await.unwrap().unwrap();
    // The edge left its session on the way out.
    let mut sessions = nova_tests::clients::sessions(&ctx.url(), &ctx.token).await;
    let count = sessions
        .get_viewer_count(nova_proto::v1::GetViewerCountRequest {
            name: format!("streams/{id}"),
        })
        .await
        .unwrap()
        .into_inner()
        .viewer_count;
    assert_eq!(count, 0);
}

/// Reads events until `stream_ended`, keeping what a viewer would render.
async fn until_ended(viewer: &mut Viewer) -> Vec<String> {
    let mut seen = Vec::new();
    loop {
        let m: Value = viewer
            .next(20 * SECOND)
            .await
            .expect("socket open until stream_ended");
        seen.push(match m["type"].as_str().unwrap() {
            "viewer_count_changed" => format!("count {}", m["viewer_count"]),
            "stream_started" => format!("started resumed={}", m["resumed"]),
            "stream_ended" => format!(
                "ended {} {}",
                m["status"].as_str().unwrap(),
                m["reason"].as_str().unwrap()
            ),
            other => other.to_owned(),
        });
        if m["type"] == "stream_ended" && m["status"] == "completed" {
            return seen;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn five_viewers_see_the_same_events_while_a_broadcaster_streams() {
    let mut live = LiveStack::start(LiveOptions::default()).await;
    let e = edge::start(&live.ctx, "edge-a").await;
    let base = format!("http://{}", e.addr);
    let (stream, key) = live.create_stream("five").await;
    let id = stream.stream_id.clone();

    let mut viewers = Vec::new();
    for _ in 0..5 {
        viewers.push(Viewer::connect(&base, &id).await);
    }
    for v in &mut viewers {
        v.until_count(5, 5 * SECOND).await;
    }

    // From here every viewer reads on its own task, as a browser would.
    let readers: Vec<_> = viewers
        .into_iter()
        .map(|mut v| tokio::spawn(async move { until_ended(&mut v).await }))
        .collect();
    let mut observer = nova_tests::clients::events(&live.ctx.url(), &live.ctx.token).await;
    let mut observed = observer
        .watch_events(nova_proto::v1::WatchEventsRequest {
            name: stream.name.clone(),
            after_cursor: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let mut until = async |count: i64| {
        loop {
            let e = tokio::time::timeout(5 * SECOND, observed.message())
                .await
                .unwrap()
                .unwrap()
                .unwrap()
                .event
                .unwrap();
            if matches!(e.kind, Some(nova_proto::v1::stream_event::Kind::ViewerCountChanged(ref c)) if c.viewer_count == count)
            {
                return;
            }
        }
    };

    let _ffmpeg = Broadcaster::start(&live.publish_url(&key), Duration::from_secs(120));
    live.wait_for_status(&stream.name, StreamStatus::Active, 15 * SECOND)
        .await;
    let extra = Viewer::connect(&base, &id).await;
    until(6).await;
    extra.close().await;
    until(5).await;
    live.streams
        .end_stream(EndStreamRequest {
            name: stream.name.clone(),
        })
        .await
        .unwrap();

    let mut sequences = Vec::new();
    for reader in readers {
        sequences.push(reader.await.unwrap());
    }
    println!("sequence seen by every viewer: {:?}", sequences[0]);
    let tail: Vec<&str> = sequences[0]
        .iter()
        .map(String::as_str)
        .filter(|e| *e != "quality_changed")
        .collect();
    assert_eq!(
        tail,
        [
            "started resumed=false",
            "count 6",
            "count 5",
            "ended completed ended_by_owner"
        ],
        "the lifecycle and every count change, in order, nothing stale or repeated"
    );
    for s in &sequences[1..] {
        assert_eq!(
            s, &sequences[0],
            "every viewer sees the same sequence: {sequences:?}"
        );
    }
    live.shutdown().await;
    e.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_viewer_on_edge_a_sees_a_count_change_caused_on_edge_b() {
    let ctx = TestContext::start().await;
    let replica = ctx.replica().await;
    let a = edge::start(&ctx, "edge-a").await;
    let mut config_b = edge::config(&ctx, "edge-b");
    config_b.control_plane.url = format!("http://{}", replica.addr);
    let b = nova_edge::start(&config_b).await.unwrap();
    let (base_a, base_b) = (format!("http://{}", a.addr), format!("http://{}", b.addr));
    let id = create(&base_a).await;

    let mut on_a = Viewer::connect(&base_a, &id).await;
    on_a.until_count(1, 2 * SECOND).await;
    let started = Instant::now();
    let on_b = Viewer::connect(&base_b, &id).await;
    on_a.until_count(2, 2 * SECOND).await;
    println!(
        "count change from edge B reached edge A in {:.1} ms",
        started.elapsed().as_secs_f64() * 1e3
    );
    on_b.close().await;
    on_a.until_count(1, 2 * SECOND).await;
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
    replica.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_of_a_killed_edge_expire_and_counts_converge() {
    let ctx = TestContext::start_with(|c| c.session_ttl = Duration::from_secs(2)).await;
    let survivor = edge::start(&ctx, "edge-a").await;
    let base_a = format!("http://{}", survivor.addr);
    let id = create(&base_a).await;
    let (mut doomed, base_b) = edge::spawn_process(&ctx, "edge-b");

    let mut watcher = Viewer::connect(&base_a, &id).await;
    let mut on_b = Vec::new();
    for _ in 0..3 {
        on_b.push(Viewer::connect(&base_b, &id).await);
    }
    watcher.until_count(4, 5 * SECOND).await;

    let pid = nix::unistd::Pid::from_raw(doomed.id().unwrap() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).unwrap();
    doomed.wait().await.unwrap();
    let killed = Instant::now();
    let converged = watcher.until_count(1, 10 * SECOND).await;
    assert_eq!(
        converged["peak_viewers"], 4,
        "a fresh count, not a stale one: {converged}"
    );
    println!(
        "counts converged {:.1} s after the edge was killed (session TTL 2 s)",
        killed.elapsed().as_secs_f64()
    );
    for mut v in on_b {
        assert_eq!(
            v.until_closed(5 * SECOND).await,
            Ended::Dropped,
            "no close frame from a killed edge"
        );
    }
    survivor.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_edge_answers_503_with_retry_after_and_takes_sockets_again_when_one_leaves() {
    let ctx = TestContext::start().await;
    let mut config = edge::config(&ctx, "edge-a");
    config.ws_max_sockets = 2;
    let e = nova_edge::start(&config).await.unwrap();
    let base = format!("http://{}", e.addr);
    let id = create(&base).await;
    let url = format!("ws://{}/api/v1/streams/{id}/ws", e.addr);

    let mut a = Viewer::connect(&base, &id).await;
    a.next_of("snapshot", 2 * SECOND).await;
    let mut b = Viewer::connect(&base, &id).await;
    b.next_of("snapshot", 2 * SECOND).await;
    match tokio_tungstenite::connect_async(url.as_str()).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 503);
            assert_eq!(response.headers()["retry-after"], "5");
            let body: Value =
                serde_json::from_slice(response.body().as_deref().unwrap_or_default())
                    .expect("a JSON error body");
            assert_eq!(body["error"]["code"], "UNAVAILABLE");
        }
        other => panic!("a third socket must be refused with 503, got {other:?}"),
    }

    b.close().await;
    // The place comes back once the edge has finished with b's socket.
    let mut c = nova_tests::wait::until("a place after b left", 5 * SECOND, || {
        let url = url.clone();
        async move {
            tokio_tungstenite::connect_async(url.as_str())
                .await
                .map(|(socket, _)| socket)
                .map_err(|e| e.to_string())
        }
    })
    .await;
    let snapshot = tokio::time::timeout(2 * SECOND, futures::StreamExt::next(&mut c))
        .await
        .expect("a snapshot within 2 s")
        .expect("a frame")
        .unwrap();
    let snapshot: Value = serde_json::from_str(snapshot.to_text().unwrap()).expect("a JSON frame");
    assert_eq!(snapshot["type"], "snapshot", "{snapshot}");
    assert_eq!(snapshot["stream_id"], id.as_str(), "{snapshot}");
    frames::assert_valid(&snapshot);
    a.close().await;
    e.shutdown().await.unwrap();
}

/// A crowd connecting while the control plane stalls past the edge's 5 s call
/// deadline (a lock on `streams` holds every GetStream for 6 s) still gets every
/// snapshot once it recovers: set-up calls that run out of time are retried, a
/// bounded number of sockets at a time, instead of closing the sockets with 1011.
/// (Unbounded, 10,000 sockets connecting at once overran the deadline by themselves
/// and never saw a count: the "3 of 10,000" of issue 11.)
#[tokio::test(flavor = "multi_thread")]
async fn a_crowd_connecting_through_a_control_plane_stall_gets_every_snapshot() {
    let ctx = TestContext::start().await;
    let e = edge::start(&ctx, "edge-stall").await;
    let base = format!("http://{}", e.addr);
    let id = create(&base).await;
    let crowd = 100;

    let mut lock = ctx.db().await;
    for sql in ["BEGIN", "LOCK TABLE streams IN ACCESS EXCLUSIVE MODE"] {
        diesel_async::RunQueryDsl::execute(diesel::sql_query(sql), &mut lock)
            .await
            .unwrap();
    }
    let connecting = futures::future::join_all((0..crowd).map(|_| async {
        let mut viewer = Viewer::connect(&base, &id).await;
        match viewer.next(20 * SECOND).await {
            Ok(frame) if frame["type"] == "snapshot" => Ok((viewer, frame["viewer_count"].clone())),
            other => Err(format!("{other:?}")),
        }
    }));
    // The stall itself: longer than the edge's call deadline (5 s).
    let release = async {
        tokio::time::sleep(6 * SECOND).await;
        diesel_async::RunQueryDsl::execute(diesel::sql_query("COMMIT"), &mut lock)
            .await
            .unwrap();
    };
    let (opened, ()) = tokio::join!(connecting, release);
    let failed: Vec<&String> = opened.iter().filter_map(|o| o.as_ref().err()).collect();
    assert!(
        failed.is_empty(),
        "{} of {crowd} sockets got no snapshot, e.g. {:?}",
        failed.len(),
        failed.first()
    );
    // And every one of them then sees the whole crowd (in its snapshot or later).
    let mut viewers = Vec::new();
    for (mut viewer, in_snapshot) in opened.into_iter().map(Result::unwrap) {
        if in_snapshot != crowd {
            viewer.until_count(crowd, 10 * SECOND).await;
        }
        viewers.push(viewer);
    }
    for viewer in viewers {
        viewer.close().await;
    }
    drop(lock);
    e.shutdown().await.unwrap();
}

/// The edge shares one GetStream among the sockets that open on a stream within
/// `NOVA_STREAM_CACHE` (1 s); a socket opening right after a go-live must still get
/// the live stream in its snapshot, not the PENDING one a socket read a moment
/// before (the shared read is keyed by the hub's lifecycle generation).
#[tokio::test(flavor = "multi_thread")]
async fn a_socket_opening_right_after_a_go_live_gets_the_live_snapshot() {
    use nova_proto::v1::{AuthorizePublishRequest, CreateStreamRequest, Stream};
    use nova_tests::clients;

    let ctx = TestContext::start().await;
    // Longer than the test: only the lifecycle generation can tell a read stale.
    let config = nova_edge::Config {
        stream_cache: Duration::from_secs(60),
        ..edge::config(&ctx, "edge-gen")
    };
    let e = nova_edge::start(&config).await.expect("start an edge");
    let base = format!("http://{}", e.addr);
    let mut streams = clients::streams(&ctx.url(), Some(&ctx.token), Some("alice")).await;
    let mut ingest = clients::ingest(&ctx.url(), &ctx.ingest_token).await;
    for round in 0..3 {
        let created = streams
            .create_stream(CreateStreamRequest {
                stream: Some(Stream {
                    title: format!("generation {round}"),
                    ..Default::default()
                }),
            })
            .await
            .expect("CreateStream")
            .into_inner();
        let id = created.stream.expect("stream").stream_id;
        let mut first = Viewer::connect(&base, &id).await;
        let snapshot = first.next(2 * SECOND).await.unwrap();
        assert_eq!(snapshot["status"], "pending");
        ingest
            .authorize_publish(AuthorizePublishRequest {
                stream_key: created.stream_key.clone(),
                client_addr: "127.0.0.1".into(),
                app: "live".into(),
                ingest_node: "ingest-gen".into(),
                origin_url: "http://127.0.0.1:8080".into(),
                abr: false,
                client_id: format!("c{round}"),
                recording: false,
            })
            .await
            .expect("AuthorizePublish");
        // The edge has dispatched stream_started once the first socket shows it.
        first.next_of("stream_started", 5 * SECOND).await;
        let mut second = Viewer::connect(&base, &id).await;
        let snapshot = second.next(2 * SECOND).await.unwrap();
        assert_eq!(
            snapshot["status"], "active",
            "round {round}: a socket opened after stream_started reached the edge got a stale snapshot: {snapshot}"
        );
        first.close().await;
        second.close().await;
    }
}
