//! Services whose methods are not built yet: every call answers UNIMPLEMENTED
//! (the generated default stubs), but they are listed by reflection.

use nova_proto::v1::{
    analytics_service_server::AnalyticsService, event_service_server::EventService,
    session_service_server::SessionService,
};

/// Placeholder implementation answering UNIMPLEMENTED.
#[derive(Debug, Clone, Copy)]
pub struct Pending;

#[tonic::async_trait]
impl SessionService for Pending {}

#[tonic::async_trait]
impl AnalyticsService for Pending {}

#[tonic::async_trait]
impl EventService for Pending {}
