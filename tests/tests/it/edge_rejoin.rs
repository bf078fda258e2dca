//! Bulk rejoin (issue 10, item 3): BatchJoinSessions answers each join on its own and
//! in order, and an edge whose sessions the control plane lost (Redis flushed) joins
//! its sockets again with one BatchJoinSessions call per batch, not one JoinSession
//! per socket, proven by the control plane's per-method gRPC counters; the counts
//! converge within two heartbeat intervals. A crowd of sockets opening at once
//! (their joins coalesced into BatchJoinSessions calls) is counted once each.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    missing_docs
)]

use std::time::{Duration, Instant};

use nova_proto::v1::{
    BatchJoinSessionsRequest, CreateStreamRequest, GetViewerCountRequest, JoinSessionRequest,
    Stream, ViewerKind,
};
use nova_tests::{
    TestContext, clients,
    edge::{self, Viewer},
    figures,
    private_redis::PrivateRedis,
    stream_probe::Probe,
};
use tonic::Code;

const JOIN: &str = "/nova.streaming.v1.SessionService/JoinSession";
const BATCH_JOIN: &str = "/nova.streaming.v1.SessionService/BatchJoinSessions";
/// Sockets of the rejoin test.
const SOCKETS: usize = 40;

/// Creates a stream owned by alice; returns its resource name.
async fn create(ctx: &TestContext) -> String {
    clients::streams(&ctx.url(), Some(&ctx.token), Some("alice"))
        .await
        .create_stream(CreateStreamRequest {
            stream: Some(Stream {
                title: "rejoin".into(),
                ..Default::default()
            }),
        })
        .await
        .expect("CreateStream")
        .into_inner()
        .stream
        .unwrap()
        .name
}

/// A probe of the viewer count of stream `name`, as its owner alice.
async fn probe(ctx: &TestContext, name: &str) -> Probe {
    Probe {
        streams: clients::streams(&ctx.url(), Some(&ctx.token), Some("alice")).await,
        sessions: clients::sessions(&ctx.url(), &ctx.edge_token).await,
        name: name.to_owned(),
    }
}

fn join(name: &str, viewer: &str) -> JoinSessionRequest {
    JoinSessionRequest {
        name: name.into(),
        viewer_id: viewer.into(),
        kind: ViewerKind::Web.into(),
        node: "edge-batch".into(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn batch_join_sessions_answers_each_join_on_its_own_and_in_order() {
    let ctx = TestContext::start().await;
    let name = create(&ctx).await;
    let mut sessions = clients::sessions(&ctx.url(), &ctx.edge_token).await;
    let unknown = format!("streams/{}", uuid::Uuid::now_v7());
    let answer = sessions
        .batch_join_sessions(BatchJoinSessionsRequest {
            joins: vec![
                join(&name, "v1"),
                join("not-a-name", "v2"),
                join(&unknown, "v3"),
                join(&name, "v4"),
            ],
        })
        .await
        .expect("BatchJoinSessions")
        .into_inner();
    let codes: Vec<i32> = answer.results.iter().map(|r| r.code).collect();
    assert_eq!(
        codes,
        [
            Code::Ok as i32,
            Code::InvalidArgument as i32,
            Code::NotFound as i32,
            Code::Ok as i32
        ],
        "{answer:?}"
    );
    let first = answer.results[0].joined.as_ref().unwrap();
    let last = answer.results[3].joined.as_ref().unwrap();
    assert_ne!(first.session_id, last.session_id);
    assert!(answer.results[1].joined.is_none() && !answer.results[1].message.is_empty());
    let figures = sessions
        .get_viewer_count(GetViewerCountRequest { name: name.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((figures.viewer_count, figures.unique_viewers), (2, 2));

    for joins in [vec![], vec![join(&name, "x"); 1001]] {
        let refused = sessions
            .batch_join_sessions(BatchJoinSessionsRequest { joins })
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    }
    // The ingest role may not start web sessions in bulk (its allowlist is explicit).
    let mut hooks = clients::sessions(&ctx.url(), &ctx.ingest_token).await;
    let refused = hooks
        .batch_join_sessions(BatchJoinSessionsRequest {
            joins: vec![join(&name, "v5")],
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_edge_rejoins_its_sockets_in_one_batched_call_after_redis_is_flushed() {
    let redis = PrivateRedis::started();
    let url = redis.url();
    let ctx = TestContext::start_with(|c| c.redis_url = url.as_str().into()).await;
    let name = create(&ctx).await;
    let id = name.trim_start_matches("streams/").to_owned();
    let e = edge::start(&ctx, "edge-a").await;
    let base = format!("http://{}", e.addr);
    let mut viewers = Vec::new();
    for _ in 0..SOCKETS {
        viewers.push(Viewer::connect(&base, &id).await);
    }
    let probe = probe(&ctx, &name).await;
    let wait = Duration::from_secs(15);
    probe.wait_for_count(SOCKETS as i64, wait).await;
    let joins = figures::grpc_calls(&ctx, JOIN).await;
    let batches = figures::grpc_calls(&ctx, BATCH_JOIN).await;

    redis.flush_all();
    let flushed = Instant::now();
    // The edge heartbeats every second: its sessions are back within two intervals
    // on an idle machine; 15 s only catches a rejoin that never comes.
    probe.wait_for_count(SOCKETS as i64, wait).await;
    let converged = flushed.elapsed();
    let joined_again = figures::grpc_calls(&ctx, JOIN).await - joins;
    let batched = figures::grpc_calls(&ctx, BATCH_JOIN).await - batches;
    println!(
        "{SOCKETS} sockets rejoined {:.2} s after FLUSHALL with {batched} BatchJoinSessions \
         call(s) and {joined_again} JoinSession call(s)",
        converged.as_secs_f64()
    );
    assert_eq!(
        joined_again, 0,
        "no socket rejoined with its own JoinSession"
    );
    assert!(
        (1..=2).contains(&batched),
        "one batched call per heartbeat that found sessions gone: {batched}"
    );
    for viewer in viewers {
        viewer.close().await;
    }
    probe.wait_for_count(0, wait).await;
    e.shutdown().await.unwrap();
}

/// Sockets of the crowd test.
const CROWD: usize = 200;

/// Sockets that open at once have their joins coalesced by the edge (BatchJoinSessions
/// while other join calls are out): every socket still gets a join of its own, so the
/// snapshots' counts are exactly 1 to 200, each once, and closing every socket leaves
/// every session (the count falls back to 0).
#[tokio::test]
async fn a_crowd_opening_at_once_is_counted_once_each_and_left_exactly() {
    let ctx = TestContext::start().await;
    let name = create(&ctx).await;
    let id = name.trim_start_matches("streams/").to_owned();
    let e = edge::start(&ctx, "edge-crowd").await;
    let base = format!("http://{}", e.addr);
    let (joins, batches) = (
        figures::grpc_calls(&ctx, JOIN).await,
        figures::grpc_calls(&ctx, BATCH_JOIN).await,
    );

    let mut viewers =
        futures::future::join_all((0..CROWD).map(|_| Viewer::connect(&base, &id))).await;
    let mut counts = Vec::new();
    for viewer in &mut viewers {
        let snapshot = viewer.next_of("snapshot", Duration::from_secs(20)).await;
        counts.push(snapshot["viewer_count"].as_i64().expect("a count"));
    }
    counts.sort_unstable();
    let expected: Vec<i64> = (1..=CROWD as i64).collect();
    assert_eq!(
        counts, expected,
        "each socket's snapshot carries the count its own join made"
    );
    let probe = probe(&ctx, &name).await;
    let wait = Duration::from_secs(15);
    probe.wait_for_count(CROWD as i64, wait).await;
    println!(
        "{CROWD} sockets joined with {} JoinSession and {} BatchJoinSessions call(s)",
        figures::grpc_calls(&ctx, JOIN).await - joins,
        figures::grpc_calls(&ctx, BATCH_JOIN).await - batches
    );

    futures::future::join_all(viewers.into_iter().map(Viewer::close)).await;
    probe.wait_for_count(0, wait).await;
    e.shutdown().await.unwrap();
}
