//! HTTP routes: one `POST /rtmp/<kind>` per kind of nginx-rtmp callback (see
//! [`Kind::path`]), so the body never says which callback it is; `GET /healthz`
//! answers liveness; `GET /metrics` is here unless `NOVA_HOOKS_METRICS_ADDR` serves
//! it privately. Any other path is a 404.

use std::{collections::HashMap, net::SocketAddr, time::Instant};

use axum::{
    Router,
    body::Bytes,
    extract::{ConnectInfo, Query, State},
    http::HeaderMap,
    response::Response,
    routing::{get, post},
};
use subtle::ConstantTimeEq;

use crate::{
    callback::{Callback, Kind},
    error::HookError,
    hooks,
    metrics::BroadcastError,
    state::AppState,
};

/// Header carrying the shared secret, set by nginx's on_update guard.
pub(crate) const SECRET_HEADER: &str = "x-nova-hooks-secret";

/// Largest callback body accepted (nginx sends a few hundred bytes).
const MAX_BODY: usize = 16 * 1024;

/// Builds the router.
pub fn router(state: AppState) -> Router {
    let mut router = Router::new();
    for kind in Kind::ALL {
        router = router.route(
            kind.path(),
            post(
                move |state: State<AppState>,
                      peer: ConnectInfo<SocketAddr>,
                      query: Query<HashMap<String, String>>,
                      headers: HeaderMap,
                      body: Bytes| {
                    callback(kind, state, peer, query, headers, body)
                },
            ),
        );
    }
    if state.config().metrics_addr.is_none() {
        router = router.route("/metrics", get(metrics));
    }
    router
        .route("/rtmp/playback", get(crate::playback::route::check))
        .route("/healthz", get(|| async { "ok" }))
        .layer(axum::middleware::from_fn_with_state(
            state.metrics().http(),
            nova_runtime::metrics::track_http,
        ))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

async fn metrics(State(state): State<AppState>) -> Response {
    nova_runtime::metrics::exposition(state.metrics().registry())
}

async fn callback(
    kind: Kind,
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, HookError> {
    let started = Instant::now();
    // nginx-rtmp passes the secret in the callback URL; the on_update guard in nginx's
    // private server passes it as a header, so it never appears in nginx's logs.
    let presented = query
        .get("secret")
        .map(String::as_str)
        .or_else(|| headers.get(SECRET_HEADER).and_then(|v| v.to_str().ok()));
    let parsed = authenticate(&state, peer, presented)
        .and_then(|()| Callback::parse(kind, &body, state.insiders()));
    let callback = match parsed {
        Ok(callback) => callback,
        Err(err) => {
            state.metrics().error(match err {
                HookError::Unauthenticated => BroadcastError::UnauthenticatedCallback,
                HookError::Refused(_) => BroadcastError::PublishRefused,
                _ => BroadcastError::MalformedCallback,
            });
            return Err(err);
        }
    };
    let label = callback.label();
    tracing::debug!(callback = label, "callback");
    let answer = hooks::handle(&state, callback).await;
    state.metrics().callback(label, started.elapsed());
    if let Err(err) = &answer {
        state.metrics().error(match (err, label) {
            (HookError::Upstream(_), _) => BroadcastError::ControlPlaneUnavailable,
            (HookError::Throttled, _) => BroadcastError::PublishThrottled,
            (_, "update_publish") => BroadcastError::CutOff,
            // A recorded piece that is not nginx's own: a bad callback, not a refusal.
            (_, "record_done") => BroadcastError::MalformedCallback,
            _ => BroadcastError::PublishRefused,
        });
    }
    answer
}
/// With a secret configured, the callback must carry it; without one, only loopback
/// callers are accepted.
pub(crate) fn authenticate(
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

#[cfg(test)]
#[path = "routes_tests.rs"]
mod tests;
