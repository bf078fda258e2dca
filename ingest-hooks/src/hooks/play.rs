//! `on_play` / `on_play_done`: players of the public application are recorded;
//! nginx's own relay is ignored; playing the ingest application (where names are
//! stream keys) is refused.

use axum::response::Response;

use crate::{callback::Origin, error::HookError, state::AppState};

pub(super) fn start(
    state: &AppState,
    origin: &Origin,
    name: &str,
    relay: bool,
) -> Result<Response, HookError> {
    if relay {
        return Ok(super::ok());
    }
    if origin.app == state.config().ingest_app {
        return Err(HookError::Refused(
            "play the public application, not the ingest one".into(),
        ));
    }
    tracing::info!(stream.id = %public_id(name), client.id = %origin.client_id, "rtmp player joined");
    Ok(super::ok())
}

pub(super) fn stop(
    state: &AppState,
    origin: &Origin,
    name: &str,
    relay: bool,
) -> Result<Response, HookError> {
    if !relay && origin.app != state.config().ingest_app {
        tracing::info!(stream.id = %public_id(name), client.id = %origin.client_id, "rtmp player left");
    }
    Ok(super::ok())
}

/// Returns `name` when it is a stream id, else a placeholder: never log what may be a key.
fn public_id(name: &str) -> String {
    uuid::Uuid::try_parse(name)
        .map(|id| id.to_string())
        .unwrap_or_else(|_| "(not a stream id)".into())
}
