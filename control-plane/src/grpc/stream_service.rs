//! `nova.streaming.v1.StreamService` over [`crate::service::streams`].

use nova_proto::v1::{
    self, CreateStreamRequest, CreateStreamResponse, EndStreamRequest, EndStreamResponse,
    GetStreamRequest, GetStreamResponse, ListStreamsRequest, ListStreamsResponse,
    RotateStreamKeyRequest, RotateStreamKeyResponse, UpdateStreamRequest, UpdateStreamResponse,
    stream_service_server::StreamService,
};
use tonic::{Request, Response, Status};

use crate::{
    auth::caller,
    error::Error,
    grpc::{
        convert::{policy_from_proto, status_from_proto, stream_to_proto},
        name::parse_stream_name,
    },
    service::{
        PlaybackPolicy,
        streams::{ListQuery, StreamSettings, StreamUpdate, Streams},
    },
    state::AppState,
};

/// gRPC face of the stream rules.
pub struct StreamApi {
    /// The rules.
    streams: Streams,
    /// RTMP ingest address handed out with new keys.
    rtmp_url: String,
}

impl StreamApi {
    /// Builds the service from the shared state.
    pub fn new(state: &AppState) -> Self {
        Self {
            streams: state.streams().clone(),
            rtmp_url: state.rtmp_url().to_owned(),
        }
    }
}

#[tonic::async_trait]
impl StreamService for StreamApi {
    async fn create_stream(
        &self,
        request: Request<CreateStreamRequest>,
    ) -> Result<Response<CreateStreamResponse>, Status> {
        let actor = caller(&request)?.actor()?;
        let stream = request
            .into_inner()
            .stream
            .ok_or_else(|| Error::invalid("stream", "is required"))?;
        let policy = policy_from_proto(
            "stream.playback_policy",
            stream.playback_policy,
            Some(PlaybackPolicy::Public),
        )?
        .unwrap_or_default();
        let settings = StreamSettings {
            policy,
            max_viewers: Some(stream.max_viewers).filter(|n| *n != 0),
            record: stream.record,
        };
        let (row, key) = self.streams.create(&actor, &stream.title, settings).await?;
        Ok(Response::new(CreateStreamResponse {
            stream: Some(stream_to_proto(&row)),
            stream_key: key.expose().to_owned(),
            ingest_url: self.rtmp_url.clone(),
        }))
    }

    async fn get_stream(
        &self,
        request: Request<GetStreamRequest>,
    ) -> Result<Response<GetStreamResponse>, Status> {
        let id = parse_stream_name("name", &request.get_ref().name)?;
        let row = self.streams.get(id).await?;
        Ok(Response::new(GetStreamResponse {
            stream: Some(stream_to_proto(&row)),
        }))
    }

    async fn list_streams(
        &self,
        request: Request<ListStreamsRequest>,
    ) -> Result<Response<ListStreamsResponse>, Status> {
        let req = request.into_inner();
        let statuses = req
            .statuses
            .iter()
            .map(|&raw| match v1::StreamStatus::try_from(raw) {
                Ok(v1::StreamStatus::Unspecified) => Ok(None),
                Ok(_) => Ok(status_from_proto(raw)),
                Err(_) => Err(Error::invalid("statuses", format!("unknown status {raw}"))),
            })
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .flatten()
            .collect();
        let page = self
            .streams
            .list(&ListQuery {
                statuses,
                owner: Some(req.owner).filter(|o| !o.is_empty()),
                page_size: req.page_size,
                page_token: req.page_token,
            })
            .await?;
        Ok(Response::new(ListStreamsResponse {
            streams: page.streams.iter().map(stream_to_proto).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn end_stream(
        &self,
        request: Request<EndStreamRequest>,
    ) -> Result<Response<EndStreamResponse>, Status> {
        let actor = caller(&request)?.actor()?;
        let id = parse_stream_name("name", &request.get_ref().name)?;
        let row = self.streams.end(&actor, id).await?;
        Ok(Response::new(EndStreamResponse {
            stream: Some(stream_to_proto(&row)),
        }))
    }

    async fn rotate_stream_key(
        &self,
        request: Request<RotateStreamKeyRequest>,
    ) -> Result<Response<RotateStreamKeyResponse>, Status> {
        let actor = caller(&request)?.actor()?;
        let id = parse_stream_name("name", &request.get_ref().name)?;
        let (row, key) = self.streams.rotate_key(&actor, id).await?;
        Ok(Response::new(RotateStreamKeyResponse {
            stream: Some(stream_to_proto(&row)),
            stream_key: key.expose().to_owned(),
        }))
    }

    async fn update_stream(
        &self,
        request: Request<UpdateStreamRequest>,
    ) -> Result<Response<UpdateStreamResponse>, Status> {
        let actor = caller(&request)?.actor()?;
        let req = request.into_inner();
        let stream = req
            .stream
            .ok_or_else(|| Error::invalid("stream", "is required"))?;
        let id = parse_stream_name("stream.name", &stream.name)?;
        let paths = req.update_mask.map(|m| m.paths).unwrap_or_default();
        if paths.is_empty() {
            return Err(Error::invalid("update_mask", "must name at least one field").into());
        }
        let mut update = StreamUpdate::default();
        for path in &paths {
            match path.as_str() {
                "title" => update.title = Some(stream.title.clone()),
                "max_viewers" => {
                    update.max_viewers = Some(Some(stream.max_viewers).filter(|n| *n != 0));
                }
                "record" => update.record = Some(stream.record),
                "playback_policy" => {
                    update.playback_policy =
                        policy_from_proto("stream.playback_policy", stream.playback_policy, None)?;
                    if update.playback_policy.is_none() {
                        return Err(Error::invalid(
                            "stream.playback_policy",
                            "must be PLAYBACK_POLICY_PUBLIC or PLAYBACK_POLICY_SIGNED",
                        )
                        .into());
                    }
                }
                _ => {
                    return Err(Error::invalid(
                        "update_mask",
                        "may name only title, playback_policy, max_viewers and record",
                    )
                    .into());
                }
            }
        }
        let row = self.streams.update(&actor, id, &update).await?;
        Ok(Response::new(UpdateStreamResponse {
            stream: Some(stream_to_proto(&row)),
        }))
    }
}
