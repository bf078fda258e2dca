//! `nova.streaming.v1.AssetService` over [`crate::service::assets`].

use nova_proto::v1::{
    self, DeleteAssetRequest, DeleteAssetResponse, GetAssetRequest, GetAssetResponse,
    ListAssetsRequest, ListAssetsResponse, asset_service_server::AssetService,
};
use tonic::{Request, Response, Status};

use crate::{
    auth::{Caller, Principal, Role, caller},
    error::Error,
    grpc::{
        convert::{duration_ms, policy_to_proto, timestamp},
        name::{asset_name, parse_asset_name, parse_stream_name, stream_name},
    },
    service::{
        asset::{Asset, AssetState},
        assets::Assets,
    },
    state::AppState,
};

/// gRPC face of the asset rules.
pub struct AssetApi {
    /// The rules.
    assets: Assets,
}

impl AssetApi {
    /// Builds the service from the shared state.
    pub fn new(state: &AppState) -> Self {
        Self {
            assets: state.assets().clone(),
        }
    }
}

/// Returns whose assets the caller may see: its principal, or `None` for an admin
/// acting for nobody (the edge always acts for a user).
fn viewer(caller: &Caller) -> Result<Option<Principal>, Error> {
    if caller.role() == Role::Admin && !caller.names_principal() {
        Ok(None)
    } else {
        caller.principal().map(Some)
    }
}

#[tonic::async_trait]
impl AssetService for AssetApi {
    async fn list_assets(
        &self,
        request: Request<ListAssetsRequest>,
    ) -> Result<Response<ListAssetsResponse>, Status> {
        let viewer = viewer(caller(&request)?)?;
        let req = request.get_ref();
        let stream_id = parse_stream_name("stream", &req.stream)?;
        let page = self
            .assets
            .list(viewer.as_ref(), stream_id, req.page_size, &req.page_token)
            .await?;
        Ok(Response::new(ListAssetsResponse {
            assets: page.assets.iter().map(asset_to_proto).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn get_asset(
        &self,
        request: Request<GetAssetRequest>,
    ) -> Result<Response<GetAssetResponse>, Status> {
        let viewer = viewer(caller(&request)?)?;
        let id = parse_asset_name("name", &request.get_ref().name)?;
        let asset = self.assets.get(viewer.as_ref(), id).await?;
        Ok(Response::new(GetAssetResponse {
            asset: Some(asset_to_proto(&asset)),
        }))
    }

    async fn delete_asset(
        &self,
        request: Request<DeleteAssetRequest>,
    ) -> Result<Response<DeleteAssetResponse>, Status> {
        let actor = caller(&request)?.actor()?;
        let id = parse_asset_name("name", &request.get_ref().name)?;
        self.assets.delete(&actor, id).await?;
        Ok(Response::new(DeleteAssetResponse {}))
    }
}

/// Converts an asset to its proto.
pub fn asset_to_proto(asset: &Asset) -> v1::Asset {
    let mut out = v1::Asset {
        name: asset_name(asset.id),
        asset_id: asset.id.to_string(),
        stream: stream_name(asset.stream_id),
        stream_id: asset.stream_id.to_string(),
        owner: asset.owner.clone(),
        create_time: Some(timestamp(asset.created_at)),
        playback_policy: policy_to_proto(asset.playback_policy).into(),
        playback: asset.playback.as_ref().map(|p| v1::AssetPlayback {
            hls_url: p.hls_url.clone(),
            mp4_url: p.mp4_url.clone(),
        }),
        ..Default::default()
    };
    match &asset.state {
        AssetState::Preparing => out.status = v1::AssetStatus::Preparing.into(),
        AssetState::Ready {
            duration,
            size_bytes,
            ready_at,
            ..
        } => {
            out.status = v1::AssetStatus::Ready.into();
            out.duration = Some(duration_ms(
                i64::try_from(duration.as_millis()).unwrap_or(i64::MAX),
            ));
            out.size_bytes = i64::try_from(*size_bytes).unwrap_or(i64::MAX);
            out.ready_time = Some(timestamp(*ready_at));
        }
        AssetState::Errored { reason } => {
            out.status = v1::AssetStatus::Errored.into();
            out.error_reason = reason.clone();
        }
    }
    out
}
