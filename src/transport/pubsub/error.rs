//! Client-library errors as transport errors, keyed by gRPC code name.

use crate::transport::{ErrorCode, TransportError};
use google_cloud_gax::error::rpc::Code;
use google_cloud_pubsub::Error;

/// The gRPC code of a client-library error; connection trouble counts as `UNAVAILABLE`, a
/// time-out as `DEADLINE_EXCEEDED`.
pub(super) fn code(error: &Error) -> ErrorCode {
    // Exhausted retries wrap the last error: judge by that one.
    if error.is_exhausted()
        && let Some(last) = std::error::Error::source(error).and_then(|s| s.downcast_ref::<Error>())
    {
        return code(last);
    }
    if let Some(status) = error.status() {
        return from_code(status.code);
    }
    if error.is_timeout() {
        return ErrorCode::DeadlineExceeded;
    }
    if error.is_connect() || error.is_transport() || error.is_io() {
        return ErrorCode::Unavailable;
    }
    match error.http_status_code() {
        Some(404) => ErrorCode::NotFound,
        Some(409) => ErrorCode::AlreadyExists,
        Some(403) => ErrorCode::PermissionDenied,
        Some(401) => ErrorCode::Unauthenticated,
        Some(429) => ErrorCode::ResourceExhausted,
        Some(503) => ErrorCode::Unavailable,
        _ => ErrorCode::Unknown,
    }
}

fn from_code(code: Code) -> ErrorCode {
    match code {
        Code::NotFound => ErrorCode::NotFound,
        Code::AlreadyExists => ErrorCode::AlreadyExists,
        Code::InvalidArgument => ErrorCode::InvalidArgument,
        Code::FailedPrecondition => ErrorCode::FailedPrecondition,
        Code::Unavailable => ErrorCode::Unavailable,
        Code::DeadlineExceeded => ErrorCode::DeadlineExceeded,
        Code::PermissionDenied => ErrorCode::PermissionDenied,
        Code::Unauthenticated => ErrorCode::Unauthenticated,
        Code::ResourceExhausted => ErrorCode::ResourceExhausted,
        Code::Cancelled => ErrorCode::Cancelled,
        Code::Internal => ErrorCode::Internal,
        _ => ErrorCode::Unknown,
    }
}

/// `error` from an operation on `what` at `endpoint`.
pub(super) fn transport_error(error: Error, what: &str, endpoint: &str) -> TransportError {
    TransportError::new(code(&error), format!("{what} at {endpoint}: {error}")).with_source(error)
}
