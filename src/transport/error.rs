//! Errors of the transport layer.

use std::fmt;

/// Error codes, named after the gRPC status codes Pub/Sub reports.
///
/// [`ErrorCode::as_str`] is the value recorded as `error.type` on a failed span.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// The topic or subscription does not exist.
    NotFound,
    /// The topic or subscription already exists.
    AlreadyExists,
    /// The request was malformed (bad name, oversized message, …).
    InvalidArgument,
    /// The request is not allowed in the resource's current state.
    FailedPrecondition,
    /// The service cannot be reached now; retrying may help.
    Unavailable,
    /// The request did not finish in time.
    DeadlineExceeded,
    /// The caller lacks permission.
    PermissionDenied,
    /// The caller is not authenticated.
    Unauthenticated,
    /// A quota or flow-control limit was hit.
    ResourceExhausted,
    /// The operation was cancelled, for instance because the transport shut down.
    Cancelled,
    /// An internal error of the service.
    Internal,
    /// Anything else.
    Unknown,
}

impl ErrorCode {
    /// The gRPC code name, e.g. `NOT_FOUND`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotFound => "NOT_FOUND",
            Self::AlreadyExists => "ALREADY_EXISTS",
            Self::InvalidArgument => "INVALID_ARGUMENT",
            Self::FailedPrecondition => "FAILED_PRECONDITION",
            Self::Unavailable => "UNAVAILABLE",
            Self::DeadlineExceeded => "DEADLINE_EXCEEDED",
            Self::PermissionDenied => "PERMISSION_DENIED",
            Self::Unauthenticated => "UNAUTHENTICATED",
            Self::ResourceExhausted => "RESOURCE_EXHAUSTED",
            Self::Cancelled => "CANCELLED",
            Self::Internal => "INTERNAL",
            Self::Unknown => "UNKNOWN",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error from a [`Transport`](super::Transport).
#[derive(Debug, thiserror::Error)]
#[error("{code}: {message}")]
pub struct TransportError {
    code: ErrorCode,
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl TransportError {
    /// An error with a code and a message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            source: None,
        }
    }

    /// Attaches the underlying cause.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// The error's code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The human-readable message.
    pub fn message(&self) -> &str {
        &self.message
    }
}
