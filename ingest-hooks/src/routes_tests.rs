//! Handler-level properties of the router: whatever body arrives on whichever
//! `/rtmp/*` path, no publish is authorised while the control plane refuses every
//! key or cannot be reached. The control plane is a local stub (or a closed port).

use std::{
    net::SocketAddr,
    sync::atomic::{AtomicUsize, Ordering},
};

use axum::{
    body::Body,
    http::{Request, StatusCode},
};
use clap::Parser;
use nova_proto::v1::{
    AuthorizePublishRequest, AuthorizePublishResponse, IngestHeartbeatRequest,
    IngestHeartbeatResponse, PublishEndedRequest, PublishEndedResponse, ReportIngestHealthRequest,
    ReportIngestHealthResponse, ReportRecordingRequest, ReportRecordingResponse,
    ingest_service_server::{IngestService, IngestServiceServer},
};
use proptest::{prelude::*, test_runner::TestRunner};
use tonic::{Request as GrpcRequest, Response as GrpcResponse, Status};
use tower::ServiceExt;

use super::*;
use crate::{
    callback::Kind,
    config::Config,
    metrics::HooksMetrics,
    playback::{PlaybackRules, viewers::Viewers},
    state::Recording,
    upstream::{Node, Upstream},
};

/// A control plane that refuses every call the way a real one refuses a bad key.
struct Refuses;

/// How many publishes reached [`Refuses`]: the property must be exercised there.
static ASKED: AtomicUsize = AtomicUsize::new(0);

fn no<T>() -> Result<GrpcResponse<T>, Status> {
    Err(Status::permission_denied("stream key not recognised"))
}

#[tonic::async_trait]
impl IngestService for Refuses {
    async fn authorize_publish(
        &self,
        _: GrpcRequest<AuthorizePublishRequest>,
    ) -> Result<GrpcResponse<AuthorizePublishResponse>, Status> {
        ASKED.fetch_add(1, Ordering::Relaxed);
        no()
    }
    async fn publish_ended(
        &self,
        _: GrpcRequest<PublishEndedRequest>,
    ) -> Result<GrpcResponse<PublishEndedResponse>, Status> {
        no()
    }
    async fn ingest_heartbeat(
        &self,
        _: GrpcRequest<IngestHeartbeatRequest>,
    ) -> Result<GrpcResponse<IngestHeartbeatResponse>, Status> {
        no()
    }
    async fn report_ingest_health(
        &self,
        _: GrpcRequest<ReportIngestHealthRequest>,
    ) -> Result<GrpcResponse<ReportIngestHealthResponse>, Status> {
        no()
    }
    async fn report_recording(
        &self,
        _: GrpcRequest<ReportRecordingRequest>,
    ) -> Result<GrpcResponse<ReportRecordingResponse>, Status> {
        no()
    }
}

/// Serves [`Refuses`] on a loopback port; returns its URL.
async fn refusing_control_plane() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(IngestServiceServer::new(Refuses))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    format!("http://{addr}")
}

/// Returns the URL of a loopback port nobody listens on.
async fn unreachable_control_plane() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    format!("http://{}", listener.local_addr().unwrap())
}

fn router_for(control_plane: &str) -> Router {
    let config = Config::try_parse_from([
        "nova-ingest-hooks",
        "--service-token",
        "unit-test-token",
        "--control-plane-url",
        control_plane,
        "--upstream-timeout",
        "1s",
        "--publish-failures",
        "1000000",
        "--stat-url",
        "",
    ])
    .unwrap();
    let node = Node {
        id: "unit".into(),
        origin_url: "http://127.0.0.1:8080".into(),
        abr: false,
        recording: false,
    };
    let upstream = Upstream::new(
        control_plane,
        None,
        "unit-test-token",
        config.upstream_timeout,
        node,
    )
    .unwrap();
    router(AppState::new(
        config,
        upstream,
        HooksMetrics::new().unwrap(),
        PlaybackRules::default(),
        Viewers::default(),
        Recording::default(),
    ))
}

/// Every path under `/rtmp/`: each kind's, the playback check's, and unknown ones.
fn paths() -> impl Strategy<Value = String> {
    let mut known: Vec<String> = Kind::ALL.iter().map(|k| k.path().to_owned()).collect();
    known.extend(["/rtmp/playback", "/rtmp/connect", "/rtmp/PUBLISH"].map(String::from));
    prop_oneof![
        2 => Just(Kind::Publish.path().to_owned()),
        3 => prop::sample::select(known),
        1 => "[a-z_]{0,12}".prop_map(|p| format!("/rtmp/{p}")),
    ]
}

/// Arbitrary bytes, arbitrary forms, and nginx-like publish bodies with an arbitrary
/// name and arbitrary appended arguments (so some reach the control plane).
fn bodies() -> impl Strategy<Value = Vec<u8>> {
    let field = "[a-zA-Z%0-9_]{0,10}";
    let value = "[ -~]{0,40}";
    prop_oneof![
        1 => prop::collection::vec(any::<u8>(), 0..400),
        1 => prop::collection::vec((field, value), 0..12).prop_map(|pairs| {
            form_urlencoded::Serializer::new(String::new())
                .extend_pairs(pairs)
                .finish()
                .into_bytes()
        }),
        2 => (
            "[a-zA-Z0-9_-]{1,60}|[ -~]{0,80}",
            prop::collection::vec((field, value), 0..4)
        )
            .prop_map(|(name, extra)| {
                let mut body = form_urlencoded::Serializer::new(String::new());
                body.extend_pairs([
                    ("app", "live"),
                    ("flashver", "FMLE/3.0"),
                    ("swfurl", ""),
                    ("tcurl", "rtmp://127.0.0.1/live"),
                    ("pageurl", ""),
                    ("addr", "203.0.113.7"),
                    ("clientid", "9"),
                    ("call", "publish"),
                    ("name", name.as_str()),
                    ("type", "live"),
                ]);
                let mut body = body.finish();
                for (k, v) in extra {
                    body.push_str(&format!("&{k}={v}"));
                }
                body.into_bytes()
            }),
    ]
}

async fn answer(router: &Router, path: &str, body: Vec<u8>) -> (StatusCode, bool) {
    let mut request = Request::post(path)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(body))
        .unwrap();
    request
        .extensions_mut()
        .insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40000))));
    let response = router.clone().oneshot(request).await.unwrap();
    let located = response.headers().contains_key("location");
    (response.status(), located)
}

/// Runs the property against a refusing control plane, or an unreachable one.
fn never_authorises(refusing: bool) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let router = runtime.block_on(async {
        let url = if refusing {
            refusing_control_plane().await
        } else {
            unreachable_control_plane().await
        };
        router_for(&url)
    });
    let mut runner = TestRunner::new(ProptestConfig {
        cases: 512,
        ..ProptestConfig::default()
    });
    runner
        .run(&(paths(), bodies()), |(path, body)| {
            let (status, located) = runtime.block_on(answer(&router, &path, body));
            prop_assert!(
                !status.is_redirection() && !located,
                "{path} redirected ({status})"
            );
            if path == Kind::Publish.path() {
                prop_assert!(!status.is_success(), "a publish was authorised ({status})");
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn no_body_on_any_path_authorises_a_publish_the_control_plane_refuses() {
    never_authorises(true);
    let asked = ASKED.load(Ordering::Relaxed);
    assert!(
        asked > 10,
        "only {asked} generated publishes reached the control plane"
    );
}

#[test]
fn no_body_on_any_path_authorises_a_publish_while_the_control_plane_is_unreachable() {
    never_authorises(false);
}
