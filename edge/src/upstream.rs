//! The control plane as the edge sees it: gRPC clients that add the service token
//! and, for mutations, the principal; each call bounded by a deadline.

use std::{net::IpAddr, path::Path, time::Duration};

use nova_runtime::grpc::{self, Bearer};

use nova_proto::v1::{
    analytics_service_client::AnalyticsServiceClient, asset_service_client::AssetServiceClient,
    audit_service_client::AuditServiceClient, event_service_client::EventServiceClient,
    playback_service_client::PlaybackServiceClient, session_service_client::SessionServiceClient,
    stream_service_client::StreamServiceClient, webhook_service_client::WebhookServiceClient,
};
use tonic::{Request, Status, service::interceptor::InterceptedService, transport::Channel};

type Svc = InterceptedService<Channel, Bearer>;

/// Clients of every control-plane service, sharing one channel.
#[derive(Clone)]
pub struct Upstream {
    /// StreamService.
    pub streams: StreamServiceClient<Svc>,
    /// SessionService.
    pub sessions: SessionServiceClient<Svc>,
    /// AnalyticsService.
    pub analytics: AnalyticsServiceClient<Svc>,
    /// PlaybackService (tokens and signing keys).
    pub playback: PlaybackServiceClient<Svc>,
    /// AuditService (the audit trail).
    pub audit: AuditServiceClient<Svc>,
    /// WebhookService (the owner's endpoints).
    pub webhooks: WebhookServiceClient<Svc>,
    /// AssetService (recordings).
    pub assets: AssetServiceClient<Svc>,
    /// EventService (its channel has no deadline: WatchEvents is long-lived).
    pub events: EventServiceClient<Svc>,
    /// The channel, for health checks.
    pub channel: Channel,
}

/// Deadline of unary calls.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

impl Upstream {
    /// Builds the clients; connects lazily and reconnects by itself.
    pub fn new(url: &str, ca: Option<&Path>, token: &str) -> anyhow::Result<Self> {
        let endpoint = grpc::endpoint(url, ca)
            .map_err(anyhow::Error::msg)?
            .connect_timeout(Duration::from_secs(2));
        let channel = endpoint.clone().timeout(CALL_TIMEOUT).connect_lazy();
        let streaming = endpoint
            .http2_keep_alive_interval(Duration::from_secs(20))
            .connect_lazy();
        let bearer = Bearer::new(token).map_err(|e| anyhow::anyhow!(e))?;
        Ok(Self {
            streams: StreamServiceClient::with_interceptor(channel.clone(), bearer.clone()),
            sessions: SessionServiceClient::with_interceptor(channel.clone(), bearer.clone()),
            analytics: AnalyticsServiceClient::with_interceptor(channel.clone(), bearer.clone()),
            playback: PlaybackServiceClient::with_interceptor(channel.clone(), bearer.clone()),
            audit: AuditServiceClient::with_interceptor(channel.clone(), bearer.clone()),
            webhooks: WebhookServiceClient::with_interceptor(channel.clone(), bearer.clone()),
            assets: AssetServiceClient::with_interceptor(channel.clone(), bearer.clone()),
            events: EventServiceClient::with_interceptor(streaming, bearer),
            channel,
        })
    }
}

/// Metadata key carrying the end user's address to the control plane's audit trail.
const CLIENT_IP_HEADER: &str = "x-nova-client-ip";

/// Wraps `message` in a request acting for `principal`, whose client is at `client`
/// (as [`crate::ratelimit::ClientIp`] derives it: the peer, or the client a trusted
/// proxy names), for the control plane's audit trail.
pub fn as_principal<T>(message: T, principal: &str, client: IpAddr) -> Result<Request<T>, Status> {
    let mut request = Request::new(message);
    let value = principal
        .parse()
        .map_err(|_| Status::invalid_argument("sub: must be printable ASCII"))?;
    request.metadata_mut().insert("x-nova-principal", value);
    let ip = client
        .to_canonical()
        .to_string()
        .parse()
        .map_err(|_| Status::internal("a client address is not valid metadata"))?;
    request.metadata_mut().insert(CLIENT_IP_HEADER, ip);
    Ok(request)
}
