//! `GET /rtmp/playback`: nginx's `auth_request` for every HLS/DASH file and every
//! file of an on-demand asset. nginx sends the original request URI in
//! `X-Original-URI`, the viewer's address in `X-Nova-Client-Addr` (for tokens that
//! name networks) and the hooks secret in `X-Nova-Hooks-Secret`; the answer is 200
//! (serve), 401 (a new viewer beyond the stream's cap) or 403, with the reason in
//! `X-Nova-Refusal`. A 200 for an asset's file names where nginx fetches it in
//! `X-Nova-Vod-Path`: its key in a file store (under nginx's VOD root), or the path
//! and query of a presigned GET on the S3 endpoint. Neither the token nor the URI
//! is logged.

use std::net::SocketAddr;

use axum::{
    extract::{ConnectInfo, State},
    http::{HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};

use super::verify::Refusal;
use crate::{error::HookError, routes::authenticate, state::AppState};

/// Header nginx puts the original request URI in.
const URI_HEADER: &str = "x-original-uri";
/// Header nginx puts the viewer's address in (`$remote_addr`); trusted only
/// because the request carries the hooks secret.
const CLIENT_HEADER: &str = "x-nova-client-addr";
/// Header carrying the refusal reason back to nginx.
pub const REFUSAL_HEADER: &str = "x-nova-refusal";
/// Header telling nginx where an allowed asset file is.
pub const VOD_PATH_HEADER: &str = "x-nova-vod-path";
/// Lifetime of presigned asset reads: well past nginx's decision cache (1 s, and
/// the minute a stale decision may stand in).
const PRESIGN_TTL: std::time::Duration = std::time::Duration::from_secs(300);

/// Answers one `auth_request` subrequest.
pub async fn check(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Result<Response, HookError> {
    let presented = headers
        .get(crate::routes::SECRET_HEADER)
        .and_then(|v| v.to_str().ok());
    authenticate(&state, peer, presented)?;
    let uri = headers
        .get(URI_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let client = headers
        .get(CLIENT_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let now = unix_now();
    let mut decision = state.playback().decide(uri, client, now);
    // Token sessions of live streams are viewer sessions; on-demand plays are not.
    if let Ok(allowed) = &decision
        && let (Some(grant), None) = (&allowed.grant, &allowed.vod_key)
        && let Err(refusal) = state
            .viewers()
            .admit(
                state.upstream(),
                allowed.stream,
                &grant.session,
                grant.max_viewers,
            )
            .await
    {
        decision = Err(refusal);
    }
    state.metrics().playback(match &decision {
        Ok(allowed) if allowed.grant.is_none() => "public",
        Ok(_) => "granted",
        Err(refusal) => refusal.as_str(),
    });
    Ok(match decision {
        Ok(allowed) => match &allowed.vod_key {
            None => StatusCode::OK.into_response(),
            Some(key) => vod_answer(&state, key).await,
        },
        Err(refusal) => {
            // 401 tells nginx "at capacity" (it answers 429 + Retry-After); 403 is
            // every other refusal. auth_request passes only these two on.
            let status = if refusal == Refusal::Capacity {
                StatusCode::UNAUTHORIZED
            } else {
                StatusCode::FORBIDDEN
            };
            let mut response = status.into_response();
            response
                .headers_mut()
                .insert(REFUSAL_HEADER, HeaderValue::from_static(refusal.as_str()));
            response
        }
    })
}

/// Answers 200 with where nginx fetches asset file `key`, or 500 when there is no
/// store or it cannot presign (nginx caches neither).
async fn vod_answer(state: &AppState, key: &str) -> Response {
    let Some(store) = state.store() else {
        tracing::error!(
            "an asset file was asked for but this node has no asset store (NOVA_ASSET_STORE)"
        );
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let path = match store
        .presign_get(&object_store::path::Path::from(key), PRESIGN_TTL)
        .await
    {
        Ok(Some(presigned)) => presigned,
        Ok(None) => key.to_owned(),
        Err(err) => {
            tracing::error!(error = %err, "cannot presign an asset read");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    match HeaderValue::from_str(&path) {
        Ok(value) => {
            let mut response = StatusCode::OK.into_response();
            response.headers_mut().insert(VOD_PATH_HEADER, value);
            response
        }
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// Returns the unix time in seconds.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
