//! PostgreSQL restarted under a live control plane (issue 10): a private PostgreSQL
//! (the shared one serves other tests) is stopped (fast mode: every session cut) for
//! 3 s and started again while a stream is live and viewers watch. The stream stays
//! ACTIVE with no spurious interruption, viewer heartbeats (Redis only) go on during
//! the outage, ingest heartbeats answer again once it is back, and a WatchEvents call
//! held open on a second replica receives every lifecycle event exactly once.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    missing_docs
)]

use std::time::Duration;

use nova_proto::v1::{
    AuthorizePublishRequest, CreateStreamRequest, EndStreamRequest, GetStreamRequest,
    HeartbeatRequest, IngestHeartbeatRequest, Stream, StreamStatus,
};
use nova_stack::{postgres::Postgres, wait::free_port};
use nova_tests::{
    TestContext,
    audience::{Audience, join},
    clients,
    context::Engines,
    events,
    figures::active_streams,
    private_redis::PrivateRedis,
    wait,
    watcher::Watcher,
};
use tokio::time::Instant;

const KEY_NODE: &str = "ingest-test";

/// A PostgreSQL server of this test's own, stopped when dropped.
struct PrivatePostgres {
    server: Postgres,
    _dir: tempfile::TempDir,
}

impl PrivatePostgres {
    fn start() -> Self {
        // Readable by the server's own user when the tests run as root.
        let dir = tempfile::Builder::new()
            .prefix("nova-pg-")
            .tempdir_in("/tmp")
            .expect("temp dir");
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .expect("chmod the temp dir");
        let server = Postgres::new(&dir.path().join("pg"), free_port().expect("free port"))
            .expect("find PostgreSQL");
        server.start().expect("start the private PostgreSQL");
        Self { server, _dir: dir }
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = self.server.stop();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_postgresql_restart_keeps_the_stream_active_and_events_exactly_once() {
    let pg = PrivatePostgres::start();
    let redis = PrivateRedis::started();
    let engines = Engines::at(pg.server.url("postgres"), redis.url());
    let mut ctx = TestContext::start_on(engines, |c| {
        c.sample_interval = Duration::from_secs(1);
        // Long enough that the row the audience's joins read is still cached below.
        c.stream_cache = Duration::from_secs(600);
    })
    .await;
    let replica = ctx.replica().await;
    let watcher = Watcher::start(&format!("http://{}", replica.addr), &ctx.token).await;
    let mut streams = clients::streams(&ctx.url(), Some(&ctx.token), Some("alice")).await;
    let mut ingest = clients::ingest(&ctx.url(), &ctx.ingest_token).await;
    let mut sessions = clients::sessions(&ctx.url(), &ctx.edge_token).await;

    let created = streams
        .create_stream(CreateStreamRequest {
            stream: Some(Stream {
                title: "a".into(),
                ..Default::default()
            }),
        })
        .await
        .expect("CreateStream")
        .into_inner();
    let (name, key) = (created.stream.unwrap().name, created.stream_key);
    ingest
        .authorize_publish(AuthorizePublishRequest {
            stream_key: key.clone(),
            client_addr: "127.0.0.1".into(),
            app: "live".into(),
            ingest_node: KEY_NODE.into(),
            origin_url: "http://127.0.0.1:8088".into(),
            abr: false,
            client_id: "client-a".into(),
            recording: false,
        })
        .await
        .expect("AuthorizePublish");
    let audience = Audience::start(
        &sessions,
        &ingest,
        &name,
        &["v1", "v2"],
        &key,
        Duration::from_secs(1),
    )
    .await;

    pg.server.stop().expect("stop PostgreSQL");
    let down = Instant::now();
    // Viewer heartbeats need Redis only: they go on while PostgreSQL is away, and so
    // does a join to a stream this replica read recently (its row is cached).
    let session = join(&mut sessions.clone(), &name, "v9").await;
    assert!(
        session.is_ok(),
        "JoinSession of a cached stream during the outage: {session:?}"
    );
    let beat = sessions
        .heartbeat(HeartbeatRequest {
            session_ids: vec!["unknown".into()],
        })
        .await;
    assert!(beat.is_ok(), "Heartbeat during the outage: {beat:?}");
    tokio::time::sleep(Duration::from_secs(3)).await; // the outage itself
    pg.server.start().expect("start PostgreSQL again");
    let outage = down.elapsed();

    let back = Instant::now();
    wait::until(
        "an ingest heartbeat answered again",
        Duration::from_secs(15),
        || {
            let mut ingest = ingest.clone();
            let key = key.clone();
            async move {
                ingest
                    .ingest_heartbeat(IngestHeartbeatRequest {
                        stream_key: key,
                        ingest_node: KEY_NODE.into(),
                        client_id: "client-a".into(),
                    })
                    .await
                    .map(|r| r.into_inner().allowed)
                    .map_err(|e| e.to_string())
                    .and_then(|allowed| {
                        if allowed {
                            Ok(())
                        } else {
                            Err("refused".into())
                        }
                    })
            }
        },
    )
    .await;
    let answered = back.elapsed();
    let failed = audience.stop();
    let stream = streams
        .get_stream(GetStreamRequest { name: name.clone() })
        .await
        .expect("GetStream")
        .into_inner();
    assert_eq!(stream.stream.unwrap().status(), StreamStatus::Active);
    let mut db = ctx.db().await;
    let id = name.trim_start_matches("streams/");
    let kinds: Vec<String> = events::of_stream(&mut db, id)
        .await
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(kinds, ["stream_started"], "no spurious interruption");

    streams
        .end_stream(EndStreamRequest { name: name.clone() })
        .await
        .expect("EndStream");
    watcher
        .assert_exactly_the_log(&mut db, Duration::from_secs(15))
        .await;
    assert_eq!(active_streams(&mut db).await, 0, "nothing stuck ACTIVE");
    println!(
        "PostgreSQL restart ({:.1} s down): ingest heartbeats answered again {:.2} s after it was back; {} heartbeats failed meanwhile; {} lifecycle events exactly once",
        outage.as_secs_f64(),
        answered.as_secs_f64(),
        failed.len(),
        watcher.lifecycle().len()
    );
    replica.shutdown().await.expect("stop replica B");
    ctx.shutdown().await.expect("stop the control plane");
}
