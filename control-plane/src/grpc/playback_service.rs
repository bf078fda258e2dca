//! `nova.streaming.v1.PlaybackService` over [`crate::service::playback`].

use nova_proto::v1::{
    self, CreatePlaybackTokenRequest, CreatePlaybackTokenResponse, CreateSigningKeyRequest,
    CreateSigningKeyResponse, DeleteSigningKeyRequest, DeleteSigningKeyResponse,
    GetPlaybackRulesRequest, GetPlaybackRulesResponse, ListSigningKeysRequest,
    ListSigningKeysResponse, playback_service_server::PlaybackService,
};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::{
    auth::caller,
    error::Error,
    grpc::{
        convert::{policy_to_proto, timestamp},
        name::parse_stream_name,
    },
    service::playback::{Playback, SigningKey, TokenRequest, crypto},
    state::AppState,
};

/// Prefix of signing key resource names.
const KEY_PREFIX: &str = "signingKeys/";

/// gRPC face of the playback rules.
pub struct PlaybackApi {
    /// The rules.
    playback: Playback,
}

impl PlaybackApi {
    /// Builds the service from the shared state.
    pub fn new(state: &AppState) -> Self {
        let playback = state.playback().clone();
        let warming = playback.clone();
        tokio::spawn(async move { warming.warm_up().await });
        Self { playback }
    }
}

fn key_to_proto(key: &SigningKey) -> v1::SigningKey {
    v1::SigningKey {
        name: format!("{KEY_PREFIX}{}", key.id),
        key_id: key.id.to_string(),
        owner: key.owner.clone().unwrap_or_default(),
        public_key_pem: crypto::public_pem(&key.public_key),
        create_time: Some(timestamp(key.created_at)),
    }
}

fn parse_key_name(name: &str) -> Result<Uuid, Error> {
    name.strip_prefix(KEY_PREFIX)
        .and_then(|id| Uuid::try_parse(id).ok())
        .ok_or_else(|| Error::invalid("name", "must look like signingKeys/{key_id}"))
}

#[tonic::async_trait]
impl PlaybackService for PlaybackApi {
    async fn create_playback_token(
        &self,
        request: Request<CreatePlaybackTokenRequest>,
    ) -> Result<Response<CreatePlaybackTokenResponse>, Status> {
        let principal = caller(&request)?.principal()?;
        let req = request.into_inner();
        let id = parse_stream_name("name", &req.name)?;
        let ttl_seconds = match req.ttl {
            Some(d) if d.nanos != 0 => {
                return Err(Error::invalid("ttl", "must be whole seconds").into());
            }
            Some(d) => Some(d.seconds),
            None => None,
        };
        let issued = self
            .playback
            .issue(
                &principal,
                id,
                TokenRequest {
                    ttl_seconds,
                    session_id: Some(req.session_id).filter(|s| !s.is_empty()),
                    allowed_networks: req.allowed_networks,
                },
            )
            .await?;
        Ok(Response::new(CreatePlaybackTokenResponse {
            expire_time: Some(prost_types::Timestamp {
                seconds: issued.claims.exp,
                nanos: 0,
            }),
            session_id: issued.claims.sid,
            token: issued.token,
            hls_url: issued.hls_url,
            dash_url: issued.dash_url,
            allowed_networks: issued.claims.nets,
        }))
    }

    async fn create_signing_key(
        &self,
        request: Request<CreateSigningKeyRequest>,
    ) -> Result<Response<CreateSigningKeyResponse>, Status> {
        let actor = caller(&request)?.actor()?;
        let (key, private_key_pem) = self.playback.create_key(&actor).await?;
        Ok(Response::new(CreateSigningKeyResponse {
            signing_key: Some(key_to_proto(&key)),
            private_key_pem,
        }))
    }

    async fn list_signing_keys(
        &self,
        request: Request<ListSigningKeysRequest>,
    ) -> Result<Response<ListSigningKeysResponse>, Status> {
        let principal = caller(&request)?.principal()?;
        let keys = self.playback.list_keys(&principal).await?;
        Ok(Response::new(ListSigningKeysResponse {
            signing_keys: keys.iter().map(key_to_proto).collect(),
        }))
    }

    async fn delete_signing_key(
        &self,
        request: Request<DeleteSigningKeyRequest>,
    ) -> Result<Response<DeleteSigningKeyResponse>, Status> {
        let actor = caller(&request)?.actor()?;
        let id = parse_key_name(&request.get_ref().name)?;
        self.playback.delete_key(&actor, id).await?;
        Ok(Response::new(DeleteSigningKeyResponse {}))
    }

    async fn get_playback_rules(
        &self,
        _request: Request<GetPlaybackRulesRequest>,
    ) -> Result<Response<GetPlaybackRulesResponse>, Status> {
        let rules = self.playback.rules().await?;
        Ok(Response::new(GetPlaybackRulesResponse {
            keys: rules
                .keys
                .into_iter()
                .map(|k| v1::VerificationKey {
                    key_id: k.id.to_string(),
                    owner: k.owner.unwrap_or_default(),
                    public_key: k.public_key,
                })
                .collect(),
            streams: rules
                .streams
                .into_iter()
                .map(|s| v1::PlaybackStream {
                    stream_id: s.id.to_string(),
                    owner: s.owner,
                    playback_policy: policy_to_proto(s.policy).into(),
                    max_viewers: s.max_viewers.unwrap_or(0),
                })
                .collect(),
            read_time: Some(timestamp(rules.read_at)),
            assets: rules
                .assets
                .into_iter()
                .map(|a| v1::PlaybackAsset {
                    asset_id: a.id.to_string(),
                    stream_id: a.stream_id.to_string(),
                    prefix: a.prefix,
                })
                .collect(),
        }))
    }
}
