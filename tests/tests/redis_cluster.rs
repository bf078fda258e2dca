//! The control plane on a Redis Cluster (issue 11 item 3): a private 3-master +
//! 3-replica cluster, two control-plane replicas and an edge on each, a live
//! broadcast through nginx-rtmp. Viewers on both edges see exact counts (a count
//! caused through one replica reaches the other only through the cluster's pub/sub),
//! the stream's keys all live in one slot on the master that serves it, and after
//! that master is killed (SIGKILL) and its replica promoted, counts, events and the
//! broadcast go on. Then the master holding the control planes' subscriptions (the
//! events channel's slot) is killed too, unless it was the first one, and counts still
//! reach both edges.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    missing_docs
)]

use std::{net::SocketAddr, time::Duration};

use nova_proto::v1::{BatchGetViewerCountsRequest, StreamStatus};
use nova_tests::{
    clients,
    edge::{self, Viewer},
    live::{LiveOptions, LiveStack},
    on_air::{end_and_cut, on_air_with_id, still_on_air},
    redis_cluster::{RedisCluster, cli},
    wait,
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

/// Returns BatchGetViewerCounts' `(count, peak)` of `names`, in order (one pipeline
/// that the cluster client splits per node).
async fn batch_counts(live: &LiveStack, names: &[&str]) -> Vec<(i64, i64)> {
    clients::sessions(&live.ctx.url(), &live.ctx.token)
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
    config_b.control_plane_url = format!("http://{}", replica.addr);
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
