//! The control plane as the hooks see it: IngestService calls with the service
//! token, each bounded by the upstream timeout, refusals told apart from outages.
//! Heartbeats and disconnects are retried through short outages (a restart of the
//! control plane) with jittered exponential backoff, within a bounded total delay.

use std::{future::Future, path::Path, sync::Arc, time::Duration};

use backon::{ExponentialBuilder, Retryable};

use nova_runtime::grpc::{self, Bearer};

use nova_proto::v1::{
    AuthorizePublishRequest, GetPlaybackRulesRequest, GetPlaybackRulesResponse, HeartbeatRequest,
    IngestHealth, IngestHeartbeatRequest, JoinSessionRequest, LeaveSessionRequest,
    PublishEndedRequest, ReportIngestHealthRequest, ReportRecordingRequest, Stream, ViewerKind,
    ingest_service_client::IngestServiceClient, playback_service_client::PlaybackServiceClient,
    session_service_client::SessionServiceClient,
};
use tonic::{Code, Status, service::interceptor::InterceptedService, transport::Channel};

use crate::{
    callback::{Origin, StreamKey},
    error::HookError,
    outage::Outage,
};

/// Who this ingest node is, sent along with publish decisions.
#[derive(Debug, Clone)]
pub struct Node {
    /// Identifier of the node.
    pub id: String,
    /// Public base URL of its origin.
    pub origin_url: String,
    /// Whether it transcodes into renditions.
    pub abr: bool,
    /// Whether it records broadcasts of streams that record.
    pub recording: bool,
}

/// IngestService client.
#[derive(Clone)]
pub struct Upstream {
    /// The gRPC client; the channel connects lazily and reconnects by itself.
    client: IngestServiceClient<InterceptedService<Channel, Bearer>>,
    /// Viewer sessions of RTMP players, on the same channel.
    sessions: SessionServiceClient<InterceptedService<Channel, Bearer>>,
    /// Playback rules for the verifier, on the same channel.
    playback: PlaybackServiceClient<InterceptedService<Channel, Bearer>>,
    /// This node.
    node: Node,
    /// Deadline of each call, retries of heartbeats and disconnects included.
    timeout: Duration,
    /// The current control-plane outage: started by a call that got no answer, ended
    /// by any answer (a refusal included) to any call.
    outage: Arc<Outage>,
}

impl Upstream {
    /// Builds a client for `url`; no connection is made until the first call.
    pub fn new(
        url: &str,
        ca: Option<&Path>,
        token: &str,
        timeout: Duration,
        node: Node,
    ) -> anyhow::Result<Self> {
        let channel = grpc::endpoint(url, ca)
            .map_err(anyhow::Error::msg)?
            .connect_timeout(timeout)
            .timeout(timeout)
            .connect_lazy();
        let bearer = Bearer::new(token).map_err(|e| anyhow::anyhow!(e))?;
        Ok(Self {
            client: IngestServiceClient::with_interceptor(channel.clone(), bearer.clone()),
            sessions: SessionServiceClient::with_interceptor(channel.clone(), bearer.clone()),
            playback: PlaybackServiceClient::with_interceptor(channel, bearer)
                .max_decoding_message_size(MAX_RULES_BYTES),
            node,
            timeout,
            outage: Arc::default(),
        })
    }

    /// Returns the current control-plane outage, as these calls saw it.
    pub fn outage(&self) -> &Outage {
        &self.outage
    }

    /// Classifies a failed call; a refusal is an answer, so it ends an outage.
    fn failed(&self, status: Status) -> HookError {
        let err = classify(status);
        self.refused_is_an_answer(&err);
        err
    }

    /// Ends the outage when `err` is a refusal (the control plane answered).
    fn refused_is_an_answer(&self, err: &HookError) {
        if !matches!(err, HookError::Upstream(_)) {
            self.answered();
        }
    }

    /// Records an answer from the control plane.
    fn answered(&self) {
        if let Some(lasted) = self.outage.answered() {
            tracing::info!(
                outage.seconds = lasted.as_secs_f64(),
                "control plane answers again"
            );
        }
    }

    /// Returns this node.
    pub fn node(&self) -> &Node {
        &self.node
    }

    /// Asks whether `key` may publish; returns the stream (ACTIVE) when it may.
    pub async fn authorize(&self, key: &StreamKey, origin: &Origin) -> Result<Stream, HookError> {
        let response = self
            .client
            .clone()
            .authorize_publish(AuthorizePublishRequest {
                stream_key: key.expose().to_owned(),
                client_addr: origin.addr.clone(),
                app: origin.app.clone(),
                ingest_node: self.node.id.clone(),
                origin_url: self.node.origin_url.clone(),
                abr: self.node.abr,
                client_id: origin.client_id.clone(),
                recording: self.node.recording,
            })
            .await
            .map_err(|status| self.failed(status))
            .inspect(|_| self.answered())?;
        response
            .into_inner()
            .stream
            .ok_or_else(|| HookError::Upstream(Status::internal("answer without a stream")))
    }

    /// Reports that the broadcaster using `key` left.
    pub async fn publish_ended(
        &self,
        key: &StreamKey,
        origin: &Origin,
    ) -> Result<Option<Stream>, HookError> {
        let request = PublishEndedRequest {
            stream_key: key.expose().to_owned(),
            ingest_node: self.node.id.clone(),
            client_id: origin.client_id.clone(),
        };
        let response = retrying(self.timeout, || {
            let mut client = self.client.clone();
            let request = request.clone();
            async move { client.publish_ended(request).await.map_err(classify) }
        })
        .await
        .inspect(|_| self.answered())
        .inspect_err(|err| self.refused_is_an_answer(err))?;
        Ok(response.into_inner().stream)
    }

    /// Reports that the broadcaster using `key` is still here; `Ok(None)` means it may
    /// go on, `Ok(Some(reason))` that it must be cut off.
    pub async fn heartbeat(
        &self,
        key: &StreamKey,
        origin: &Origin,
    ) -> Result<Option<String>, HookError> {
        let request = IngestHeartbeatRequest {
            stream_key: key.expose().to_owned(),
            ingest_node: self.node.id.clone(),
            client_id: origin.client_id.clone(),
        };
        let answer = retrying(self.timeout, || {
            let mut client = self.client.clone();
            let request = request.clone();
            async move { client.ingest_heartbeat(request).await.map_err(classify) }
        })
        .await
        .inspect(|_| self.answered())
        .inspect_err(|err| self.refused_is_an_answer(err))?
        .into_inner();
        Ok((!answer.allowed).then_some(answer.reason))
    }

    /// Sends an ingest health reading of stream `name`.
    pub async fn report_health(&self, name: String, health: IngestHealth) -> Result<(), HookError> {
        self.client
            .clone()
            .report_ingest_health(ReportIngestHealthRequest {
                name,
                ingest_node: self.node.id.clone(),
                health: Some(health),
            })
            .await
            .map_err(|status| self.failed(status))
            .inspect(|_| self.answered())?;
        Ok(())
    }
}

impl Upstream {
    /// Starts a viewer session for an RTMP player of stream `name`; returns its id.
    pub async fn join_player(&self, name: String) -> Result<String, HookError> {
        let answer = self
            .sessions
            .clone()
            .join_session(JoinSessionRequest {
                name,
                viewer_id: String::new(),
                kind: ViewerKind::Rtmp.into(),
                node: self.node.id.clone(),
            })
            .await
            .map_err(|status| self.failed(status))
            .inspect(|_| self.answered())?;
        Ok(answer.into_inner().session_id)
    }

    /// Starts the viewer session of a token's session `sid` on stream `name`;
    /// returns its id, or `None` when the stream is at its viewer cap (the control
    /// plane checks the cap and joins in one step, and records nothing for a
    /// refused viewer).
    pub async fn join_playback(
        &self,
        name: String,
        sid: String,
    ) -> Result<Option<String>, HookError> {
        let answer = self
            .sessions
            .clone()
            .join_session(JoinSessionRequest {
                name,
                viewer_id: sid,
                kind: ViewerKind::Playback.into(),
                node: self.node.id.clone(),
            })
            .await;
        match answer {
            Ok(answer) => {
                self.answered();
                Ok(Some(answer.into_inner().session_id))
            }
            Err(status) if status.code() == Code::ResourceExhausted => {
                self.answered();
                Ok(None)
            }
            Err(status) => Err(self.failed(status)),
        }
    }

    /// Keeps many sessions alive; returns the ones that had expired.
    pub async fn renew_sessions(&self, session_ids: Vec<String>) -> Result<Vec<String>, HookError> {
        let answer = self
            .sessions
            .clone()
            .heartbeat(HeartbeatRequest { session_ids })
            .await
            .map_err(|status| self.failed(status))
            .inspect(|_| self.answered())?;
        Ok(answer.into_inner().expired_session_ids)
    }

    /// Keeps an RTMP player's session alive.
    pub async fn renew_player(&self, session_id: String) -> Result<(), HookError> {
        self.sessions
            .clone()
            .heartbeat(HeartbeatRequest {
                session_ids: vec![session_id],
            })
            .await
            .map_err(|status| self.failed(status))
            .inspect(|_| self.answered())?;
        Ok(())
    }

    /// Ends an RTMP player's session.
    pub async fn leave_player(&self, session_id: String) -> Result<(), HookError> {
        self.sessions
            .clone()
            .leave_session(LeaveSessionRequest { session_id })
            .await
            .map_err(|status| self.failed(status))
            .inspect(|_| self.answered())?;
        Ok(())
    }
}

impl Upstream {
    /// Hands a recorded piece of `stream`, stored as `object_key`, over to the
    /// control plane; `Ok(true)` when an asset took it, `Ok(false)` when nothing
    /// wants it.
    pub async fn report_recording(
        &self,
        stream: uuid::Uuid,
        object_key: &str,
        size_bytes: u64,
        started_at: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool, HookError> {
        let answer = self
            .client
            .clone()
            .report_recording(ReportRecordingRequest {
                name: format!("{}{stream}", nova_proto::STREAM_NAME_PREFIX),
                ingest_node: self.node.id.clone(),
                object_key: object_key.to_owned(),
                size_bytes: i64::try_from(size_bytes).unwrap_or(i64::MAX),
                start_time: Some(prost_types::Timestamp {
                    seconds: started_at.timestamp(),
                    nanos: 0,
                }),
            })
            .await
            .map_err(|status| self.failed(status))
            .inspect(|_| self.answered())?;
        Ok(answer.into_inner().accepted)
    }
}

/// Largest GetPlaybackRules answer read (every key and signed stream of the
/// platform; tonic's default of 4 MiB is about 30 000 streams).
pub const MAX_RULES_BYTES: usize = 64 * 1024 * 1024;

impl Upstream {
    /// Reads the rules the playback verifier checks tokens against.
    pub async fn playback_rules(&self) -> Result<GetPlaybackRulesResponse, HookError> {
        let answer = self
            .playback
            .clone()
            .get_playback_rules(GetPlaybackRulesRequest {})
            .await
            .map_err(|status| self.failed(status))
            .inspect(|_| self.answered())?;
        Ok(answer.into_inner())
    }
}

/// Tells refusals (the answer is "no") from outages (no answer).
fn classify(status: Status) -> HookError {
    match status.code() {
        Code::PermissionDenied
        | Code::NotFound
        | Code::InvalidArgument
        | Code::FailedPrecondition => HookError::Refused(status.message().to_owned()),
        _ => HookError::Upstream(status),
    }
}

/// Runs `call`, again on outages (never on refusals) with jittered exponential
/// backoff from 50 ms, until it answers or `deadline` has passed, so nginx gets its
/// answer in time whatever the control plane does.
async fn retrying<T, F, Fut>(deadline: Duration, call: F) -> Result<T, HookError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, HookError>>,
{
    let backoff = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(50))
        .with_max_delay(Duration::from_millis(400))
        .with_jitter()
        .without_max_times()
        .with_total_delay(Some(deadline));
    let attempts = call
        .retry(backoff)
        .sleep(tokio::time::sleep)
        .when(|err| matches!(err, HookError::Upstream(_)));
    tokio::time::timeout(deadline, attempts)
        .await
        .unwrap_or_else(|_| {
            Err(HookError::Upstream(Status::deadline_exceeded(
                "no answer from the control plane in time",
            )))
        })
}
