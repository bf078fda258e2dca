//! `on_publish`: ask the control plane; on yes, redirect the broadcast into the
//! internal application under the stream's public id, so no playlist, segment, stat
//! entry or log line carries the key. An address that keeps being refused is
//! refused at once for a while (see [`crate::budget`]), without asking.

use axum::{
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};

use crate::{
    callback::{Origin, StreamKey},
    error::HookError,
    state::AppState,
};

pub(super) async fn handle(
    state: &AppState,
    origin: &Origin,
    name: &str,
) -> Result<Response, HookError> {
    if state.budget().exhausted(&origin.addr) {
        return Err(HookError::Throttled);
    }
    let decided = decide(state, origin, name).await;
    if let Err(HookError::Refused(_)) = &decided
        && state.budget().refused(&origin.addr)
    {
        tracing::warn!(client.addr = %origin.addr, "address used up its failed-publish budget");
    }
    decided
}

async fn decide(state: &AppState, origin: &Origin, name: &str) -> Result<Response, HookError> {
    if origin.app != state.config().ingest_app {
        return Err(HookError::Refused(format!(
            "publishing is only allowed on the `{}` application",
            state.config().ingest_app
        )));
    }
    let key = StreamKey::parse(name)?;
    // Fails closed: an unreachable control plane is a refusal (HookError::Upstream → 503).
    let stream = state.upstream().authorize(&key, origin).await?;
    tracing::info!(stream.id = %stream.stream_id, client.addr = %origin.addr, "publish accepted");
    // The origin enforces the stream's policy before the next rules refresh.
    if let Ok(id) = uuid::Uuid::try_parse(&stream.stream_id) {
        state.playback().learn(
            id,
            &stream.owner,
            stream.playback_policy(),
            stream.max_viewers,
        );
    }
    // A stream that records goes through the recording application, which records
    // it and pushes it on into the public one under the same id.
    let relay = if stream.record && state.recorder().is_some() {
        &state.config().record_url
    } else {
        &state.config().relay_url
    };
    let location = format!("{}/{}", relay.trim_end_matches('/'), stream.stream_id);
    Ok((StatusCode::FOUND, [(header::LOCATION, location)]).into_response())
}
