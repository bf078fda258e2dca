//! Faults of the engines under a live control plane (issue 10): Redis restarted
//! empty, Redis flushed, the control plane partitioned from PostgreSQL and from Redis
//! by a TCP proxy, a control plane started before Redis exists, and the edge's REST
//! read of a stream while Redis is down and after it returns. Each test has a
//! Redis of its own (the shared one serves other tests in parallel). Publish
//! decisions go on from PostgreSQL alone, a WatchEvents call held open on another
//! replica receives every lifecycle event exactly once and in order, viewer counts
//! converge within two heartbeat intervals, and analytics keep their figures.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    missing_docs
)]

use std::{sync::Arc, time::Duration};

use nova_proto::v1::{
    AuthorizePublishRequest, BatchJoinSessionsRequest, EndStreamRequest, GetViewerCountRequest,
    JoinSessionRequest, StreamStatus, ViewerKind,
};
use nova_tests::{
    TestContext,
    audience::{Audience, join},
    clients, edge,
    figures::{active_streams, persisted, redis_up, summary},
    live::{LiveOptions, LiveStack},
    on_air::{end_and_cut, on_air, still_on_air},
    private_redis::PrivateRedis,
    proxy::ChaosProxy,
    wait,
    watcher::Watcher,
};
use tokio::time::Instant;
use tonic::Code;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

/// Heartbeat period of the test's viewers and ingest node.
const HEARTBEAT: Duration = Duration::from_secs(1);

/// The world of one engine-fault test: a control plane (A) on a private Redis, a
/// second replica (B) holding the WatchEvents call, and clients of A.
struct World {
    ctx: TestContext,
    replica: nova_control_plane::ControlPlane,
    streams: clients::Streams,
    ingest: clients::Ingest,
    sessions: clients::Sessions,
}

impl World {
    async fn start(redis: &PrivateRedis) -> Self {
        let url = redis.url();
        let ctx = TestContext::start_with(|c| {
            c.redis_url = url.as_str().into();
            c.sample_interval = HEARTBEAT;
        })
        .await;
        let replica = ctx.replica().await;
        let streams = clients::streams(&ctx.url(), Some(&ctx.token), Some("alice")).await;
        let ingest = clients::ingest(&ctx.url(), &ctx.ingest_token).await;
        let sessions = clients::sessions(&ctx.url(), &ctx.edge_token).await;
        Self {
            ctx,
            replica,
            streams,
            ingest,
            sessions,
        }
    }

    fn replica_url(&self) -> String {
        format!("http://{}", self.replica.addr)
    }

    /// Creates a stream and admits a broadcaster on it; returns its name and key.
    async fn go_live(&mut self, title: &str) -> (String, String) {
        let (stream, key) = nova_tests::clients::create_titled(&mut self.streams, title).await;
        let name = stream.name;
        self.ingest
            .authorize_publish(AuthorizePublishRequest {
                stream_key: key.clone(),
                client_addr: "127.0.0.1".into(),
                app: "live".into(),
                ingest_node: "ingest-test".into(),
                origin_url: "http://127.0.0.1:8088".into(),
                abr: false,
                client_id: format!("client-{title}"),
                recording: false,
            })
            .await
            .expect("AuthorizePublish answers from PostgreSQL");
        (name, key)
    }

    async fn end(&mut self, name: &str) {
        self.streams
            .end_stream(EndStreamRequest { name: name.into() })
            .await
            .expect("EndStream");
    }

    /// Waits until GetViewerCount of `name` says `n`.
    async fn wait_for_count(&self, name: &str, n: i64, timeout: Duration) {
        wait::until(&format!("{name} to count {n} viewers"), timeout, || {
            let mut sessions = self.sessions.clone();
            let name = name.to_owned();
            async move {
                let count = sessions
                    .get_viewer_count(GetViewerCountRequest { name })
                    .await
                    .map_err(|e| e.to_string())?
                    .into_inner()
                    .viewer_count;
                if count == n {
                    Ok(())
                } else {
                    Err(count.to_string())
                }
            }
        })
        .await;
    }

    async fn shutdown(self) {
        self.replica.shutdown().await.expect("stop replica B");
        let mut ctx = self.ctx;
        ctx.shutdown().await.expect("stop the control plane");
    }
}

/// How Redis loses everything.
#[derive(Debug, Clone, Copy)]
enum Loss {
    /// Stopped for a few seconds and started again, empty.
    Restart,
    /// `FLUSHALL` while it runs.
    Flush,
}

/// Redis loses everything while a broadcaster is live and three viewers watch: publish
/// decisions go on (during the outage too), the watcher on replica B sees every
/// lifecycle event once and in order, counts converge, analytics keep their figures.
async fn redis_loses_everything(loss: Loss) {
    let redis = PrivateRedis::started();
    let mut world = World::start(&redis).await;
    let watcher = Watcher::start(&world.replica_url(), &world.ctx.token).await;
    let (a, key_a) = world.go_live("a").await;
    let audience = Audience::start(
        &world.sessions,
        &world.ingest,
        &a,
        &["v1", "v2", "v3"],
        &key_a,
        HEARTBEAT,
    )
    .await;
    world.wait_for_count(&a, 3, Duration::from_secs(10)).await;
    // The sampler persists a's figures once they hold more watch time than the two
    // viewers who stay can add between the loss and the end of the test.
    let before = wait::until(
        "a's figures persisted with 6 s of watch time",
        Duration::from_secs(15),
        || async {
            match persisted(&world.ctx, &a).await {
                Some(p) if p.0 == 3 && p.1 == 3 && p.2 >= 6000 => Ok(p),
                other => Err(other),
            }
        },
    )
    .await;

    audience.drop_viewer("v3");
    let b = match loss {
        Loss::Flush => {
            redis.flush_all();
            world.go_live("b").await.0
        }
        Loss::Restart => {
            redis.stop();
            // During the outage: stream CRUD and publish decisions from PostgreSQL; a
            // stream starts and ends, another starts; sessions answer UNAVAILABLE.
            let (c, _) = world.go_live("c").await;
            world.end(&c).await;
            let b = world.go_live("b").await.0;
            let refused = join(&mut world.sessions, &a, "v4").await.unwrap_err();
            assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
            tokio::time::sleep(Duration::from_secs(3)).await; // the outage itself
            redis.start();
            b
        }
    };
    let back = Instant::now();
    world
        .wait_for_count(&a, 2, HEARTBEAT * 2 + Duration::from_secs(2))
        .await;
    let converged = back.elapsed();
    // A new viewer after the loss: unique viewers are v1..v4 only if the persisted
    // HyperLogLog (v1, v2, v3) was merged back into Redis.
    join(&mut world.sessions, &a, "v4")
        .await
        .expect("JoinSession v4");
    world.end(&b).await;
    let failed = audience.stop();
    assert!(failed.is_empty(), "ingest heartbeats failed: {failed:?}");
    world.end(&a).await;
    watcher
        .assert_exactly_the_log(&mut world.ctx.db().await, Duration::from_secs(15))
        .await;

    let (peak, uniques, watch) = wait::until(
        "a's unique viewers to count v1..v4",
        Duration::from_secs(5),
        || async {
            let figures = summary(&world.ctx, &a).await;
            if figures.1 == 4 {
                Ok(figures)
            } else {
                Err(figures)
            }
        },
    )
    .await;
    assert_eq!(peak, 3, "the peak survives the loss");
    assert!(
        watch >= before.2,
        "watch time kept: {watch} ms, persisted before the loss {before:?}"
    );
    println!(
        "Redis {loss:?}: counts converged {:.2} s after Redis was back; peak {peak}, unique viewers {uniques}, watch time {} ms (persisted before the loss {} ms); {} lifecycle events exactly once",
        converged.as_secs_f64(),
        watch,
        before.2,
        watcher.lifecycle().len()
    );
    world.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_restarted_empty_loses_no_event_count_or_figure() {
    redis_loses_everything(Loss::Restart).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_flushed_loses_no_event_count_or_figure() {
    redis_loses_everything(Loss::Flush).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn partitions_from_postgresql_and_from_redis_keep_broadcasters_and_events() {
    const PARTITION: Duration = Duration::from_secs(10);
    let redis = PrivateRedis::started();
    let redis_proxy = ChaosProxy::start(Some(redis.addr())).await;
    let pg_proxy = Arc::new(ChaosProxy::start(None).await);
    let mut live = LiveStack::start(LiveOptions {
        database_proxy: Some(pg_proxy.clone()),
        redis_url: Some(format!("redis://{}/", redis_proxy.addr)),
        // Longer than the partition: silence caused by the partition is not a loss.
        ingest_timeout: Some(Duration::from_secs(15)),
        ..LiveOptions::default()
    })
    .await;
    // Replica B reaches both engines directly and holds the WatchEvents call.
    let mut b_config = live.ctx.config.clone();
    b_config.database_url = live.ctx.database_url.as_str().into();
    b_config.redis_url = redis.url().as_str().into();
    let replica = nova_control_plane::start(&b_config)
        .await
        .expect("start replica B");
    let watcher = Watcher::start(&format!("http://{}", replica.addr), &live.ctx.token).await;
    let (a, mut task_a) = on_air(&mut live, "a").await;

    pg_proxy.cut();
    still_on_air(&mut task_a, PARTITION, "while PostgreSQL was unreachable").await;
    pg_proxy.heal();
    still_on_air(
        &mut task_a,
        Duration::from_secs(3),
        "after PostgreSQL came back",
    )
    .await;
    assert_eq!(live.get(&a).await.status(), StreamStatus::Active);

    redis_proxy.cut();
    let cut = Instant::now();
    // Without Redis: a new broadcaster is admitted, then ended and cut off.
    let (c, mut task_c) = on_air(&mut live, "c").await;
    end_and_cut(&live, &c, &mut task_c).await;
    still_on_air(
        &mut task_a,
        PARTITION.saturating_sub(cut.elapsed()),
        "while Redis was unreachable",
    )
    .await;
    redis_proxy.heal();
    still_on_air(&mut task_a, Duration::from_secs(3), "after Redis came back").await;
    assert_eq!(live.get(&a).await.status(), StreamStatus::Active);

    end_and_cut(&live, &a, &mut task_a).await;
    let mut db = live.ctx.db().await;
    watcher
        .assert_exactly_the_log(&mut db, Duration::from_secs(15))
        .await;
    let kinds: Vec<String> = watcher
        .lifecycle()
        .into_iter()
        .filter(|e| e.1 != "quality_changed")
        .map(|(_, kind, name)| format!("{kind} {}", if name == a { "a" } else { "c" }))
        .collect();
    assert_eq!(
        kinds,
        [
            "stream_started a",
            "stream_started c",
            "stream_ended c",
            "stream_ended a"
        ],
        "no spurious interruption"
    );
    assert_eq!(active_streams(&mut db).await, 0, "nothing stuck ACTIVE");
    replica.shutdown().await.expect("stop replica B");
    live.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_control_plane_started_before_redis_becomes_ready_when_it_appears() {
    let redis = PrivateRedis::new();
    let mut world = World::start(&redis).await;
    let health = HealthClient::new(clients::channel(&world.ctx.url()).await);
    let status = |service: &'static str| {
        let mut health = health.clone();
        async move {
            health
                .check(HealthCheckRequest {
                    service: service.into(),
                })
                .await
                .map(|r| r.into_inner().status())
                .map_err(|e| e.to_string())
        }
    };
    assert_eq!(
        status("").await,
        Ok(ServingStatus::Serving),
        "the server serves"
    );
    assert_eq!(
        status("nova.redis").await,
        Ok(ServingStatus::NotServing),
        "Redis is named as the degraded part"
    );
    assert_eq!(redis_up(&world.ctx).await, "0");
    // Publish decisions and stream CRUD work; sessions answer UNAVAILABLE.
    let watcher = Watcher::start(&world.ctx.url(), &world.ctx.token).await;
    let (a, _) = world.go_live("a").await;
    let refused = join(&mut world.sessions, &a, "v1").await.unwrap_err();
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    // A batch of joins (an edge's crowd or rejoin) fails as a whole, so callers and
    // the gRPC error counters see the outage.
    let joins = ["v2", "v3"]
        .map(|viewer| JoinSessionRequest {
            name: a.clone(),
            viewer_id: viewer.into(),
            kind: ViewerKind::Web.into(),
            node: "edge-test".into(),
        })
        .to_vec();
    let refused = world
        .sessions
        .batch_join_sessions(BatchJoinSessionsRequest { joins })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");

    redis.start();
    wait::until(
        "health nova.redis SERVING",
        Duration::from_secs(10),
        || async {
            match status("nova.redis").await {
                Ok(ServingStatus::Serving) => Ok(()),
                other => Err(other),
            }
        },
    )
    .await;
    assert_eq!(redis_up(&world.ctx).await, "1");
    join(&mut world.sessions, &a, "v1")
        .await
        .expect("JoinSession once Redis is up");
    // The subscription is up too: the count change reaches the watcher.
    wait::until(
        "viewer_count_changed 1 for a",
        Duration::from_secs(10),
        || {
            let counts = watcher.counts(&a);
            async move {
                if counts.contains(&1) {
                    Ok(())
                } else {
                    Err(counts)
                }
            }
        },
    )
    .await;
    watcher
        .assert_exactly_the_log(&mut world.ctx.db().await, Duration::from_secs(5))
        .await;
    world.shutdown().await;
}

/// `GET /api/v1/streams/{id}` asks for the stream and its count at once: while Redis
/// is down it still answers 200 with the stream and a `null` count, and once Redis is
/// back (empty) the single-primary connections that broke are replaced and the count
/// is read again.
#[tokio::test(flavor = "multi_thread")]
async fn the_rest_read_of_a_stream_answers_while_redis_is_down_and_counts_again_after() {
    let redis = PrivateRedis::started();
    let mut world = World::start(&redis).await;
    let e = edge::start(&world.ctx, "edge-redis-down").await;
    let (name, _) = world.go_live("rest-read").await;
    let id = name
        .trim_start_matches(nova_proto::STREAM_NAME_PREFIX)
        .to_owned();
    let url = format!("http://{}/api/v1/streams/{id}", e.addr);
    let owner = edge::jwt("alice");
    // The owner's read is never served from the edge's anonymous cache.
    let read = || {
        let (url, owner) = (url.clone(), owner.clone());
        async move {
            let got = edge::call("GET", &url, Some(&owner), None).await;
            assert_eq!(
                got.status, 200,
                "the stream is read from PostgreSQL: {:?}",
                got.json
            );
            assert_eq!(got.json["stream"]["title"], "rest-read");
            got.json["stream"]["viewer_count"].clone()
        }
    };
    join(&mut world.sessions, &name, "v1")
        .await
        .expect("JoinSession");
    assert_eq!(read().await, 1);

    redis.stop();
    wait::until(
        "the count to read null while Redis is down",
        Duration::from_secs(10),
        || async {
            match read().await {
                serde_json::Value::Null => Ok(()),
                other => Err(other),
            }
        },
    )
    .await;

    redis.start();
    wait::until(
        "JoinSession once Redis is back",
        Duration::from_secs(10),
        || {
            let mut sessions = world.sessions.clone();
            let name = name.clone();
            async move {
                join(&mut sessions, &name, "v2")
                    .await
                    .map_err(|e| e.to_string())
            }
        },
    )
    .await;
    wait::until(
        "the count to read 1 again",
        Duration::from_secs(10),
        || async {
            match read().await {
                serde_json::Value::Number(n) if n.as_i64() == Some(1) => Ok(()),
                other => Err(other),
            }
        },
    )
    .await;
    e.shutdown().await.expect("stop the edge");
    world.shutdown().await;
}
