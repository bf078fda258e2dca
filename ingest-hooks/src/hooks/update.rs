//! `on_update` of a publisher: the heartbeat. A non-2xx answer makes nginx drop the
//! broadcaster, which is how EndStream and key rotation cut a live broadcast off.
//!
//! When the control plane cannot be reached (after retries within nginx's time), an
//! admitted broadcaster stays on air for `NOVA_UPDATE_GRACE` counted from the start
//! of the outage, then is cut off. The first heartbeat that gets through again is
//! answered by the control plane, so an EndStream or key rotation made meanwhile
//! cuts the broadcaster off at that update.

use axum::response::Response;

use crate::{
    callback::{Origin, StreamKey},
    error::HookError,
    metrics::BroadcastError,
    outage::Keep,
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
        Err(HookError::Upstream(status)) => {
            match state
                .upstream()
                .outage()
                .failed(state.config().update_grace)
            {
                Keep::Within(lasted) => {
                    tracing::warn!(
                        grpc.code = ?status.code(),
                        outage.seconds = lasted.as_secs_f64(),
                        client.id = %origin.client_id,
                        "control plane unreachable; keeping the admitted broadcaster on air"
                    );
                    state.metrics().error(BroadcastError::HeartbeatUndelivered);
                    Ok(super::ok())
                }
                Keep::Expired(lasted) => {
                    tracing::warn!(
                        outage.seconds = lasted.as_secs_f64(),
                        client.id = %origin.client_id,
                        "control plane unreachable for longer than NOVA_UPDATE_GRACE; cutting the broadcaster off"
                    );
                    Err(HookError::Upstream(status))
                }
            }
        }
        Err(err) => Err(err),
    }
}
