//! `on_update` of a publisher: the heartbeat. A non-2xx answer makes nginx drop the
//! broadcaster, which is how EndStream and key rotation cut a live broadcast off.

use axum::response::Response;

use crate::{
    callback::{Origin, StreamKey},
    error::HookError,
    state::AppState,
};

pub(super) async fn handle(
    state: &AppState,
    origin: &Origin,
    key: &StreamKey,
) -> Result<Response, HookError> {
    if origin.app != state.config().ingest_app {
        return Ok(super::ok());
    }
    match state.upstream().heartbeat(key, origin).await {
        Ok(None) => Ok(super::ok()),
        Ok(Some(reason)) => {
            tracing::info!(client.id = %origin.client_id, %reason, "cutting the broadcaster off");
            Err(HookError::Refused(reason))
        }
        Err(HookError::Upstream(status)) if state.config().fail_open_updates => {
            tracing::warn!(grpc.code = ?status.code(), "control plane unreachable; keeping the broadcaster on air");
            Ok(super::ok())
        }
        Err(err) => Err(err),
    }
}
