//! `GET /rtmp/playback`: nginx's `auth_request` for every HLS/DASH file. nginx sends
//! the original request URI in `X-Original-URI` and the hooks secret in
//! `X-Nova-Hooks-Secret`; the answer is 200 (serve), 401 (a new viewer beyond the
//! stream's cap) or 403, with the reason in `X-Nova-Refusal`. Neither the token nor the URI is logged.

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
/// Header carrying the refusal reason back to nginx.
pub const REFUSAL_HEADER: &str = "x-nova-refusal";

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
    let now = unix_now();
    let mut decision = state.playback().decide(uri, now);
    if let Ok(Some((stream, grant))) = &decision
        && let Err(refusal) = state
            .viewers()
            .admit(state.upstream(), *stream, &grant.session, grant.max_viewers)
            .await
    {
        decision = Err(refusal);
    }
    state.metrics().playback(match &decision {
        Ok(None) => "public",
        Ok(Some(_)) => "granted",
        Err(refusal) => refusal.as_str(),
    });
    Ok(match decision {
        Ok(_) => StatusCode::OK.into_response(),
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

/// Returns the unix time in seconds.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
