//! IngestService and the lifecycle, called directly over gRPC (as ingest-hooks does):
//! authorise, heartbeat, disconnect, resume, reaper, health.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use nova_proto::v1::{
    AuthorizePublishRequest, CreateStreamRequest, EndStreamRequest, GetStreamRequest, IngestHealth,
    IngestHeartbeatRequest, PublishEndedRequest, Rendition, ReportIngestHealthRequest,
    RotateStreamKeyRequest, Stream, StreamStatus,
};
use nova_tests::{TestContext, clients, events, wait};
use tonic::Code;

const NODE: &str = "ingest-a";
const ORIGIN: &str = "http://127.0.0.1:8080";
const CLIENT: &str = "17";

struct World {
    ctx: TestContext,
    streams: clients::Streams,
    ingest: clients::Ingest,
}

impl World {
    async fn start(adjust: impl FnOnce(&mut nova_control_plane::Config)) -> Self {
        let ctx = TestContext::start_with(adjust).await;
        let streams = clients::streams(&ctx.url(), Some(&ctx.token), Some("alice")).await;
        let ingest = clients::ingest(&ctx.url(), &ctx.token).await;
        Self {
            ctx,
            streams,
            ingest,
        }
    }

    async fn create(&mut self) -> (Stream, String) {
        let created = self
            .streams
            .create_stream(CreateStreamRequest {
                stream: Some(Stream {
                    title: "live".into(),
                    ..Default::default()
                }),
            })
            .await
            .unwrap()
            .into_inner();
        (created.stream.unwrap(), created.stream_key)
    }

    async fn authorize(&mut self, key: &str) -> Result<(Stream, bool), tonic::Status> {
        self.authorize_as(key, CLIENT).await
    }

    async fn authorize_as(
        &mut self,
        key: &str,
        client: &str,
    ) -> Result<(Stream, bool), tonic::Status> {
        self.ingest
            .authorize_publish(AuthorizePublishRequest {
                stream_key: key.into(),
                client_addr: "127.0.0.1".into(),
                app: "live".into(),
                ingest_node: NODE.into(),
                origin_url: ORIGIN.into(),
                abr: false,
                client_id: client.into(),
                recording: false,
            })
            .await
            .map(|r| {
                let r = r.into_inner();
                (r.stream.unwrap(), r.resumed)
            })
    }

    async fn heartbeat(&mut self, key: &str) -> (bool, String) {
        self.heartbeat_as(key, CLIENT).await
    }

    async fn heartbeat_as(&mut self, key: &str, client: &str) -> (bool, String) {
        let r = self
            .ingest
            .ingest_heartbeat(IngestHeartbeatRequest {
                stream_key: key.into(),
                ingest_node: NODE.into(),
                client_id: client.into(),
            })
            .await
            .unwrap()
            .into_inner();
        (r.allowed, r.reason)
    }

    async fn ended(&mut self, key: &str) -> Stream {
        self.ended_as(key, CLIENT).await
    }

    async fn ended_as(&mut self, key: &str, client: &str) -> Stream {
        self.ingest
            .publish_ended(PublishEndedRequest {
                stream_key: key.into(),
                ingest_node: NODE.into(),
                client_id: client.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .stream
            .unwrap()
    }

    async fn get(&mut self, name: &str) -> Stream {
        self.streams
            .get_stream(GetStreamRequest { name: name.into() })
            .await
            .unwrap()
            .into_inner()
            .stream
            .unwrap()
    }

    async fn kinds(&self, stream: &Stream) -> Vec<String> {
        let mut db = self.ctx.db().await;
        events::of_stream(&mut db, &stream.stream_id)
            .await
            .into_iter()
            .map(|e| format!("{} {}", e.kind, e.payload))
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn publish_disconnect_resume_and_owner_end_write_one_event_per_transition() {
    let mut w = World::start(|_| {}).await;
    let (stream, key) = w.create().await;

    let (live, resumed) = w.authorize(&key).await.unwrap();
    assert_eq!(live.status(), StreamStatus::Active);
    assert!(!resumed);
    assert_eq!(live.ingest_node, NODE);
    let playback = live.playback.clone().unwrap();
    assert_eq!(
        playback.hls_url,
        format!("{ORIGIN}/hls/{}.m3u8", stream.stream_id)
    );
    assert_eq!(
        playback.dash_url,
        format!("{ORIGIN}/dash/{}.mpd", stream.stream_id)
    );
    assert!(live.start_time.is_some());
    // nginx retries: a duplicate on_publish changes nothing.
    let (again, resumed) = w.authorize(&key).await.unwrap();
    assert_eq!((again.status(), resumed), (StreamStatus::Active, false));
    assert_eq!(again.start_time, live.start_time);

    assert_eq!(w.heartbeat(&key).await, (true, String::new()));

    let interrupted = w.ended(&key).await;
    assert_eq!(interrupted.status(), StreamStatus::Interrupted);
    assert!(interrupted.reconnect_deadline.is_some());
    assert_eq!(interrupted.ingest_node, "");
    let twice = w.ended(&key).await;
    assert_eq!(twice.status(), StreamStatus::Interrupted);

    let (resumed_stream, resumed) = w.authorize(&key).await.unwrap();
    assert_eq!(
        (resumed_stream.status(), resumed),
        (StreamStatus::Active, true)
    );
    assert_eq!(
        resumed_stream.name, stream.name,
        "resume keeps the same stream"
    );
    assert_eq!(resumed_stream.start_time, live.start_time);

    w.streams
        .end_stream(EndStreamRequest {
            name: stream.name.clone(),
        })
        .await
        .unwrap();
    let (allowed, reason) = w.heartbeat(&key).await;
    assert!(!allowed);
    assert_eq!(reason, "the stream has ended");
    let err = w.authorize(&key).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    // A late on_publish_done after the end changes nothing.
    assert_eq!(w.ended(&key).await.status(), StreamStatus::Completed);

    let hls = format!("{ORIGIN}/hls/{}.m3u8", stream.stream_id);
    let dash = format!("{ORIGIN}/dash/{}.mpd", stream.stream_id);
    let started = |resumed: bool| {
        format!(
            r#"stream_started {{"resumed": {resumed}, "playback": {{"hls_url": "{hls}", "dash_url": "{dash}", "hls_master_url": ""}}}}"#
        )
    };
    assert_eq!(
        w.kinds(&stream).await,
        vec![
            started(false),
            r#"stream_ended {"reason": "publisher_disconnected", "status": "interrupted"}"#
                .to_owned(),
            started(true),
            r#"stream_ended {"reason": "ended_by_owner", "status": "completed"}"#.to_owned(),
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_malformed_and_rotated_keys_are_refused() {
    let mut w = World::start(|_| {}).await;
    let (stream, key) = w.create().await;
    let wrong = format!("sk_live_{}", "A".repeat(43));
    for bad in [wrong.as_str(), "", "sk_live_short", "not a key at all"] {
        let err = w.authorize(bad).await.unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied, "{bad:?}");
        assert!(!err.message().contains("sk_live_"), "{}", err.message());
        assert!(!w.heartbeat(bad).await.0, "{bad:?}");
    }

    w.authorize(&key).await.unwrap();
    w.streams
        .rotate_stream_key(RotateStreamKeyRequest {
            name: stream.name.clone(),
        })
        .await
        .unwrap();
    let (allowed, reason) = w.heartbeat(&key).await;
    assert!(!allowed, "the old key must be cut off");
    assert_eq!(reason, "the stream key was rotated or is unknown");
    assert_eq!(
        w.authorize(&key).await.unwrap_err().code(),
        Code::PermissionDenied
    );

    let bad_node = w
        .ingest
        .authorize_publish(AuthorizePublishRequest {
            stream_key: key.clone(),
            ingest_node: "bad node!".into(),
            client_id: CLIENT.into(),
            origin_url: ORIGIN.into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(bad_node.code(), Code::InvalidArgument);
    assert!(bad_node.message().starts_with("ingest_node: "));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_reaper_completes_after_the_window_and_interrupts_quiet_ingests() {
    let mut w = World::start(|c| {
        c.reconnect_window = Duration::from_secs(1);
        c.ingest_timeout = Duration::from_secs(1);
    })
    .await;

    // Broadcaster left: INTERRUPTED, then COMPLETED when the window closes.
    let (left, key) = w.create().await;
    w.authorize(&key).await.unwrap();
    w.ended(&key).await;
    let name = left.name.clone();
    wait::until(
        "the reaper to complete the stream",
        Duration::from_secs(10),
        || {
            let mut streams = w.streams.clone();
            let name = name.clone();
            async move {
                let s = streams
                    .get_stream(GetStreamRequest { name })
                    .await
                    .unwrap()
                    .into_inner()
                    .stream
                    .unwrap();
                if s.status() == StreamStatus::Completed {
                    Ok(s)
                } else {
                    Err(s.status())
                }
            }
        },
    )
    .await;
    assert_eq!(
        w.authorize(&key).await.unwrap_err().code(),
        Code::PermissionDenied
    );
    let kinds = w.kinds(&left).await;
    assert_eq!(kinds.len(), 3, "{kinds:?}");
    assert_eq!(
        kinds[2],
        r#"stream_ended {"reason": "reconnect_window_closed", "status": "completed"}"#
    );

    // Ingest went quiet (no updates, no publish_done): INTERRUPTED with ingest_lost.
    let (quiet, key) = w.create().await;
    w.authorize(&key).await.unwrap();
    wait_until_not_active(&w, &quiet.name).await;
    let kinds = w.kinds(&quiet).await;
    assert_eq!(
        kinds[1],
        r#"stream_ended {"reason": "ingest_lost", "status": "interrupted"}"#
    );
    let current = w.get(&quiet.name).await;
    assert!(matches!(
        current.status(),
        StreamStatus::Interrupted | StreamStatus::Completed
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn ingest_health_is_stored_and_quality_changes_are_logged_once() {
    let mut w = World::start(|_| {}).await;
    let (stream, key) = w.create().await;
    let health = |height: i32, kbps: i64| IngestHealth {
        bitrate_kbps: kbps,
        frame_rate: 25.0,
        width: 320,
        height,
        video_codec: "H264".into(),
        audio_codec: "AAC".into(),
        report_time: None,
        renditions: vec![Rendition {
            name: "src".into(),
            width: 320,
            height,
            bitrate_kbps: kbps,
        }],
    };
    let report = |h: IngestHealth| ReportIngestHealthRequest {
        name: stream.name.clone(),
        ingest_node: NODE.into(),
        health: Some(h),
    };
    let err = w
        .ingest
        .report_ingest_health(report(health(180, 350)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "not live yet");

    w.authorize(&key).await.unwrap();
    let quality_events = async |w: &World| {
        w.kinds(&stream)
            .await
            .into_iter()
            .filter(|k| k.starts_with("quality_changed"))
            .count()
    };
    // A steady broadcast whose bitrate wanders writes one quality_changed, the first.
    for kbps in [350, 16586, 16634, 16944, 0, 420] {
        w.ingest
            .report_ingest_health(report(health(180, kbps)))
            .await
            .unwrap();
    }
    assert_eq!(
        quality_events(&w).await,
        1,
        "bitrate alone is not a quality change"
    );
    let stored = w.get(&stream.name).await.ingest_health.unwrap();
    assert_eq!(
        stored.bitrate_kbps, 420,
        "the live bitrate is kept in ingest health"
    );

    // A new size is a change, and so is a new codec.
    w.ingest
        .report_ingest_health(report(health(240, 420)))
        .await
        .unwrap();
    let stored = w.get(&stream.name).await.ingest_health.unwrap();
    assert_eq!(
        (stored.width, stored.height, stored.bitrate_kbps),
        (320, 240, 420)
    );
    assert_eq!(stored.video_codec, "H264");
    assert!(stored.report_time.is_some());
    assert_eq!(quality_events(&w).await, 2);
    let mut hevc = health(240, 420);
    hevc.video_codec = "HEVC".into();
    w.ingest.report_ingest_health(report(hevc)).await.unwrap();
    assert_eq!(
        quality_events(&w).await,
        3,
        "a codec change is a quality change"
    );

    let mut bad = health(180, 350);
    bad.frame_rate = -1.0;
    let err = w
        .ingest
        .report_ingest_health(report(bad))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_connection_with_the_same_key_can_neither_publish_nor_end_the_stream() {
    let mut w = World::start(|_| {}).await;
    let (stream, key) = w.create().await;
    w.authorize_as(&key, "1").await.unwrap();

    let err = w.authorize_as(&key, "2").await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert_eq!(
        err.message(),
        "the stream is already live from another connection"
    );
    // nginx still sends publish_done and updates for the refused connection.
    assert_eq!(w.ended_as(&key, "2").await.status(), StreamStatus::Active);
    assert_eq!(
        w.heartbeat_as(&key, "2").await,
        (false, "another connection holds the stream".to_owned())
    );
    assert_eq!(w.heartbeat_as(&key, "1").await, (true, String::new()));
    let current = w.get(&stream.name).await;
    assert_eq!(current.status(), StreamStatus::Active);
    assert_eq!(
        w.kinds(&stream).await.len(),
        1,
        "only the first stream_started"
    );

    // The holder leaves; now the other connection may resume.
    w.ended_as(&key, "1").await;
    let (resumed, was_resumed) = w.authorize_as(&key, "2").await.unwrap();
    assert_eq!(
        (resumed.status(), was_resumed),
        (StreamStatus::Active, true)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_reaper_closes_more_streams_than_one_batch_holds() {
    let mut w = World::start(|c| {
        c.reconnect_window = Duration::from_secs(1);
    })
    .await;
    // More than two of the reaper's 25-stream batches.
    let mut names = Vec::new();
    for _ in 0..60 {
        let (stream, key) = w.create().await;
        w.authorize(&key).await.unwrap();
        w.ended(&key).await;
        names.push(stream.name);
    }
    let mut streams = w.streams.clone();
    wait::until(
        "the reaper to complete all 60 streams",
        Duration::from_secs(20),
        || {
            let mut streams = streams.clone();
            async move {
                let page = streams
                    .list_streams(nova_proto::v1::ListStreamsRequest {
                        statuses: vec![StreamStatus::Completed.into()],
                        page_size: 100,
                        ..Default::default()
                    })
                    .await
                    .unwrap()
                    .into_inner();
                if page.streams.len() == 60 {
                    Ok(())
                } else {
                    Err(page.streams.len())
                }
            }
        },
    )
    .await;
    for name in &names {
        let stream = streams
            .get_stream(GetStreamRequest { name: name.clone() })
            .await
            .unwrap()
            .into_inner()
            .stream
            .unwrap();
        assert_eq!(stream.status(), StreamStatus::Completed, "{name}");
    }
}

/// Waits until stream `name` is no longer ACTIVE; returns it.
async fn wait_until_not_active(w: &World, name: &str) -> Stream {
    let name = name.to_owned();
    wait::until(
        "the reaper to notice the quiet ingest",
        Duration::from_secs(10),
        || {
            let mut streams = w.streams.clone();
            let name = name.clone();
            async move {
                let s = streams
                    .get_stream(GetStreamRequest { name })
                    .await
                    .unwrap()
                    .into_inner()
                    .stream
                    .unwrap();
                if s.status() != StreamStatus::Active {
                    Ok(s)
                } else {
                    Err(s.status())
                }
            }
        },
    )
    .await
}

/// nginx sends a publisher's last on_update and its on_publish_done at nearly the same
/// time; when the update lands second it must not bring the stream back on air for a
/// connection that is gone (which also refused the broadcaster's reconnect as "already
/// live from another connection" until the reaper noticed the silence).
#[tokio::test(flavor = "multi_thread")]
async fn a_heartbeat_that_lands_after_publish_done_does_not_resume_the_stream() {
    let mut w = World::start(|c| c.reconnect_window = Duration::from_secs(60)).await;
    let (stream, key) = w.create().await;
    w.authorize_as(&key, "1").await.unwrap();
    assert_eq!(
        w.ended_as(&key, "1").await.status(),
        StreamStatus::Interrupted
    );

    let (allowed, reason) = w.heartbeat_as(&key, "1").await;
    assert!(
        !allowed,
        "a late update of a connection that left was allowed"
    );
    assert!(reason.contains("left"), "{reason}");
    let after = w.get(&stream.name).await;
    assert_eq!(after.status(), StreamStatus::Interrupted);
    assert_eq!(after.ingest_node, "", "nobody is publishing");

    // The broadcaster reconnects at once: a new connection, accepted as a resume.
    let (resumed, was_resumed) = w.authorize_as(&key, "2").await.unwrap();
    assert!(was_resumed);
    assert_eq!(resumed.status(), StreamStatus::Active);
    let kinds = w.kinds(&stream).await;
    assert_eq!(
        kinds.len(),
        3,
        "one start, one interruption, one resume: {kinds:?}"
    );
}

/// Silence (no publish_done) keeps the lost connection on record: its own late update
/// resumes the stream, another connection's does not; once that connection says it
/// left, not even its own late update does.
#[tokio::test(flavor = "multi_thread")]
async fn only_the_connection_declared_lost_can_heartbeat_its_stream_back() {
    let mut w = World::start(|c| {
        c.reconnect_window = Duration::from_secs(60);
        c.ingest_timeout = Duration::from_secs(1);
        c.ingest_lost_window = Duration::from_secs(60);
    })
    .await;

    let (stream, key) = w.create().await;
    w.authorize_as(&key, "1").await.unwrap();
    let lost = wait_until_not_active(&w, &stream.name).await;
    assert_eq!(lost.status(), StreamStatus::Interrupted);
    assert_eq!(
        lost.ingest_node, "",
        "an interrupted stream shows no ingest node"
    );

    let (allowed, _) = w.heartbeat_as(&key, "2").await;
    assert!(!allowed, "another connection's update resumed the stream");
    assert_eq!(w.heartbeat_as(&key, "1").await, (true, String::new()));
    assert_eq!(w.get(&stream.name).await.status(), StreamStatus::Active);

    // Lost again, then the connection reports it left: it is released.
    wait_until_not_active(&w, &stream.name).await;
    w.ended_as(&key, "1").await;
    let (allowed, reason) = w.heartbeat_as(&key, "1").await;
    assert!(
        !allowed,
        "a released connection's update resumed the stream"
    );
    assert!(reason.contains("left"), "{reason}");
    assert_eq!(
        w.get(&stream.name).await.status(),
        StreamStatus::Interrupted
    );
}
