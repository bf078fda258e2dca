//! Thin gRPC adapters: each turns requests into `service` calls and results into
//! protos. `routes` assembles every service, health and reflection.

pub mod analytics_service;
pub mod asset_service;
pub mod audit_service;
pub mod convert;
pub mod event_service;
pub mod ingest_service;
pub mod name;
pub mod playback_service;
pub mod session_service;
pub mod stream_service;
pub mod webhook_service;

use nova_proto::v1::{
    analytics_service_server::AnalyticsServiceServer, asset_service_server::AssetServiceServer,
    audit_service_server::AuditServiceServer, event_service_server::EventServiceServer,
    ingest_service_server::IngestServiceServer, playback_service_server::PlaybackServiceServer,
    session_service_server::SessionServiceServer, stream_service_server::StreamServiceServer,
    webhook_service_server::WebhookServiceServer,
};
use tonic::service::Routes;
use tonic_health::{
    pb::health_server::{Health, HealthServer},
    server::HealthReporter,
};

use crate::state::AppState;

/// Fully-qualified names of the nova services, as health and reflection list them.
pub const SERVICE_NAMES: [&str; 9] = [
    "nova.streaming.v1.StreamService",
    "nova.streaming.v1.IngestService",
    "nova.streaming.v1.SessionService",
    "nova.streaming.v1.AnalyticsService",
    "nova.streaming.v1.EventService",
    "nova.streaming.v1.PlaybackService",
    "nova.streaming.v1.AuditService",
    "nova.streaming.v1.WebhookService",
    "nova.streaming.v1.AssetService",
];

/// Builds the router: the nova services behind the token and allowlist check
/// ([`crate::auth`]), plus health and reflection (v1 and v1alpha, for older grpcurl)
/// open to all. Reflection also knows `google.rpc.*`, so clients can decode the error
/// details we send.
pub fn routes(
    state: &AppState,
    health: HealthServer<impl Health>,
    stop: crate::shutdown::Signal,
) -> anyhow::Result<Routes> {
    let auth = state.authenticator();
    let streams = StreamServiceServer::new(stream_service::StreamApi::new(state));
    let ingest = IngestServiceServer::new(ingest_service::IngestApi::new(state));
    let sessions = SessionServiceServer::new(session_service::SessionApi::new(state));
    let analytics = AnalyticsServiceServer::new(analytics_service::AnalyticsApi::new(state));
    let events = EventServiceServer::new(event_service::EventApi::new(state, stop));
    let playback = PlaybackServiceServer::new(playback_service::PlaybackApi::new(state));
    let audit = AuditServiceServer::new(audit_service::AuditApi::new(state));
    let webhooks = WebhookServiceServer::new(webhook_service::WebhookApi::new(state));
    let assets = AssetServiceServer::new(asset_service::AssetApi::new(state));
    let routes = Routes::default()
        .add_service(auth.guard(streams))
        .add_service(auth.guard(ingest))
        .add_service(auth.guard(sessions))
        .add_service(auth.guard(analytics))
        .add_service(auth.guard(events))
        .add_service(auth.guard(playback))
        .add_service(auth.guard(audit))
        .add_service(auth.guard(webhooks))
        .add_service(auth.guard(assets))
        .add_service(health)
        .add_service(reflection().build_v1()?)
        .add_service(reflection().build_v1alpha()?);
    Ok(routes)
}

fn reflection() -> tonic_reflection::server::Builder<'static> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(nova_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
}

/// Marks every nova service (and the server as a whole) SERVING.
pub async fn mark_serving(reporter: &HealthReporter) {
    reporter
        .set_service_status("", tonic_health::ServingStatus::Serving)
        .await;
    for name in SERVICE_NAMES {
        reporter
            .set_service_status(name, tonic_health::ServingStatus::Serving)
            .await;
    }
}

/// Marks every nova service NOT_SERVING, first thing on shutdown.
pub async fn mark_not_serving(reporter: &HealthReporter) {
    reporter
        .set_service_status("", tonic_health::ServingStatus::NotServing)
        .await;
    for name in SERVICE_NAMES {
        reporter
            .set_service_status(name, tonic_health::ServingStatus::NotServing)
            .await;
    }
}
