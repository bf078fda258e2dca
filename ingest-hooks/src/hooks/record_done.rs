//! `on_record_done` of the recording application: nginx closed a recorded piece of
//! a stream (its name is the public stream id there, never the key). The recorder
//! takes the file out of nginx's way at once and hands it to the control plane in
//! the background; nginx ignores the answer.

use axum::response::Response;

use crate::{callback::Origin, config::Config, error::HookError, state::AppState};

pub(super) fn handle(
    state: &AppState,
    origin: &Origin,
    name: &str,
    path: &str,
) -> Result<Response, HookError> {
    let Some(recorder) = state.recorder() else {
        tracing::warn!(
            "a recorded piece was closed but recording is off on this node (NOVA_RECORD_DIR, NOVA_ASSET_STORE)"
        );
        return Ok(super::ok());
    };
    if origin.app != Config::app_of(&state.config().record_url) {
        return Err(HookError::Refused(
            "recorded pieces come from the recording application only".into(),
        ));
    }
    let stream = nova_store::keys::canonical(name)
        .ok_or_else(|| HookError::Refused("not a recorded stream".into()))?;
    recorder.closed(stream, path, &origin.client_id)?;
    Ok(super::ok())
}
