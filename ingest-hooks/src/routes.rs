//! HTTP routes: `POST /rtmp` takes every nginx-rtmp callback (nginx says which in
//! `call=`); `GET /healthz` answers liveness.

use std::{collections::HashMap, net::SocketAddr};

use axum::{
    Router,
    body::Bytes,
    extract::{ConnectInfo, Query, State},
    response::Response,
    routing::{get, post},
};
use subtle::ConstantTimeEq;

use crate::{callback::Callback, error::HookError, hooks, state::AppState};

/// Largest callback body accepted (nginx sends a few hundred bytes).
const MAX_BODY: usize = 16 * 1024;

/// Builds the router.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/rtmp", post(callback))
        .route("/healthz", get(|| async { "ok" }))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

async fn callback(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(query): Query<HashMap<String, String>>,
    body: Bytes,
) -> Result<Response, HookError> {
    authenticate(&state, peer, query.get("secret").map(String::as_str))?;
    let form: HashMap<String, String> =
        serde_urlencoded::from_bytes(&body).map_err(|_| HookError::Malformed("form body"))?;
    let callback = Callback::parse(&form)?;
    tracing::debug!(callback = callback.label(), "callback");
    hooks::handle(&state, callback).await
}

/// With a secret configured, the callback must carry it; without one, only loopback
/// callers are accepted.
fn authenticate(
    state: &AppState,
    peer: SocketAddr,
    presented: Option<&str>,
) -> Result<(), HookError> {
    match (&state.config().secret, presented) {
        (Some(secret), Some(presented))
            if bool::from(secret.expose().as_bytes().ct_eq(presented.as_bytes())) =>
        {
            Ok(())
        }
        (None, _) if peer.ip().is_loopback() => Ok(()),
        _ => Err(HookError::Unauthenticated),
    }
}
