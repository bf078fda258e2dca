//! Authenticated gRPC clients for tests.

use nova_proto::v1::{
    CreateStreamRequest, Stream, analytics_service_client::AnalyticsServiceClient,
    event_service_client::EventServiceClient, ingest_service_client::IngestServiceClient,
    session_service_client::SessionServiceClient, stream_service_client::StreamServiceClient,
};
use tonic::{
    Request, Status,
    metadata::MetadataValue,
    service::interceptor::InterceptedService,
    transport::{Channel, Endpoint},
};

/// Adds the service token and, optionally, a principal to every call.
#[derive(Clone)]
pub struct Credentials {
    /// `authorization` value, if any.
    token: Option<String>,
    /// `x-nova-principal` value, if any.
    principal: Option<String>,
}

impl Credentials {
    /// Credentials with a token and a principal; either may be absent.
    pub fn new(token: Option<&str>, principal: Option<&str>) -> Self {
        Self {
            token: token.map(str::to_owned),
            principal: principal.map(str::to_owned),
        }
    }
}

impl tonic::service::Interceptor for Credentials {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(token) = &self.token {
            let value = MetadataValue::try_from(format!("Bearer {token}"))
                .map_err(|_| Status::internal("bad token"))?;
            request.metadata_mut().insert("authorization", value);
        }
        if let Some(principal) = &self.principal {
            let value = MetadataValue::try_from(principal.as_str())
                .map_err(|_| Status::internal("bad principal"))?;
            request.metadata_mut().insert("x-nova-principal", value);
        }
        Ok(request)
    }
}

/// A StreamService client with credentials.
pub type Streams = StreamServiceClient<InterceptedService<Channel, Credentials>>;

/// Connects to `url`.
pub async fn channel(url: &str) -> Channel {
    Endpoint::from_shared(url.to_owned())
        .expect("valid URL")
        .connect()
        .await
        .expect("connect to the control plane")
}

/// A StreamService client for `url` acting as `principal` with `token`.
pub async fn streams(url: &str, token: Option<&str>, principal: Option<&str>) -> Streams {
    StreamServiceClient::with_interceptor(channel(url).await, Credentials::new(token, principal))
}

/// Creates a stream titled `title` with `streams`' principal; returns it and its key.
pub async fn create_titled(streams: &mut Streams, title: &str) -> (Stream, String) {
    let created = streams
        .create_stream(CreateStreamRequest {
            stream: Some(Stream {
                title: title.into(),
                ..Default::default()
            }),
        })
        .await
        .expect("CreateStream")
        .into_inner();
    (
        created.stream.expect("the created stream"),
        created.stream_key,
    )
}

/// An IngestService client.
pub type Ingest = IngestServiceClient<InterceptedService<Channel, Credentials>>;

/// An IngestService client for `url` with `token`.
pub async fn ingest(url: &str, token: &str) -> Ingest {
    IngestServiceClient::with_interceptor(channel(url).await, Credentials::new(Some(token), None))
}

/// A SessionService client.
pub type Sessions = SessionServiceClient<InterceptedService<Channel, Credentials>>;

/// A SessionService client for `url` with `token`.
pub async fn sessions(url: &str, token: &str) -> Sessions {
    SessionServiceClient::with_interceptor(channel(url).await, Credentials::new(Some(token), None))
}

/// An EventService client.
pub type Events = EventServiceClient<InterceptedService<Channel, Credentials>>;

/// An EventService client for `url` with `token`.
pub async fn events(url: &str, token: &str) -> Events {
    EventServiceClient::with_interceptor(channel(url).await, Credentials::new(Some(token), None))
}

/// An AnalyticsService client.
pub type Analytics = AnalyticsServiceClient<InterceptedService<Channel, Credentials>>;

/// An AnalyticsService client for `url` with `token`.
pub async fn analytics(url: &str, token: &str) -> Analytics {
    AnalyticsServiceClient::with_interceptor(
        channel(url).await,
        Credentials::new(Some(token), None),
    )
}
