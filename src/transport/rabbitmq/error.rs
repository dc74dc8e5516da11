//! lapin's errors as transport errors.

use crate::transport::{ErrorCode, TransportError};
use lapin::ErrorKind;

/// `error` with the code its AMQP reply code (or its kind) maps to.
pub(super) fn transport_error(error: &lapin::Error, doing: &str) -> TransportError {
    let code = match error.kind() {
        ErrorKind::ProtocolError(amqp) => match amqp.get_id() {
            404 => ErrorCode::NotFound,
            403 => ErrorCode::PermissionDenied,
            406 => ErrorCode::FailedPrecondition,
            311 => ErrorCode::InvalidArgument,
            312 | 313 => ErrorCode::FailedPrecondition,
            320 => ErrorCode::Unavailable,
            _ => ErrorCode::Internal,
        },
        ErrorKind::IOError(_)
        | ErrorKind::MissingHeartbeatError
        | ErrorKind::InvalidConnectionState(_)
        | ErrorKind::InvalidChannelState(..) => ErrorCode::Unavailable,
        ErrorKind::AuthProviderError(_) => ErrorCode::Unauthenticated,
        _ => ErrorCode::Unknown,
    };
    TransportError::new(code, format!("{doing}: {error}"))
}
