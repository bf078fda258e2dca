//! Least-privilege service credentials, attacked through the real control plane on
//! real PostgreSQL and Redis: each service token reaches only its role's methods,
//! only roles acting for users may name a principal, unknown tokens get nothing, and
//! ingest health is accepted only from the node holding the stream.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use nova_proto::v1::{
    AuthorizePublishRequest, CreateStreamRequest, EndStreamRequest, GetStreamMetricsRequest,
    GetStreamRequest, GetViewerCountRequest, HeartbeatRequest, IngestHealth,
    IngestHeartbeatRequest, JoinSessionRequest, LeaveSessionRequest, ListAssetsRequest,
    ListStreamsRequest, PublishEndedRequest, ReportIngestHealthRequest, ReportRecordingRequest,
    RotateStreamKeyRequest, Stream, StreamStatus, ViewerKind, WatchEventsRequest,
    analytics_service_client::AnalyticsServiceClient, asset_service_client::AssetServiceClient,
    event_service_client::EventServiceClient, ingest_service_client::IngestServiceClient,
    session_service_client::SessionServiceClient, stream_service_client::StreamServiceClient,
};
use nova_tests::{TestContext, clients, clients::Credentials, http};
use tonic::{Code, Status, service::interceptor::InterceptedService, transport::Channel};

const NODE: &str = "ingest-a";
const CLIENT: &str = "7";

type Ch = InterceptedService<Channel, Credentials>;

/// Every nova client, all sending the same token and principal.
struct Caller {
    streams: StreamServiceClient<Ch>,
    ingest: IngestServiceClient<Ch>,
    sessions: SessionServiceClient<Ch>,
    analytics: AnalyticsServiceClient<Ch>,
    events: EventServiceClient<Ch>,
    assets: AssetServiceClient<Ch>,
}

impl Caller {
    async fn new(ctx: &TestContext, token: &str, principal: Option<&str>) -> Self {
        let channel = clients::channel(&ctx.url()).await;
        let creds = Credentials::new(Some(token), principal);
        Self {
            streams: StreamServiceClient::with_interceptor(channel.clone(), creds.clone()),
            ingest: IngestServiceClient::with_interceptor(channel.clone(), creds.clone()),
            sessions: SessionServiceClient::with_interceptor(channel.clone(), creds.clone()),
            analytics: AnalyticsServiceClient::with_interceptor(channel.clone(), creds.clone()),
            assets: AssetServiceClient::with_interceptor(channel.clone(), creds.clone()),
            events: EventServiceClient::with_interceptor(channel, creds),
        }
    }
}

/// Every nova method (the batched viewer-count read is covered by the allowlist's
/// unit tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    CreateStream,
    GetStream,
    ListStreams,
    EndStream,
    RotateStreamKey,
    AuthorizePublish,
    PublishEnded,
    IngestHeartbeat,
    ReportIngestHealth,
    ReportRecording,
    JoinSession,
    Heartbeat,
    LeaveSession,
    GetViewerCount,
    GetStreamMetrics,
    WatchEvents,
    ListAssets,
}

use Method::*;

const ALL: [Method; 17] = [
    CreateStream,
    GetStream,
    ListStreams,
    EndStream,
    RotateStreamKey,
    AuthorizePublish,
    PublishEnded,
    IngestHeartbeat,
    ReportIngestHealth,
    ReportRecording,
    JoinSession,
    Heartbeat,
    LeaveSession,
    GetViewerCount,
    GetStreamMetrics,
    WatchEvents,
    ListAssets,
];

const INGEST_METHODS: [Method; 5] = [
    AuthorizePublish,
    PublishEnded,
    IngestHeartbeat,
    ReportIngestHealth,
    ReportRecording,
];

impl Method {
    fn path(self) -> String {
        let service = match self {
            CreateStream | GetStream | ListStreams | EndStream | RotateStreamKey => "StreamService",
            AuthorizePublish | PublishEnded | IngestHeartbeat | ReportIngestHealth
            | ReportRecording => "IngestService",
            JoinSession | Heartbeat | LeaveSession | GetViewerCount => "SessionService",
            GetStreamMetrics => "AnalyticsService",
            WatchEvents => "EventService",
            ListAssets => "AssetService",
        };
        format!("/nova.streaming.v1.{service}/{self:?}")
    }
}

/// The stream a call is about.
#[derive(Default)]
struct Target {
    name: String,
    key: String,
    session: String,
}

fn health(height: i32) -> IngestHealth {
    IngestHealth {
        bitrate_kbps: 900,
        frame_rate: 30.0,
        width: 640,
        height,
        video_codec: "H264".into(),
        audio_codec: "AAC".into(),
        ..Default::default()
    }
}

/// Calls `method` about `target` with well-formed arguments; a JoinSession stores
/// the session id in `target`.
async fn call(c: &mut Caller, method: Method, target: &mut Target) -> Result<(), Status> {
    let name = target.name.clone();
    let key = target.key.clone();
    match method {
        CreateStream => {
            c.streams
                .create_stream(CreateStreamRequest {
                    stream: Some(Stream {
                        title: "probe".into(),
                        ..Default::default()
                    }),
                })
                .await?;
        }
        GetStream => {
            c.streams.get_stream(GetStreamRequest { name }).await?;
        }
        ListStreams => {
            c.streams
                .list_streams(ListStreamsRequest::default())
                .await?;
        }
        EndStream => {
            c.streams.end_stream(EndStreamRequest { name }).await?;
        }
        RotateStreamKey => {
            let key = c
                .streams
                .rotate_stream_key(RotateStreamKeyRequest { name })
                .await?
                .into_inner()
                .stream_key;
            target.key = key;
        }
        AuthorizePublish => {
            c.ingest
                .authorize_publish(AuthorizePublishRequest {
                    stream_key: key,
                    client_addr: "127.0.0.1".into(),
                    app: "live".into(),
                    ingest_node: NODE.into(),
                    origin_url: "http://127.0.0.1:8088".into(),
                    abr: false,
                    client_id: CLIENT.into(),
                    recording: false,
                })
                .await?;
        }
        PublishEnded => {
            c.ingest
                .publish_ended(PublishEndedRequest {
                    stream_key: key,
                    ingest_node: NODE.into(),
                    client_id: CLIENT.into(),
                })
                .await?;
        }
        IngestHeartbeat => {
            let answer = c
                .ingest
                .ingest_heartbeat(IngestHeartbeatRequest {
                    stream_key: key,
                    ingest_node: NODE.into(),
                    client_id: CLIENT.into(),
                })
                .await?
                .into_inner();
            assert!(answer.allowed, "heartbeat refused: {}", answer.reason);
        }
        ReportIngestHealth => {
            c.ingest
                .report_ingest_health(ReportIngestHealthRequest {
                    name,
                    ingest_node: NODE.into(),
                    health: Some(health(360)),
                })
                .await?;
        }
        ReportRecording => {
            // The stream records nothing, so no asset takes the piece: an answer all the same.
            let id = name.trim_start_matches("streams/").to_owned();
            c.ingest
                .report_recording(ReportRecordingRequest {
                    name,
                    ingest_node: NODE.into(),
                    object_key: format!("recordings/{id}/ingest-a_1_c7.flv"),
                    size_bytes: 2048,
                    start_time: Some(prost_types::Timestamp::default()),
                })
                .await?;
        }
        ListAssets => {
            c.assets
                .list_assets(ListAssetsRequest {
                    stream: name,
                    ..Default::default()
                })
                .await?;
        }
        JoinSession => {
            target.session = c
                .sessions
                .join_session(JoinSessionRequest {
                    name,
                    kind: ViewerKind::Rtmp.into(),
                    node: NODE.into(),
                    ..Default::default()
                })
                .await?
                .into_inner()
                .session_id;
        }
        Heartbeat => {
            c.sessions
                .heartbeat(HeartbeatRequest {
                    session_ids: vec![target.session.clone()],
                })
                .await?;
        }
        LeaveSession => {
            c.sessions
                .leave_session(LeaveSessionRequest {
                    session_id: target.session.clone(),
                })
                .await?;
        }
        GetViewerCount => {
            c.sessions
                .get_viewer_count(GetViewerCountRequest { name })
                .await?;
        }
        GetStreamMetrics => {
            c.analytics
                .get_stream_metrics(GetStreamMetricsRequest {
                    name,
                    ..Default::default()
                })
                .await?;
        }
        WatchEvents => {
            c.events
                .watch_events(WatchEventsRequest {
                    name,
                    after_cursor: String::new(),
                })
                .await?;
        }
    }
    Ok(())
}

/// Asserts `method` is refused to `role` with the message naming both.
async fn assert_refused(c: &mut Caller, role: &str, method: Method, target: &mut Target) {
    let err = call(c, method, target)
        .await
        .expect_err(&format!("{role} may call {method:?}"));
    assert_eq!(err.code(), Code::PermissionDenied, "{method:?}: {err:?}");
    assert_eq!(
        err.message(),
        format!("service role `{role}` may not call {}", method.path()),
    );
}

/// Runs `methods` in order, each expected to succeed.
async fn assert_allowed(c: &mut Caller, role: &str, methods: &[Method], target: &mut Target) {
    for &method in methods {
        if let Err(err) = call(c, method, target).await {
            panic!("{role} could not call {method:?}: {err:?}");
        }
    }
}

/// Creates a stream owned by alice through the admin token.
async fn create(ctx: &TestContext) -> Target {
    let created = clients::streams(&ctx.url(), Some(&ctx.token), Some("alice"))
        .await
        .create_stream(CreateStreamRequest {
            stream: Some(Stream {
                title: "target".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner();
    Target {
        name: created.stream.unwrap().name,
        key: created.stream_key,
        session: String::new(),
    }
}

async fn get(ctx: &TestContext, name: &str) -> Stream {
    clients::streams(&ctx.url(), Some(&ctx.token), None)
        .await
        .get_stream(GetStreamRequest { name: name.into() })
        .await
        .unwrap()
        .into_inner()
        .stream
        .unwrap()
}

/// Returns the value of the refusal counter with these labels (0 when absent).
async fn refusals(ctx: &TestContext, role: &str, service: &str, reason: &str) -> u64 {
    let text = http::get(&ctx.metrics_url()).await.unwrap().text();
    let series = format!(
        r#"nova_streaming_grpc_auth_refusals_total{{reason="{reason}",role="{role}",service="nova.streaming.v1.{service}"}} "#
    );
    text.lines()
        .find_map(|l| l.strip_prefix(&series))
        .map_or(0, |v| v.trim().parse().unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_edge_token_reaches_its_methods_and_never_the_ingest_service() {
    let ctx = TestContext::start().await;
    let mut edge = Caller::new(&ctx, &ctx.edge_token, Some("alice")).await;
    let mut target = Target::default();
    assert_allowed(&mut edge, "edge", &[CreateStream], &mut target).await;
    let mut target = create(&ctx).await;

    for method in INGEST_METHODS {
        assert_refused(&mut edge, "edge", method, &mut target).await;
    }
    let stream = get(&ctx, &target.name).await;
    assert_eq!(stream.status(), StreamStatus::Pending, "the edge went live");
    assert!(stream.ingest_health.is_none());
    assert_eq!(
        refusals(&ctx, "edge", "IngestService", "method_not_allowed").await,
        5
    );

    // Live through the ingest token; then every edge method works.
    let mut ingest = Caller::new(&ctx, &ctx.ingest_token, None).await;
    assert_allowed(&mut ingest, "ingest", &[AuthorizePublish], &mut target).await;
    assert_allowed(
        &mut edge,
        "edge",
        &[
            GetStream,
            ListStreams,
            JoinSession,
            Heartbeat,
            GetViewerCount,
            LeaveSession,
            GetStreamMetrics,
            WatchEvents,
            ListAssets,
            RotateStreamKey,
            EndStream,
        ],
        &mut target,
    )
    .await;
    assert_eq!(
        get(&ctx, &target.name).await.status(),
        StreamStatus::Completed
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_ingest_token_can_neither_change_streams_nor_act_for_a_user() {
    let ctx = TestContext::start().await;
    let mut target = create(&ctx).await;
    let original_key = target.key.clone();
    let forbidden = [
        CreateStream,
        GetStream,
        ListStreams,
        EndStream,
        RotateStreamKey,
        GetViewerCount,
        GetStreamMetrics,
        WatchEvents,
        ListAssets,
    ];
    let mut ingest = Caller::new(&ctx, &ctx.ingest_token, None).await;
    for method in forbidden {
        assert_refused(&mut ingest, "ingest", method, &mut target).await;
    }
    // Naming a user changes nothing: stream methods stay closed, and even allowed
    // methods are refused with a principal.
    let mut as_alice = Caller::new(&ctx, &ctx.ingest_token, Some("alice")).await;
    for method in [CreateStream, EndStream, RotateStreamKey] {
        assert_refused(&mut as_alice, "ingest", method, &mut target).await;
    }
    for method in [AuthorizePublish, JoinSession] {
        let err = call(&mut as_alice, method, &mut target).await.unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied, "{method:?}");
        assert_eq!(
            err.message(),
            "service role `ingest` may not act for a user: send no x-nova-principal"
        );
    }
    assert_eq!(
        get(&ctx, &target.name).await.status(),
        StreamStatus::Pending
    );
    assert_eq!(
        refusals(&ctx, "ingest", "StreamService", "method_not_allowed").await,
        8
    );
    assert_eq!(
        refusals(&ctx, "ingest", "IngestService", "principal_not_allowed").await,
        1
    );

    // Its own methods work.
    assert_allowed(
        &mut ingest,
        "ingest",
        &[
            AuthorizePublish,
            IngestHeartbeat,
            ReportIngestHealth,
            ReportRecording,
            JoinSession,
            Heartbeat,
            LeaveSession,
            PublishEnded,
        ],
        &mut target,
    )
    .await;
    // Nothing it was refused happened: not ended, key not rotated, title kept.
    let stream = get(&ctx, &target.name).await;
    assert_eq!(stream.status(), StreamStatus::Interrupted);
    assert_eq!(stream.title, "target");
    assert_eq!(target.key, original_key);
    let mut admin = Caller::new(&ctx, &ctx.token, None).await;
    assert_allowed(&mut admin, "admin", &[AuthorizePublish], &mut target).await;
    assert_eq!(get(&ctx, &target.name).await.status(), StreamStatus::Active);
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_tokens_are_unauthenticated_everywhere_and_admin_may_do_everything() {
    let ctx = TestContext::start().await;
    let mut target = create(&ctx).await;
    let forged = format!("{}x", ctx.edge_token);
    let mut impostor = Caller::new(&ctx, &forged, Some("alice")).await;
    for method in ALL {
        let err = call(&mut impostor, method, &mut target)
            .await
            .expect_err(&format!("a forged token called {method:?}"));
        assert_eq!(err.code(), Code::Unauthenticated, "{method:?}");
        assert_eq!(err.message(), "invalid service token");
    }
    assert_eq!(
        refusals(&ctx, "none", "IngestService", "unauthenticated").await,
        5
    );

    let mut admin = Caller::new(&ctx, &ctx.token, Some("alice")).await;
    let order = [
        CreateStream,
        GetStream,
        ListStreams,
        AuthorizePublish,
        IngestHeartbeat,
        ReportIngestHealth,
        ReportRecording,
        JoinSession,
        Heartbeat,
        GetViewerCount,
        LeaveSession,
        GetStreamMetrics,
        WatchEvents,
        ListAssets,
        PublishEnded,
        RotateStreamKey,
        EndStream,
    ];
    assert_eq!(order.len(), ALL.len());
    assert_allowed(&mut admin, "admin", &order, &mut target).await;
    assert_eq!(
        get(&ctx, &target.name).await.status(),
        StreamStatus::Completed
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn only_the_holding_node_may_report_health_end_or_keep_a_stream() {
    let ctx = TestContext::start().await;
    let mut target = create(&ctx).await;
    let mut ingest = Caller::new(&ctx, &ctx.ingest_token, None).await;
    assert_allowed(&mut ingest, "ingest", &[AuthorizePublish], &mut target).await;

    for node in ["ingest-b", "ingest-a.evil", "ingest"] {
        let err = ingest
            .ingest
            .report_ingest_health(ReportIngestHealthRequest {
                name: target.name.clone(),
                ingest_node: node.into(),
                health: Some(health(1080)),
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied, "{node}");
        assert_eq!(err.message(), "the stream is held by another ingest node");
    }
    let stream = get(&ctx, &target.name).await;
    assert!(
        stream.ingest_health.is_none(),
        "a foreign report was stored"
    );

    // Heartbeats and disconnects from another node or connection change nothing
    // either (they were already checked against the holder).
    for (node, client) in [("ingest-b", CLIENT), (NODE, "8")] {
        let answer = ingest
            .ingest
            .ingest_heartbeat(IngestHeartbeatRequest {
                stream_key: target.key.clone(),
                ingest_node: node.into(),
                client_id: client.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert!(!answer.allowed, "{node}/{client} kept the stream alive");
        let stream = ingest
            .ingest
            .publish_ended(PublishEndedRequest {
                stream_key: target.key.clone(),
                ingest_node: node.into(),
                client_id: client.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .stream
            .unwrap();
        assert_eq!(stream.status(), StreamStatus::Active, "{node}/{client}");
    }

    // The holder's own report is stored.
    assert_allowed(&mut ingest, "ingest", &[ReportIngestHealth], &mut target).await;
    let stored = get(&ctx, &target.name).await.ingest_health.unwrap();
    assert_eq!((stored.width, stored.height), (640, 360));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_binary_refuses_unusable_role_tokens_naming_the_variable_never_the_token() {
    let admin = nova_tests::context::random_token();
    let cases = [
        (
            vec![("NOVA_EDGE_SERVICE_TOKEN", "too-short-edge".to_owned())],
            "NOVA_EDGE_SERVICE_TOKEN: every token needs at least 16 characters".to_owned(),
            "too-short-edge".to_owned(),
        ),
        (
            vec![("NOVA_INGEST_SERVICE_TOKEN", format!("{admin}, "))],
            "NOVA_SERVICE_TOKEN and NOVA_INGEST_SERVICE_TOKEN share a token: give each service its own"
                .to_owned(),
            admin.clone(),
        ),
        (
            vec![
                ("NOVA_EDGE_SERVICE_TOKEN", "edge-and-ingest-token-01".to_owned()),
                ("NOVA_INGEST_SERVICE_TOKEN", "edge-and-ingest-token-01".to_owned()),
            ],
            "NOVA_EDGE_SERVICE_TOKEN and NOVA_INGEST_SERVICE_TOKEN share a token".to_owned(),
            "edge-and-ingest-token-01".to_owned(),
        ),
    ];
    for (env, expected, secret) in cases {
        let mut command = tokio::process::Command::new(
            nova_stack::stack::sibling_binary("nova-control-plane").expect("binary built"),
        );
        command
            .env("NOVA_SERVICE_TOKEN", &admin)
            .env("NOVA_GRPC_ADDR", "127.0.0.1:0")
            .env("NOVA_METRICS_ADDR", "127.0.0.1:0")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .kill_on_drop(true);
        let out = tokio::time::timeout(std::time::Duration::from_secs(30), command.output())
            .await
            .unwrap_or_else(|_| panic!("{expected}: the binary did not exit within 30 s"))
            .unwrap();
        let log = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{expected}: it started\n{log}");
        assert!(log.contains(&expected), "wanted {expected:?} in\n{log}");
        assert!(!log.contains(&secret), "the error echoes a token:\n{log}");
    }
}
