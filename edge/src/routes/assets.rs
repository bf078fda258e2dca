//! `/api/v1/streams/{id}/assets` and `/api/v1/assets/{id}`: recordings of a stream's
//! broadcasts, for the stream's owner only (bearer JWT), over AssetService; never
//! stored by shared caches.

use std::sync::Arc;

use axum::{
    extract::{Path, State},
    http::StatusCode,
    response::Response,
};
use nova_proto::v1::{
    self, Asset, AssetStatus, DeleteAssetRequest, GetAssetRequest, ListAssetsRequest,
};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    auth::Owner,
    error::ApiError,
    extract::Params,
    json,
    ratelimit::{Admitted, ClientIp, ReadAdmitted},
    routes::streams::stream_name,
    upstream::{Upstream, as_principal},
};

/// Query of `GET /streams/{id}/assets`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssetsQuery {
    /// Page size, 1–1000 (default 50).
    page_size: Option<i32>,
    /// Token of the next page.
    page_token: Option<String>,
}

/// Returns the gRPC name of asset `id`, or names the path parameter as invalid.
fn asset_name(id: &str) -> Result<String, ApiError> {
    Uuid::try_parse(id)
        .map(|id| format!("{}{id}", nova_proto::ASSET_NAME_PREFIX))
        .map_err(|_| ApiError::invalid("id", "must be an asset id (a UUID)"))
}

/// `GET /api/v1/streams/{id}/assets`: the stream's assets, newest first (owner only).
pub async fn list(
    State(upstream): State<Arc<Upstream>>,
    Owner(owner): Owner,
    _: ReadAdmitted,
    ClientIp(client): ClientIp,
    Path(id): Path<String>,
    Params(query): Params<AssetsQuery>,
) -> Result<Response, ApiError> {
    let request = ListAssetsRequest {
        stream: stream_name(&id)?,
        page_size: query.page_size.unwrap_or(0),
        page_token: query.page_token.unwrap_or_default(),
    };
    let page = upstream
        .assets
        .clone()
        .list_assets(as_principal(request, &owner, client)?)
        .await?
        .into_inner();
    let body = json!({
        "assets": page.assets.iter().map(asset).collect::<Vec<_>>(),
        "next_page_token": page.next_page_token,
    });
    Ok(json::private(StatusCode::OK, body))
}

/// `GET /api/v1/assets/{id}`: one asset (owner only).
pub async fn get(
    State(upstream): State<Arc<Upstream>>,
    Owner(owner): Owner,
    _: ReadAdmitted,
    ClientIp(client): ClientIp,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let request = GetAssetRequest {
        name: asset_name(&id)?,
    };
    let found = upstream
        .assets
        .clone()
        .get_asset(as_principal(request, &owner, client)?)
        .await?
        .into_inner()
        .asset
        .unwrap_or_default();
    let body = json!({ "asset": asset(&found) });
    Ok(json::private(StatusCode::OK, body))
}

/// `DELETE /api/v1/assets/{id}`: deletes an asset and its files (owner only).
pub async fn delete(
    State(upstream): State<Arc<Upstream>>,
    Owner(owner): Owner,
    _: Admitted,
    ClientIp(client): ClientIp,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let request = DeleteAssetRequest {
        name: asset_name(&id)?,
    };
    upstream
        .assets
        .clone()
        .delete_asset(as_principal(request, &owner, client)?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Returns one asset as JSON.
fn asset(a: &Asset) -> Value {
    let seconds = |d: &prost_types::Duration| d.seconds as f64 + f64::from(d.nanos) / 1e9;
    let ready = a.status == AssetStatus::Ready as i32;
    json!({
        "id": a.asset_id,
        "name": a.name,
        "stream_id": a.stream_id,
        "status": status(a.status),
        "error_reason": Some(&a.error_reason).filter(|r| !r.is_empty()),
        "duration_seconds": a.duration.as_ref().filter(|_| ready).map(seconds),
        "size_bytes": Some(a.size_bytes).filter(|_| ready),
        "created_at": json::time(a.create_time.as_ref()),
        "ready_at": json::time(a.ready_time.as_ref()),
        "playback_policy": json::policy(a.playback_policy),
        "playback": a.playback.as_ref().map(|p| json!({ "hls_url": p.hls_url, "mp4_url": p.mp4_url })),
    })
}

/// Returns the lower-case name of an asset status.
fn status(raw: i32) -> &'static str {
    match AssetStatus::try_from(raw).unwrap_or(v1::AssetStatus::Unspecified) {
        AssetStatus::Preparing => "preparing",
        AssetStatus::Ready => "ready",
        AssetStatus::Errored => "errored",
        AssetStatus::Unspecified => "unspecified",
    }
}
