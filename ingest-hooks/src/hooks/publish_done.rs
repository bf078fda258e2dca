//! `on_publish_done`: the broadcaster left; the control plane opens the reconnect
//! window. nginx ignores the answer, so failures are only logged.

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
    match state.upstream().publish_ended(key, origin).await {
        Ok(Some(stream)) => {
            tracing::info!(stream.id = %stream.stream_id, stream.status = stream.status().as_str_name(), "broadcaster left");
        }
        Ok(None) => {}
        // A rotated key no longer maps to its stream; the reaper will notice the silence.
        Err(HookError::Refused(reason)) => {
            tracing::info!(%reason, "publish_done for an unknown key")
        }
        Err(err) => return Err(err),
    }
    Ok(super::ok())
}
