//! The edge's one error type and its one mapping to an HTTP answer:
//! `{"error": {"code", "message"}}` with gRPC codes mapped the way grpc-gateway does.

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use tonic::Code;

/// An error answered to an HTTP client.
#[derive(Clone, Debug, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Canonical code name, e.g. `NOT_FOUND`.
    pub code: &'static str,
    /// What went wrong; never internal detail, never a secret.
    pub message: String,
    /// Seconds to wait before retrying (429).
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// Builds an error.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// 400 INVALID_ARGUMENT naming `field`.
    pub fn invalid(field: &str, reason: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
            format!("{field}: {reason}"),
        )
    }

    /// 401 UNAUTHENTICATED.
    pub fn unauthenticated(message: &str) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", message)
    }

    /// 404 NOT_FOUND.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "NOT_FOUND", message)
    }

    /// 503 UNAVAILABLE with a Retry-After: this edge holds all the sockets it may.
    pub fn edge_full() -> Self {
        Self {
            retry_after: Some(5),
            ..Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "UNAVAILABLE",
                "this edge holds all the sockets it may; retry shortly or use another edge",
            )
        }
    }

    /// 429 RESOURCE_EXHAUSTED with a Retry-After: this client holds all the sockets
    /// one client may.
    pub fn too_many_sockets() -> Self {
        Self {
            retry_after: Some(5),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "RESOURCE_EXHAUSTED",
                "this client holds all the sockets one client may; close one first",
            )
        }
    }

    /// 429 RESOURCE_EXHAUSTED with a Retry-After.
    pub fn rate_limited(retry_after: u64) -> Self {
        Self {
            retry_after: Some(retry_after),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "RESOURCE_EXHAUSTED",
                "too many requests; slow down",
            )
        }
    }
}

/// Maps a gRPC code to its HTTP status and name (grpc-gateway's table).
pub fn http_of(code: Code) -> (StatusCode, &'static str) {
    match code {
        Code::Ok => (StatusCode::OK, "OK"),
        Code::Cancelled => (
            StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
            "CANCELLED",
        ),
        Code::Unknown => (StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN"),
        Code::InvalidArgument => (StatusCode::BAD_REQUEST, "INVALID_ARGUMENT"),
        Code::DeadlineExceeded => (StatusCode::GATEWAY_TIMEOUT, "DEADLINE_EXCEEDED"),
        Code::NotFound => (StatusCode::NOT_FOUND, "NOT_FOUND"),
        Code::AlreadyExists => (StatusCode::CONFLICT, "ALREADY_EXISTS"),
        Code::PermissionDenied => (StatusCode::FORBIDDEN, "PERMISSION_DENIED"),
        Code::ResourceExhausted => (StatusCode::TOO_MANY_REQUESTS, "RESOURCE_EXHAUSTED"),
        Code::FailedPrecondition => (StatusCode::BAD_REQUEST, "FAILED_PRECONDITION"),
        Code::Aborted => (StatusCode::CONFLICT, "ABORTED"),
        Code::OutOfRange => (StatusCode::BAD_REQUEST, "OUT_OF_RANGE"),
        Code::Unimplemented => (StatusCode::NOT_IMPLEMENTED, "UNIMPLEMENTED"),
        Code::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL"),
        Code::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE"),
        Code::DataLoss => (StatusCode::INTERNAL_SERVER_ERROR, "DATA_LOSS"),
        Code::Unauthenticated => (StatusCode::UNAUTHORIZED, "UNAUTHENTICATED"),
    }
}

impl From<tonic::Status> for ApiError {
    fn from(status: tonic::Status) -> Self {
        let (http, code) = http_of(status.code());
        // The control plane sends only safe messages, except for internal failures,
        // which it already reduces to "internal error". The edge's own channel errors
        // (control plane unreachable) are logged here and summarised.
        let message = match status.code() {
            Code::Unavailable | Code::Unknown | Code::Internal | Code::DeadlineExceeded => {
                tracing::error!(grpc.code = ?status.code(), error = status.message(), "control plane call failed");
                "the service is temporarily unavailable, retry later".to_owned()
            }
            _ => status.message().to_owned(),
        };
        Self {
            // A limit (a stream's viewer cap) frees up as viewers leave.
            retry_after: (status.code() == Code::ResourceExhausted).then_some(5),
            ..Self::new(http, code, message)
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": { "code": self.code, "message": self.message } });
        let mut response = (self.status, Json(body)).into_response();
        if let Some(value) = self
            .retry_after
            .and_then(|s| HeaderValue::from_str(&s.to_string()).ok())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        if self.status == StatusCode::UPGRADE_REQUIRED {
            let headers = response.headers_mut();
            headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
            headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
            headers.insert(
                header::SEC_WEBSOCKET_VERSION,
                HeaderValue::from_static("13"),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_codes_map_like_grpc_gateway() {
        for (code, status) in [
            (Code::NotFound, 404),
            (Code::InvalidArgument, 400),
            (Code::AlreadyExists, 409),
            (Code::PermissionDenied, 403),
            (Code::Unauthenticated, 401),
            (Code::ResourceExhausted, 429),
            (Code::Unavailable, 503),
            (Code::DeadlineExceeded, 504),
            (Code::FailedPrecondition, 400),
        ] {
            assert_eq!(http_of(code).0.as_u16(), status, "{code:?}");
        }
    }

    #[test]
    fn upstream_outages_do_not_leak_detail() {
        let err = ApiError::from(tonic::Status::unavailable(
            "tcp connect error: 10.0.0.3:50051",
        ));
        assert_eq!(err.status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(!err.message.contains("10.0.0.3"));
    }
}
