//! SessionService, EventService and AnalyticsService against real PostgreSQL and
//! Redis: counts, expiry, coalesced events across replicas, resume, metrics.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    missing_docs
)]

use std::time::Duration;

use nova_proto::v1::{
    AuthorizePublishRequest, CreateStreamRequest, EndStreamRequest, GetStreamMetricsRequest,
    GetViewerCountRequest, HeartbeatRequest, JoinSessionRequest, LeaveSessionRequest,
    PublishEndedRequest, Stream, StreamEvent, ViewerKind, WatchEventsRequest, stream_event::Kind,
};
use nova_tests::{TestContext, clients, wait};
use tokio::time::Instant;
use tonic::{Code, Streaming};

struct World {
    ctx: TestContext,
    streams: clients::Streams,
    sessions: clients::Sessions,
    events: clients::Events,
}

impl World {
    async fn start(adjust: impl FnOnce(&mut nova_control_plane::Config)) -> Self {
        let ctx = TestContext::start_with(adjust).await;
        Self {
            streams: clients::streams(&ctx.url(), Some(&ctx.token), Some("alice")).await,
            sessions: clients::sessions(&ctx.url(), &ctx.token).await,
            events: clients::events(&ctx.url(), &ctx.token).await,
            ctx,
        }
    }

    async fn create(&mut self) -> (Stream, String) {
        let r = self
            .streams
            .create_stream(CreateStreamRequest {
                stream: Some(Stream {
                    title: "watched".into(),
                    ..Default::default()
                }),
            })
            .await
            .unwrap()
            .into_inner();
        (r.stream.unwrap(), r.stream_key)
    }

    async fn join(&mut self, name: &str, viewer: &str) -> (String, i64) {
        let r = self
            .sessions
            .join_session(JoinSessionRequest {
                name: name.into(),
                viewer_id: viewer.into(),
                kind: ViewerKind::Web.into(),
                node: "edge-test".into(),
            })
            .await
            .unwrap()
            .into_inner();
        (r.session_id, r.viewer_count)
    }

    async fn figures(&mut self, name: &str) -> (i64, i64, i64) {
        let r = self
            .sessions
            .get_viewer_count(GetViewerCountRequest { name: name.into() })
            .await
            .unwrap()
            .into_inner();
        (r.viewer_count, r.peak_viewers, r.unique_viewers)
    }

    async fn watch(
        &mut self,
        name: &str,
        after: &str,
    ) -> Streaming<nova_proto::v1::WatchEventsResponse> {
        self.events
            .watch_events(WatchEventsRequest {
                name: name.into(),
                after_cursor: after.into(),
            })
            .await
            .unwrap()
            .into_inner()
    }

    async fn go_live(&mut self, key: &str) {
        let mut ingest = clients::ingest(&self.ctx.url(), &self.ctx.token).await;
        ingest
            .authorize_publish(AuthorizePublishRequest {
                stream_key: key.into(),
                ingest_node: "ingest-a".into(),
                origin_url: "http://127.0.0.1:8088".into(),
                client_id: "1".into(),
                ..Default::default()
            })
            .await
            .unwrap();
    }
}

/// Returns the next event, failing after `timeout`.
async fn next(
    watch: &mut Streaming<nova_proto::v1::WatchEventsResponse>,
    timeout: Duration,
    what: &str,
) -> StreamEvent {
    tokio::time::timeout(timeout, watch.message())
        .await
        .unwrap_or_else(|_| panic!("no event within {timeout:?} while waiting for {what}"))
        .expect("watch stream failed")
        .expect("watch stream ended")
        .event
        .expect("event")
}

/// Returns the next viewer count, skipping other events.
async fn next_count(
    watch: &mut Streaming<nova_proto::v1::WatchEventsResponse>,
    timeout: Duration,
) -> i64 {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if let Some(Kind::ViewerCountChanged(c)) =
            next(watch, left, "viewer_count_changed").await.kind
        {
            return c.viewer_count;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn joins_leaves_and_heartbeats_keep_exact_counts() {
    let mut w = World::start(|_| {}).await;
    let (stream, _) = w.create().await;
    let (s1, c1) = w.join(&stream.name, "viewer-a").await;
    let (_s2, c2) = w.join(&stream.name, "viewer-a").await;
    let (s3, c3) = w.join(&stream.name, "viewer-b").await;
    assert_eq!((c1, c2, c3), (1, 2, 3));
    assert_eq!(
        w.figures(&stream.name).await,
        (3, 3, 2),
        "count, peak, uniques"
    );

    let left = w
        .sessions
        .leave_session(LeaveSessionRequest {
            session_id: s1.clone(),
        })
        .await
        .unwrap();
    assert_eq!(left.into_inner().viewer_count, 2);
    // Leaving twice is fine.
    w.sessions
        .leave_session(LeaveSessionRequest {
            session_id: s1.clone(),
        })
        .await
        .unwrap();
    assert_eq!(w.figures(&stream.name).await, (2, 3, 2));

    let beat = w
        .sessions
        .heartbeat(HeartbeatRequest {
            session_ids: vec![s3.clone(), s1.clone(), "never-existed".into()],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        beat.expired_session_ids,
        vec![s1, "never-existed".to_owned()]
    );
    assert!(beat.expire_time.is_some());

    // Bad input and unknown or finished streams.
    let err = w
        .sessions
        .join_session(JoinSessionRequest {
            name: "streams/x".into(),
            node: "n".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), err.message()),
        (Code::InvalidArgument, "name: stream_id must be a UUID")
    );
    let unknown = format!("streams/{}", uuid::Uuid::now_v7());
    let err = w
        .sessions
        .join_session(JoinSessionRequest {
            name: unknown,
            node: "n".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    w.streams
        .end_stream(EndStreamRequest {
            name: stream.name.clone(),
        })
        .await
        .unwrap();
    let err = w
        .sessions
        .join_session(JoinSessionRequest {
            name: stream.name.clone(),
            node: "n".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    let err = w
        .sessions
        .heartbeat(HeartbeatRequest {
            session_ids: vec!["x".repeat(65)],
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_expire_by_themselves_and_watchers_see_the_count_fall() {
    let mut w = World::start(|c| c.session_ttl = Duration::from_secs(1)).await;
    let (stream, _) = w.create().await;
    let mut watch = w.watch(&stream.name, "").await;
    w.join(&stream.name, "a").await;
    w.join(&stream.name, "b").await;
    // The first change goes out at once, the second after the coalescing window.
    let mut last = next_count(&mut watch, Duration::from_secs(2)).await;
    if last != 2 {
        last = next_count(&mut watch, Duration::from_secs(2)).await;
    }
    assert_eq!(last, 2);
    // Nobody heartbeats: the sweeper drops both sessions once their TTL passes, in one
    // sweep, or in two when a sweep falls between their expiries (joins far apart on a
    // loaded machine).
    let mut count = next_count(&mut watch, Duration::from_secs(5)).await;
    if count == 1 {
        count = next_count(&mut watch, Duration::from_secs(5)).await;
    }
    assert_eq!(count, 0);
    assert_eq!(w.figures(&stream.name).await, (0, 2, 2));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_watcher_on_one_replica_sees_counts_caused_on_another_within_2s() {
    let mut w = World::start(|_| {}).await;
    let replica = w.ctx.replica().await;
    let (stream, _) = w.create().await;
    let mut watch = w.watch(&stream.name, "").await;
    let mut sessions_b = clients::sessions(&format!("http://{}", replica.addr), &w.ctx.token).await;
    let sent = Instant::now();
    let joined = sessions_b
        .join_session(JoinSessionRequest {
            name: stream.name.clone(),
            node: "edge-b".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(next_count(&mut watch, Duration::from_secs(2)).await, 1);
    println!(
        "viewer_count_changed across replicas after {:.1} ms",
        sent.elapsed().as_secs_f64() * 1000.0
    );
    sessions_b
        .leave_session(LeaveSessionRequest {
            session_id: joined.session_id,
        })
        .await
        .unwrap();
    assert_eq!(next_count(&mut watch, Duration::from_secs(2)).await, 0);
    replica.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn watch_events_replays_after_a_cursor_then_tails_without_loss_or_duplicates() {
    let mut w = World::start(|_| {}).await;
    let (stream, key) = w.create().await;
    let mut all = w.watch("", "").await;
    w.go_live(&key).await;
    let started = next(&mut all, Duration::from_secs(2), "stream_started").await;
    let Some(Kind::StreamStarted(s)) = started.kind else {
        panic!("{started:?}")
    };
    assert!(!s.resumed);
    assert_eq!(started.name, stream.name);
    let first_cursor = started.cursor.clone();
    assert!(!first_cursor.is_empty());

    // Things happen while nobody with a cursor watches.
    let mut ingest = clients::ingest(&w.ctx.url(), &w.ctx.token).await;
    ingest
        .publish_ended(PublishEndedRequest {
            stream_key: key.clone(),
            ingest_node: "ingest-a".into(),
            client_id: "1".into(),
        })
        .await
        .unwrap();
    w.go_live(&key).await;

    // Resume after the first event: the log replays the two that followed, then live.
    let mut resumed = w.watch(&stream.name, &first_cursor).await;
    let ended = next(
        &mut resumed,
        Duration::from_secs(2),
        "replayed stream_ended",
    )
    .await;
    assert!(
        matches!(ended.kind, Some(Kind::StreamEnded(ref e)) if e.reason == "publisher_disconnected"),
        "{ended:?}"
    );
    let restarted = next(
        &mut resumed,
        Duration::from_secs(2),
        "replayed stream_started",
    )
    .await;
    assert!(
        matches!(restarted.kind, Some(Kind::StreamStarted(ref s)) if s.resumed),
        "{restarted:?}"
    );
    let replayed_cursor: i64 = restarted.cursor.parse().unwrap();
    w.streams
        .end_stream(EndStreamRequest {
            name: stream.name.clone(),
        })
        .await
        .unwrap();
    let live = next(&mut resumed, Duration::from_secs(2), "live stream_ended").await;
    assert!(
        matches!(live.kind, Some(Kind::StreamEnded(ref e)) if e.reason == "ended_by_owner"),
        "{live:?}"
    );
    assert!(live.cursor.parse::<i64>().unwrap() > replayed_cursor);

    // The live-only watcher saw the same four lifecycle events in order.
    let mut kinds = vec!["started".to_owned()];
    while kinds.len() < 4 {
        let e = next(&mut all, Duration::from_secs(2), "lifecycle events").await;
        match e.kind {
            Some(Kind::StreamStarted(_)) => kinds.push("started".into()),
            Some(Kind::StreamEnded(x)) => kinds.push(format!("ended:{}", x.reason)),
            _ => {}
        }
    }
    assert_eq!(
        kinds,
        [
            "started",
            "ended:publisher_disconnected",
            "started",
            "ended:ended_by_owner"
        ]
    );

    let err = w
        .events
        .watch_events(WatchEventsRequest {
            name: String::new(),
            after_cursor: "abc".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sampler_feeds_get_stream_metrics() {
    let mut w = World::start(|c| c.sample_interval = Duration::from_millis(200)).await;
    let (stream, key) = w.create().await;
    w.go_live(&key).await;
    w.join(&stream.name, "a").await;
    w.join(&stream.name, "b").await;
    let mut analytics = clients::analytics(&w.ctx.url(), &w.ctx.token).await;
    let report = wait::until("samples with two viewers", Duration::from_secs(10), || {
        let mut analytics = analytics.clone();
        let name = stream.name.clone();
        async move {
            let r = analytics
                .get_stream_metrics(GetStreamMetricsRequest {
                    name,
                    step: Some(prost_types::Duration {
                        seconds: 1,
                        nanos: 0,
                    }),
                    ..Default::default()
                })
                .await
                .map_err(|e| e.to_string())?
                .into_inner();
            if r.points.iter().any(|p| p.viewers == 2) {
                Ok(r)
            } else {
                Err(format!("{:?}", r.points))
            }
        }
    })
    .await;
    let summary = report.summary.unwrap();
    assert_eq!((summary.peak_viewers, summary.unique_viewers), (2, 2));
    assert!(summary.duration.unwrap().seconds >= 0);
    let times: Vec<_> = report
        .points
        .iter()
        .map(|p| p.time.unwrap().seconds)
        .collect();
    assert!(
        times.windows(2).all(|t| t[1] - t[0] >= 1),
        "one point per 1 s step, ordered: {times:?}"
    );

    let err = analytics
        .get_stream_metrics(GetStreamMetricsRequest {
            name: stream.name.clone(),
            step: Some(prost_types::Duration {
                seconds: 0,
                nanos: 1_000,
            }),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), err.message()),
        (Code::InvalidArgument, "step: must be at least 1 s")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn event_log_positions_commit_in_order_so_a_cursor_never_skips_one() {
    use diesel::sql_types::BigInt;
    use diesel_async::RunQueryDsl;
    use nova_control_plane::db::events;

    #[derive(diesel::QueryableByName, Debug)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }

    let mut w = World::start(|_| {}).await;
    let (stream, _) = w.create().await;
    let stream_id = uuid::Uuid::parse_str(&stream.stream_id).unwrap();
    let payload = serde_json::json!({});

    // A takes a log position and keeps its transaction open.
    let mut a = w.ctx.db().await;
    diesel::sql_query("BEGIN").execute(&mut a).await.unwrap();
    let (first, _) = events::append(&mut a, stream_id, "test_a", payload.clone())
        .await
        .unwrap();

    // B appends meanwhile; it must wait for A instead of committing a later position
    // first (a reader would then resume past A's and lose it).
    let mut b = w.ctx.db().await;
    let later = tokio::spawn(async move {
        diesel::sql_query("BEGIN").execute(&mut b).await.unwrap();
        let (cursor, _) = events::append(&mut b, stream_id, "test_b", payload)
            .await
            .unwrap();
        diesel::sql_query("COMMIT").execute(&mut b).await.unwrap();
        cursor
    });
    let ctx = &w.ctx;
    wait::until(
        "B to wait on the event-log lock",
        Duration::from_secs(5),
        || async move {
            let mut db = ctx.db().await;
            let waiting: Count = diesel::sql_query(format!(
                "SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted \
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
             AND ((classid::bigint << 32) | objid::bigint) = {}",
                events::EVENT_LOG_LOCK
            ))
            .get_result(&mut db)
            .await
            .map_err(|e| e.to_string())?;
            if waiting.n == 1 {
                Ok(())
            } else {
                Err(format!("{waiting:?}"))
            }
        },
    )
    .await;
    assert!(
        !later.is_finished(),
        "B committed while A's position was open"
    );

    diesel::sql_query("COMMIT").execute(&mut a).await.unwrap();
    let second = tokio::time::timeout(Duration::from_secs(5), later)
        .await
        .expect("B finished within 5 s of A's commit")
        .unwrap();
    assert!(
        second > first,
        "positions in commit order: {first} then {second}"
    );
}
