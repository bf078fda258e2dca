//! One handler per kind of callback; `handle` dispatches the typed callback.

mod play;
mod publish;
mod publish_done;
mod record_done;
mod update;

use axum::{http::StatusCode, response::Response};

use crate::{callback::Callback, error::HookError, state::AppState};

/// Answers one callback.
pub async fn handle(state: &AppState, callback: Callback) -> Result<Response, HookError> {
    match callback {
        Callback::Publish { origin, name } => publish::handle(state, &origin, &name).await,
        Callback::PublishDone { origin, key } => publish_done::handle(state, &origin, &key).await,
        Callback::UpdatePublish { origin, key } => update::handle(state, &origin, &key).await,
        Callback::Play {
            origin,
            name,
            player,
            token,
        } => play::start(state, &origin, &name, player, token.as_deref()).await,
        Callback::PlayDone { origin, .. } => play::stop(state, &origin).await,
        Callback::UpdatePlay { origin, .. } => play::renew(state, &origin).await,
        Callback::Done { .. } => Ok(ok()),
        Callback::RecordDone { origin, name, path } => {
            record_done::handle(state, &origin, &name, &path)
        }
    }
}

/// An empty 200: nginx goes on.
fn ok() -> Response {
    axum::response::IntoResponse::into_response(StatusCode::OK)
}
