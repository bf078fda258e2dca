//! The hooks' one error type and its one mapping to an HTTP answer for nginx.
//! nginx-rtmp reads only the status: 2xx goes on, 3xx redirects, anything else
//! refuses. The body is a short JSON for humans reading logs.

use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
};

/// Everything a callback can fail with.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    /// The form lacks a required field (named).
    #[error("malformed callback: missing `{0}`")]
    Malformed(&'static str),
    /// The callback carries a field nginx did not write as nginx wrote it: a client
    /// argument repeating an nginx field (named), or a `call` that disagrees with
    /// the callback's URL. Counted as `malformed_callback`.
    #[error("callback refused: `{0}` is not as nginx wrote it")]
    Forged(&'static str),
    /// The publisher's address used up its budget of refused publishes.
    #[error("too many refused publishes from this address; try again later")]
    Throttled,
    /// The callback did not carry the shared secret (or came from outside loopback
    /// when no secret is configured).
    #[error("callback not authenticated")]
    Unauthenticated,
    /// The control plane refused (bad key, ended stream); the reason is safe to log.
    #[error("refused: {0}")]
    Refused(String),
    /// The control plane could not be reached or answered with an error.
    #[error("control plane unavailable: {0}")]
    Upstream(tonic::Status),
}

impl HookError {
    fn status(&self) -> StatusCode {
        match self {
            Self::Malformed(_) => StatusCode::BAD_REQUEST,
            Self::Unauthenticated | Self::Forged(_) | Self::Throttled | Self::Refused(_) => {
                StatusCode::FORBIDDEN
            }
            Self::Upstream(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl IntoResponse for HookError {
    fn into_response(self) -> Response {
        let status = self.status();
        let (code, message) = match &self {
            Self::Malformed(_) => ("invalid_argument", self.to_string()),
            Self::Unauthenticated => ("unauthenticated", self.to_string()),
            Self::Forged(_) => ("permission_denied", self.to_string()),
            Self::Throttled => ("resource_exhausted", self.to_string()),
            Self::Refused(reason) => ("permission_denied", reason.clone()),
            Self::Upstream(source) => {
                tracing::error!(grpc.code = ?source.code(), error = source.message(), "control plane call failed");
                ("unavailable", "control plane unavailable".to_owned())
            }
        };
        if !matches!(self, Self::Upstream(_)) {
            tracing::warn!(http.status = status.as_u16(), reason = %message, "callback refused");
        }
        let body = serde_json::json!({ "error": { "code": code, "message": message } }).to_string();
        (status, [("content-type", "application/json")], body).into_response()
    }
}
