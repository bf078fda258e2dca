//! The control plane's one error type and its one mapping to `tonic::Status`.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::auth::Role;

/// Everything a control-plane call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A request field is missing or malformed; `field` is its path, e.g. `stream.title`.
    #[error("{field}: {reason}")]
    InvalidArgument {
        /// Path of the offending field.
        field: &'static str,
        /// What is wrong with it; never contains a secret.
        reason: String,
    },
    /// The caller presented no valid service token, or named no principal.
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// The caller is authenticated but may not do this.
    #[error("{0}")]
    PermissionDenied(&'static str),
    /// The calling service's role may not call this method.
    #[error("service role `{role}` may not call {method}")]
    MethodNotAllowed {
        /// The caller's role.
        role: Role,
        /// The method path, e.g. `/nova.streaming.v1.IngestService/AuthorizePublish`.
        method: String,
    },
    /// The calling service's role may not act for a user, yet named one.
    #[error("service role `{0}` may not act for a user: send no x-nova-principal")]
    PrincipalNotAllowed(Role),
    /// The named resource does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// The resource is in a state that forbids the call.
    #[error("{0}")]
    FailedPrecondition(String),
    /// A PostgreSQL query failed.
    #[error("database error: {0}")]
    Database(#[from] diesel::result::Error),
    /// No PostgreSQL connection could be had in time.
    #[error("database unavailable: {0}")]
    DatabaseUnavailable(String),
    /// A limit is reached (a stream's viewer cap); the text says which.
    #[error("{0}")]
    ResourceExhausted(String),
    /// A local operation that cannot fail in practice failed (key generation,
    /// signing); the text names it and never holds a secret.
    #[error("internal failure: {0}")]
    Internal(&'static str),
    /// Redis failed or could not be reached.
    #[error("redis error: {0}")]
    Redis(#[from] redis::RedisError),
}

impl Error {
    /// Builds an [`Error::InvalidArgument`].
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::InvalidArgument {
            field,
            reason: reason.into(),
        }
    }
}

impl From<bb8::RunError<diesel_async::pooled_connection::PoolError>> for Error {
    fn from(err: bb8::RunError<diesel_async::pooled_connection::PoolError>) -> Self {
        Self::DatabaseUnavailable(err.to_string())
    }
}

impl From<Error> for Status {
    fn from(err: Error) -> Self {
        match err {
            Error::InvalidArgument { field, reason } => Status::with_error_details(
                Code::InvalidArgument,
                format!("{field}: {reason}"),
                ErrorDetails::with_bad_request_violation(field, reason),
            ),
            Error::Unauthenticated(msg) => Status::unauthenticated(msg),
            Error::PermissionDenied(msg) => Status::permission_denied(msg),
            err @ (Error::MethodNotAllowed { .. } | Error::PrincipalNotAllowed(_)) => {
                Status::permission_denied(err.to_string())
            }
            Error::NotFound(what) => Status::not_found(format!("{what} not found")),
            Error::FailedPrecondition(msg) => Status::failed_precondition(msg),
            Error::Database(source) => {
                tracing::error!(error = %source, "database query failed");
                Status::internal("internal error")
            }
            Error::DatabaseUnavailable(source) => {
                tracing::error!(error = %source, "database unavailable");
                Status::unavailable("database unavailable, retry later")
            }
            Error::ResourceExhausted(msg) => Status::resource_exhausted(msg),
            Error::Internal(what) => {
                tracing::error!(error = what, "internal failure");
                Status::internal("internal error")
            }
            Error::Redis(source) => {
                tracing::error!(error = %source, "redis failed");
                Status::unavailable("session store unavailable, retry later")
            }
        }
    }
}

/// Result of control-plane operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_argument_names_the_field_in_message_and_details() {
        let status = Status::from(Error::invalid("stream.title", "must not be empty"));
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(status.message(), "stream.title: must not be empty");
        let details = status.get_error_details();
        let violations = &details
            .bad_request()
            .expect("bad request details")
            .field_violations;
        assert_eq!(violations[0].field, "stream.title");
    }

    #[test]
    fn internal_errors_hide_their_detail() {
        let status = Status::from(Error::Database(diesel::result::Error::NotFound));
        assert_eq!(status.code(), Code::Internal);
        assert_eq!(status.message(), "internal error");
    }
}
