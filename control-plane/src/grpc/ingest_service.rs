//! `nova.streaming.v1.IngestService` over [`crate::service::ingest`].

use chrono::{DateTime, Utc};
use nova_proto::v1::{
    self, AuthorizePublishRequest, AuthorizePublishResponse, IngestHeartbeatRequest,
    IngestHeartbeatResponse, PublishEndedRequest, PublishEndedResponse, ReportIngestHealthRequest,
    ReportIngestHealthResponse, ReportRecordingRequest, ReportRecordingResponse,
    ingest_service_server::IngestService,
};
use tonic::{Request, Response, Status};

use crate::{
    error::Error,
    grpc::{convert::stream_to_proto, name::parse_stream_name},
    service::{
        events::Rendition,
        health::Health,
        ingest::{Ingest, PublishAttempt, Verdict},
        recording::{Piece, Recordings},
    },
    state::AppState,
};

/// gRPC face of the ingest rules.
pub struct IngestApi {
    /// The rules.
    ingest: Ingest,
    /// Recorded pieces.
    recordings: Recordings,
}

impl IngestApi {
    /// Builds the service from the shared state.
    pub fn new(state: &AppState) -> Self {
        Self {
            ingest: state.ingest().clone(),
            recordings: state.recordings().clone(),
        }
    }
}

#[tonic::async_trait]
impl IngestService for IngestApi {
    async fn authorize_publish(
        &self,
        request: Request<AuthorizePublishRequest>,
    ) -> Result<Response<AuthorizePublishResponse>, Status> {
        let req = request.into_inner();
        let attempt = PublishAttempt {
            node: req.ingest_node,
            client: req.client_id,
            origin_url: req.origin_url,
            abr: req.abr,
            recording: req.recording,
        };
        let (row, resumed) = self
            .ingest
            .authorize_publish(&req.stream_key, &attempt)
            .await?;
        Ok(Response::new(AuthorizePublishResponse {
            stream: Some(stream_to_proto(&row)),
            resumed,
        }))
    }

    async fn publish_ended(
        &self,
        request: Request<PublishEndedRequest>,
    ) -> Result<Response<PublishEndedResponse>, Status> {
        let req = request.into_inner();
        let row = self
            .ingest
            .publish_ended(&req.stream_key, &req.ingest_node, &req.client_id)
            .await?;
        Ok(Response::new(PublishEndedResponse {
            stream: Some(stream_to_proto(&row)),
        }))
    }

    async fn ingest_heartbeat(
        &self,
        request: Request<IngestHeartbeatRequest>,
    ) -> Result<Response<IngestHeartbeatResponse>, Status> {
        let req = request.into_inner();
        let verdict = self
            .ingest
            .heartbeat(&req.stream_key, &req.ingest_node, &req.client_id)
            .await?;
        Ok(Response::new(match verdict {
            Verdict::Allowed => IngestHeartbeatResponse {
                allowed: true,
                reason: String::new(),
            },
            Verdict::Denied(reason) => IngestHeartbeatResponse {
                allowed: false,
                reason: reason.into(),
            },
        }))
    }

    async fn report_ingest_health(
        &self,
        request: Request<ReportIngestHealthRequest>,
    ) -> Result<Response<ReportIngestHealthResponse>, Status> {
        let req = request.into_inner();
        let id = parse_stream_name("name", &req.name)?;
        let health = health_from_proto(
            req.health
                .ok_or_else(|| Error::invalid("health", "is required"))?,
        );
        self.ingest
            .report_health(id, &req.ingest_node, health)
            .await?;
        Ok(Response::new(ReportIngestHealthResponse {}))
    }

    async fn report_recording(
        &self,
        request: Request<ReportRecordingRequest>,
    ) -> Result<Response<ReportRecordingResponse>, Status> {
        let req = request.into_inner();
        let stream_id = parse_stream_name("name", &req.name)?;
        let started_at = req
            .start_time
            .and_then(|t| {
                DateTime::<Utc>::from_timestamp(t.seconds, u32::try_from(t.nanos).unwrap_or(0))
            })
            .ok_or_else(|| Error::invalid("start_time", "is required"))?;
        let accepted = self
            .recordings
            .report(&Piece {
                stream_id,
                node: req.ingest_node,
                object_key: req.object_key,
                size_bytes: req.size_bytes,
                started_at,
            })
            .await?;
        Ok(Response::new(ReportRecordingResponse { accepted }))
    }
}

/// Reads a health report; the service checks its figures and caps its text.
fn health_from_proto(h: v1::IngestHealth) -> Health {
    let report_time = h
        .report_time
        .and_then(|t| {
            DateTime::<Utc>::from_timestamp(t.seconds, u32::try_from(t.nanos).unwrap_or(0))
        })
        .unwrap_or_else(Utc::now);
    Health {
        bitrate_kbps: h.bitrate_kbps,
        frame_rate: h.frame_rate,
        width: h.width,
        height: h.height,
        video_codec: h.video_codec,
        audio_codec: h.audio_codec,
        renditions: h
            .renditions
            .into_iter()
            .map(|r| Rendition {
                name: r.name,
                width: r.width,
                height: r.height,
                bitrate_kbps: r.bitrate_kbps,
            })
            .collect(),
        report_time,
    }
}
