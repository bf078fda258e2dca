//! The control plane on a Redis Cluster (issue 11 item 3): a private 3-master +
//! 3-replica cluster, two control-plane replicas and an edge on each, a live
//! broadcast through nginx-rtmp. Viewers on both edges see exact counts (a count
//! caused through one replica reaches the other only through the cluster's pub/sub),
//! the stream's keys all live in one slot on the master that serves it, and after
//! that master is killed (SIGKILL) and its replica promoted, counts, events and the
//! broadcast go on. Then the master holding the control planes' subscriptions (the
//! events channel's slot) is killed too, unless it was the first one, and counts still
//! reach both edges. A second test spreads streams over all three masters: one
//! batched heartbeat runs a script per stream and answers the gone sessions in
//! request order, the sweeper expires silent sessions on every master and publishes
//! the counts, BatchGetViewerCounts reads them, and the sampler persists every
//! stream's figures.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    missing_docs
)]

use std::{collections::HashSet, net::SocketAddr, time::Duration};

use nova_proto::v1::{
    AuthorizePublishRequest, BatchGetViewerCountsRequest, CreateStreamRequest, HeartbeatRequest,
    JoinSessionRequest, LeaveSessionRequest, Stream, StreamStatus, ViewerKind,
};
use nova_tests::{
    TestContext, clients,
    edge::{self, Viewer},
    figures::persisted,
    live::{LiveOptions, LiveStack},
    on_air::{end_and_cut, on_air_with_id, still_on_air},
    redis_cluster::{RedisCluster, cli},
    wait,
    watcher::Watcher,
};
use tokio::time::Instant;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

const SECOND: Duration = Duration::from_secs(1);

/// Waits until the control plane at `addr` reports `nova.redis` SERVING (Redis
/// answers and its pub/sub subscription is up).
async fn wait_redis_serving(addr: SocketAddr, what: &str, timeout: Duration) {
    let health = HealthClient::new(clients::channel(&format!("http://{addr}")).await);
    wait::until(
        &format!("{what} to report nova.redis SERVING"),
        timeout,
        || {
            let mut health = health.clone();
            async move {
                match health
                    .check(HealthCheckRequest {
                        service: "nova.redis".into(),
                    })
                    .await
                    .map(|r| r.into_inner().status())
                {
                    Ok(ServingStatus::Serving) => Ok(()),
                    other => Err(format!("{other:?}")),
                }
            }
        },
    )
    .await;
}

/// Returns BatchGetViewerCounts' `(count, peak)` of `names`, in order.
async fn batch_counts(live: &LiveStack, names: &[&str]) -> Vec<(i64, i64)> {
    batch_counts_at(&live.ctx.url(), &live.ctx.token, names).await
}

/// Returns BatchGetViewerCounts' `(count, peak)` of `names` from the control plane at
/// `url`, in order.
async fn batch_counts_at(url: &str, token: &str, names: &[&str]) -> Vec<(i64, i64)> {
    clients::sessions(url, token)
        .await
        .batch_get_viewer_counts(BatchGetViewerCountsRequest {
            names: names.iter().map(|n| (*n).to_owned()).collect(),
        })
        .await
        .expect("BatchGetViewerCounts")
        .into_inner()
        .viewer_counts
        .iter()
        .map(|c| (c.viewer_count, c.peak_viewers))
        .collect()
}

/// Kills `master` (SIGKILL) once its replica has its writes, waits until the replica
/// is promoted, the cluster is healthy and every control plane serves Redis again;
/// returns the promoted replica's port.
async fn fail_over(
    cluster: &RedisCluster,
    master: u16,
    control_planes: &[(SocketAddr, &str)],
) -> u16 {
    let promoted = cluster.replica_of(master).expect("a replica of the master");
    cluster.wait_replicated(master, promoted, 10 * SECOND).await;
    cluster.kill(master);
    let killed = Instant::now();
    cluster.wait_master(promoted, 20 * SECOND).await;
    cluster.wait_healthy(20 * SECOND).await;
    println!(
        "replica {promoted} took over from master {master} {:.1} s after SIGKILL",
        killed.elapsed().as_secs_f64()
    );
    for (addr, what) in control_planes {
        wait_redis_serving(*addr, &format!("{what} after the failover"), 20 * SECOND).await;
    }
    println!(
        "every control plane serves Redis again {:.1} s after SIGKILL",
        killed.elapsed().as_secs_f64()
    );
    promoted
}

#[tokio::test(flavor = "multi_thread")]
async fn counts_and_events_flow_on_a_redis_cluster_through_a_master_failover() {
    let cluster = RedisCluster::start().await;
    let mut live = LiveStack::start(LiveOptions {
        redis_url: Some(cluster.url()),
        ..LiveOptions::default()
    })
    .await;
    let replica = live.ctx.replica().await;
    wait_redis_serving(live.ctx.addr(), "control plane A", 10 * SECOND).await;
    wait_redis_serving(replica.addr, "control plane B", 10 * SECOND).await;
    let edge_a = edge::start(&live.ctx, "edge-a").await;
    let mut config_b = edge::config(&live.ctx, "edge-b");
    config_b.control_plane.url = format!("http://{}", replica.addr);
    let edge_b = nova_edge::start(&config_b).await.expect("start edge B");
    let (base_a, base_b) = (
        format!("http://{}", edge_a.addr),
        format!("http://{}", edge_b.addr),
    );

    let (name, id, mut broadcast) = on_air_with_id(&mut live, "on a cluster").await;

    // Viewers on both edges: each join through one control plane reaches the sockets
    // of the other only through the cluster's pub/sub.
    let mut on_a = Viewer::connect(&base_a, &id).await;
    let snapshot = on_a.next(5 * SECOND).await.expect("snapshot");
    assert_eq!(snapshot["type"], "snapshot");
    assert_eq!(snapshot["status"], "active");
    assert_eq!(snapshot["viewer_count"], 1);
    let mut on_b = Viewer::connect(&base_b, &id).await;
    on_b.until_count(2, 5 * SECOND).await;
    let change = on_a.until_count(2, 5 * SECOND).await;
    assert_eq!(change["type"], "viewer_count_changed");
    let on_b2 = Viewer::connect(&base_b, &id).await;
    on_a.until_count(3, 5 * SECOND).await;
    on_b.until_count(3, 5 * SECOND).await;
    live.wait_for_viewers(&name, 3, 5 * SECOND).await;

    // Every key of the stream sits in the one slot of its hash tag, on the master
    // serving that slot (a read there answers without a redirect).
    let prefix = live.ctx.config.redis_prefix.clone();
    let live_key = format!("{prefix}:{{{id}}}:live");
    let master = cluster.master_of(&live_key).expect("the stream's master");
    assert_eq!(
        cli(master, &["ZCARD", &live_key]).as_deref(),
        Ok("3"),
        "three sessions on the stream's master"
    );
    for what in ["peak", "uniq"] {
        let key = format!("{prefix}:{{{id}}}:{what}");
        assert_eq!(cli(master, &["EXISTS", &key]).as_deref(), Ok("1"), "{key}");
    }

    // Fail the stream's master over: kill it once its replica has every write.
    let control_planes = [
        (live.ctx.addr(), "control plane A"),
        (replica.addr, "control plane B"),
    ];
    let promoted = fail_over(&cluster, master, &control_planes).await;

    // The sessions survived on the promoted replica; joins and leaves on either edge
    // keep exact counts and reach every socket.
    assert_eq!(
        cli(promoted, &["ZCARD", &live_key]).as_deref(),
        Ok("3"),
        "the promoted replica holds the sessions"
    );
    live.wait_for_viewers(&name, 3, 5 * SECOND).await;
    let on_a2 = Viewer::connect(&base_a, &id).await;
    on_b.until_count(4, 5 * SECOND).await;
    on_a.until_count(4, 5 * SECOND).await;
    live.wait_for_viewers(&name, 4, 5 * SECOND).await;
    on_b2.close().await;
    on_a.until_count(3, 5 * SECOND).await;
    on_b.until_count(3, 5 * SECOND).await;
    live.wait_for_viewers(&name, 3, 5 * SECOND).await;
    let (quiet, _) = live.create_stream("no viewers").await;
    assert_eq!(
        batch_counts(&live, &[&name, &quiet.name, &name]).await,
        [(3, 4), (0, 0), (3, 4)],
        "(count, peak) of streams in different slots, in request order"
    );

    // The subscriptions of both control planes live on the master serving the events
    // channel's slot. Unless that was the master just killed, kill it too: the
    // subscribers must find the channel again on its promoted replica.
    let subscribed_on = cluster
        .master_of(&format!("{prefix}:events"))
        .expect("the events channel's master");
    if subscribed_on == promoted {
        println!("the subscriptions' master was the stream's: one failover moved both");
    } else {
        fail_over(&cluster, subscribed_on, &control_planes).await;
    }
    on_a2.close().await;
    on_a.until_count(2, 5 * SECOND).await;
    on_b.until_count(2, 5 * SECOND).await;
    live.wait_for_viewers(&name, 2, 5 * SECOND).await;

    // The broadcast never depended on Redis: still ACTIVE, still on air; its end
    // reaches viewers on both edges.
    assert_eq!(live.get(&name).await.status(), StreamStatus::Active);
    still_on_air(&mut broadcast, 2 * SECOND, "across the failover").await;
    end_and_cut(&live, &name, &mut broadcast).await;
    on_a.next_of("stream_ended", 5 * SECOND).await;
    on_b.next_of("stream_ended", 5 * SECOND).await;

    edge_a.shutdown().await.expect("stop edge A");
    edge_b.shutdown().await.expect("stop edge B");
    replica.shutdown().await.expect("stop control plane B");
    live.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_on_streams_across_the_masters_heartbeat_expire_and_are_sampled() {
    let cluster = RedisCluster::start().await;
    let url = cluster.url();
    let ctx = TestContext::start_with(|c| {
        c.redis_url = url.as_str().into();
        c.session_ttl = 2 * SECOND;
        c.sample_interval = SECOND;
    })
    .await;
    wait_redis_serving(ctx.addr(), "the control plane", 10 * SECOND).await;
    let watcher = Watcher::start(&ctx.url(), &ctx.token).await;
    let mut streams = clients::streams(&ctx.url(), Some(&ctx.token), Some("alice")).await;
    let mut sessions = clients::sessions(&ctx.url(), &ctx.token).await;
    let mut ingest = clients::ingest(&ctx.url(), &ctx.token).await;

    // Live streams until every master serves at least one (their ids are random).
    let prefix = ctx.config.redis_prefix.clone();
    let mut names = Vec::new();
    let mut masters = HashSet::new();
    while masters.len() < 3 {
        assert!(names.len() < 40, "40 streams and still not on every master");
        let created = streams
            .create_stream(CreateStreamRequest {
                stream: Some(Stream {
                    title: format!("slot {}", names.len()),
                    ..Default::default()
                }),
            })
            .await
            .expect("CreateStream")
            .into_inner();
        // Live, so the sampler follows it.
        ingest
            .authorize_publish(AuthorizePublishRequest {
                stream_key: created.stream_key,
                ingest_node: "ingest-a".into(),
                origin_url: "http://127.0.0.1:8088".into(),
                client_id: names.len().to_string(),
                ..Default::default()
            })
            .await
            .expect("AuthorizePublish");
        let stream = created.stream.expect("stream");
        let key = format!("{prefix}:{{{}}}:live", stream.stream_id);
        masters.insert(cluster.master_of(&key).expect("the stream's master"));
        names.push(stream.name);
    }

    // Two viewers on each: one keeps heartbeating, one goes silent; and one on the
    // first stream who leaves.
    let join = |name: String, viewer: &'static str| {
        let mut sessions = sessions.clone();
        async move {
            sessions
                .join_session(JoinSessionRequest {
                    name,
                    viewer_id: viewer.into(),
                    kind: ViewerKind::Web.into(),
                    node: "edge-test".into(),
                })
                .await
                .expect("JoinSession")
                .into_inner()
                .session_id
        }
    };
    let mut kept = Vec::new();
    for name in &names {
        kept.push(join(name.clone(), "keeps").await);
        join(name.clone(), "silent").await;
    }
    let left = join(names[0].clone(), "leaves").await;
    sessions
        .leave_session(LeaveSessionRequest {
            session_id: left.clone(),
        })
        .await
        .expect("LeaveSession");
    // One batch over every stream (one script per stream, each on its own master):
    // the ended and unknown sessions come back, in request order.
    let mut batch = kept.clone();
    batch.insert(1, left.clone());
    batch.insert(3, "never-existed".into());
    let expired = sessions
        .heartbeat(HeartbeatRequest { session_ids: batch })
        .await
        .expect("Heartbeat")
        .into_inner()
        .expired_session_ids;
    assert_eq!(expired, [left, "never-existed".to_owned()]);

    // The sweeper drops the silent sessions once their TTL passes and publishes each
    // stream's new count; the kept ones stay (heartbeated every half second here).
    let mut beat = Instant::now();
    let swept = Instant::now();
    wait::until(
        "every stream's silent session to be swept",
        15 * SECOND,
        || {
            let mut sessions = sessions.clone();
            let kept = kept.clone();
            let due = beat.elapsed() >= SECOND / 2;
            if due {
                beat = Instant::now();
            }
            // Each stream's counts so far: 2 (after joins, and the first stream's
            // leave, coalesced), then 1.
            let seen: Vec<Vec<i64>> = names.iter().map(|n| watcher.counts(n)).collect();
            async move {
                if due {
                    let gone = sessions
                        .heartbeat(HeartbeatRequest { session_ids: kept })
                        .await
                        .map_err(|e| e.to_string())?
                        .into_inner()
                        .expired_session_ids;
                    if !gone.is_empty() {
                        panic!("heartbeated sessions expired: {gone:?}");
                    }
                }
                if seen.iter().all(|c| c.ends_with(&[2, 1])) {
                    Ok(())
                } else {
                    Err(format!("counts {seen:?}"))
                }
            }
        },
    )
    .await;
    println!(
        "silent sessions of {} streams on 3 masters swept {:.1} s after the batched heartbeat (TTL 2 s)",
        names.len(),
        swept.elapsed().as_secs_f64()
    );
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let counts = batch_counts_at(&ctx.url(), &ctx.token, &refs).await;
    assert_eq!(counts[0], (1, 3), "the first stream peaked at three");
    assert!(counts[1..].iter().all(|c| *c == (1, 2)), "{counts:?}");

    // The sampler persists every stream's figures from its own slot.
    for (i, name) in names.iter().enumerate() {
        let viewers = if i == 0 { 3 } else { 2 };
        wait::until(
            &format!("{name}'s figures to be persisted"),
            10 * SECOND,
            || async {
                match persisted(&ctx, name).await {
                    Some((peak, uniques, _)) if (peak, uniques) == (viewers, viewers) => Ok(()),
                    other => Err(format!("(peak, uniques, watch ms) {other:?}")),
                }
            },
        )
        .await;
    }
}
