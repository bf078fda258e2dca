//! `nova.streaming.v1.SessionService` over [`crate::service::sessions`].

use futures::StreamExt;
use nova_proto::v1::{
    BatchGetViewerCountsRequest, BatchGetViewerCountsResponse, BatchJoinSessionsRequest,
    BatchJoinSessionsResponse, GetViewerCountRequest, GetViewerCountResponse, HeartbeatRequest,
    HeartbeatResponse, JoinResult, JoinSessionRequest, JoinSessionResponse, LeaveSessionRequest,
    LeaveSessionResponse, ViewerCount, ViewerKind as ProtoKind,
    session_service_server::SessionService,
};
use tonic::{Request, Response, Status};

use crate::{
    grpc::{convert::timestamp, name::parse_stream_name},
    service::sessions::{Sessions, ViewerKind},
    state::AppState,
};

/// Joins one BatchJoinSessions call may hold.
const MAX_BATCH_JOINS: usize = 1000;
/// Joins of one BatchJoinSessions call running at once (each is a Redis script).
const BATCH_JOIN_CONCURRENCY: usize = 16;

/// gRPC face of the session rules.
pub struct SessionApi {
    /// The rules.
    sessions: Sessions,
}

impl SessionApi {
    /// Builds the service from the shared state.
    pub fn new(state: &AppState) -> Self {
        Self {
            sessions: state.sessions().clone(),
        }
    }

    /// Starts one session as JoinSession asks; the error is the call's status.
    async fn join(&self, req: JoinSessionRequest) -> Result<JoinSessionResponse, Status> {
        let stream = parse_stream_name("name", &req.name)?;
        let kind = match ProtoKind::try_from(req.kind).unwrap_or(ProtoKind::Unspecified) {
            ProtoKind::Rtmp => ViewerKind::Rtmp,
            ProtoKind::Playback => ViewerKind::Playback,
            ProtoKind::Web | ProtoKind::Unspecified => ViewerKind::Web,
        };
        let joined = self
            .sessions
            .join(stream, &req.viewer_id, kind, &req.node)
            .await?;
        Ok(JoinSessionResponse {
            session_id: joined.session_id,
            expire_time: Some(timestamp(joined.expire_at)),
            viewer_count: joined.count,
            peak_viewers: joined.peak,
        })
    }
}

#[tonic::async_trait]
impl SessionService for SessionApi {
    async fn join_session(
        &self,
        request: Request<JoinSessionRequest>,
    ) -> Result<Response<JoinSessionResponse>, Status> {
        self.join(request.into_inner()).await.map(Response::new)
    }

    async fn batch_join_sessions(
        &self,
        request: Request<BatchJoinSessionsRequest>,
    ) -> Result<Response<BatchJoinSessionsResponse>, Status> {
        let joins = request.into_inner().joins;
        if joins.is_empty() || joins.len() > MAX_BATCH_JOINS {
            return Err(Status::invalid_argument(format!(
                "joins: must hold 1 to {MAX_BATCH_JOINS} entries"
            )));
        }
        let results: Vec<JoinResult> = futures::stream::iter(joins)
            .map(|join| async move { JoinResult::of(self.join(join).await) })
            .buffered(BATCH_JOIN_CONCURRENCY)
            .collect()
            .await;
        // Every join unavailable is the service unavailable (Redis away): the call
        // fails as a whole, so callers and the gRPC error counters see an outage.
        if let Some(first) = results.first()
            && results
                .iter()
                .all(|r| r.code == tonic::Code::Unavailable as i32)
        {
            return Err(Status::unavailable(first.message.clone()));
        }
        Ok(Response::new(BatchJoinSessionsResponse { results }))
    }

    async fn heartbeat(
        &self,
        request: Request<HeartbeatRequest>,
    ) -> Result<Response<HeartbeatResponse>, Status> {
        let (expired, expire_at) = self
            .sessions
            .heartbeat(&request.get_ref().session_ids)
            .await?;
        Ok(Response::new(HeartbeatResponse {
            expired_session_ids: expired,
            expire_time: Some(timestamp(expire_at)),
        }))
    }

    async fn leave_session(
        &self,
        request: Request<LeaveSessionRequest>,
    ) -> Result<Response<LeaveSessionResponse>, Status> {
        let count = self.sessions.leave(&request.get_ref().session_id).await?;
        Ok(Response::new(LeaveSessionResponse {
            viewer_count: count,
        }))
    }

    async fn get_viewer_count(
        &self,
        request: Request<GetViewerCountRequest>,
    ) -> Result<Response<GetViewerCountResponse>, Status> {
        let stream = parse_stream_name("name", &request.get_ref().name)?;
        let figures = self.sessions.figures(stream).await?;
        Ok(Response::new(GetViewerCountResponse {
            viewer_count: figures.count,
            peak_viewers: figures.peak,
            unique_viewers: figures.uniques,
            total_watch_time: Some(duration_ms(figures.watch_ms)),
        }))
    }

    async fn batch_get_viewer_counts(
        &self,
        request: Request<BatchGetViewerCountsRequest>,
    ) -> Result<Response<BatchGetViewerCountsResponse>, Status> {
        let names = request.into_inner().names;
        let ids = names
            .iter()
            .map(|name| parse_stream_name("names", name))
            .collect::<Result<Vec<_>, _>>()?;
        let counts = self.sessions.counts(&ids).await?;
        Ok(Response::new(BatchGetViewerCountsResponse {
            viewer_counts: names
                .into_iter()
                .zip(counts)
                .map(|(name, (viewer_count, peak_viewers))| ViewerCount {
                    name,
                    viewer_count,
                    peak_viewers,
                })
                .collect(),
        }))
    }
}

/// Converts milliseconds to a proto Duration.
pub fn duration_ms(ms: i64) -> prost_types::Duration {
    prost_types::Duration {
        seconds: ms / 1000,
        nanos: i32::try_from((ms % 1000) * 1_000_000).unwrap_or(0),
    }
}
