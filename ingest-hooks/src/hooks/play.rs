//! RTMP players: `on_play` of the public application starts a viewer session
//! (refused for unknown or completed streams), `on_update` renews it, `on_play_done`
//! ends it. nginx's own relay and our ABR transcoder are not viewers; playing the
//! ingest application (where names are stream keys) is refused. A signed stream
//! is played only with a valid playback token as the `token` argument of the RTMP
//! URL (`rtmp://host/stream/<id>?token=<token>`).

use axum::response::Response;

use crate::{
    callback::{Origin, Player},
    error::HookError,
    state::AppState,
};

/// `on_play`.
pub(super) async fn start(
    state: &AppState,
    origin: &Origin,
    name: &str,
    player: Player,
    token: Option<&str>,
) -> Result<Response, HookError> {
    if player == Player::Internal {
        return Ok(super::ok());
    }
    if origin.app == state.config().ingest_app {
        return Err(HookError::Refused(
            "play the public application, not the ingest one".into(),
        ));
    }
    let id =
        uuid::Uuid::try_parse(name).map_err(|_| HookError::Refused("unknown stream".into()))?;
    if state.playback().requires_token(id) {
        let now = crate::playback::route::unix_now();
        let checked = token
            .ok_or(crate::playback::verify::Refusal::TokenRequired)
            .and_then(|t| {
                let client = origin.addr.parse().ok();
                state.playback().verify_token(t, id, client, now)
            });
        if let Err(refusal) = checked {
            state.metrics().playback(refusal.as_str());
            return Err(HookError::Refused(format!(
                "playback token refused: {}",
                refusal.as_str()
            )));
        }
        state.metrics().playback("granted");
    }
    match state.upstream().join_player(format!("streams/{id}")).await {
        Ok(session) => {
            tracing::info!(stream.id = %id, client.id = %origin.client_id, "rtmp player joined");
            state.add_player(&origin.client_id, session);
            Ok(super::ok())
        }
        // Counting viewers must not stop anyone from watching.
        Err(HookError::Upstream(status)) => {
            tracing::warn!(grpc.code = ?status.code(), "could not record an rtmp player");
            Ok(super::ok())
        }
        Err(refused) => Err(refused),
    }
}

/// `on_update` of a player.
pub(super) async fn renew(state: &AppState, origin: &Origin) -> Result<Response, HookError> {
    let Some(session) = state.player(&origin.client_id) else {
        return Ok(super::ok());
    };
    if let Err(err) = state.upstream().renew_player(session).await {
        tracing::warn!(error = %err, "could not renew an rtmp player's session");
    }
    Ok(super::ok())
}

/// `on_play_done`.
pub(super) async fn stop(state: &AppState, origin: &Origin) -> Result<Response, HookError> {
    if let Some(session) = state.remove_player(&origin.client_id) {
        tracing::info!(client.id = %origin.client_id, "rtmp player left");
        if let Err(err) = state.upstream().leave_player(session).await {
            tracing::warn!(error = %err, "could not end an rtmp player's session; it will expire");
        }
    }
    Ok(super::ok())
}
