//! Why a request is no push delivery, and why a verifier refused one.

use axum::http::StatusCode;

/// Why a request is not a Pub/Sub push or Eventarc delivery; answered with 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NotAPushDelivery {
    /// The body is not the JSON a wrapped push or an Eventarc event carries.
    #[error("the body is not JSON: {0}")]
    NotJson(String),
    /// The JSON has no `message` object (wrapped push, Eventarc `MessagePublishedData`).
    #[error("no `message` object in the body")]
    NoMessage,
    /// The message's `data` is not base64.
    #[error("the message data is not base64: {0}")]
    DataNotBase64(String),
    /// An unwrapped delivery's metadata header is not text.
    #[error("the header {0} is not text")]
    HeaderNotText(&'static str),
}

impl NotAPushDelivery {
    /// A short, fixed name for the reason (`error.type`, log fields).
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::NotJson(_) => "not_json",
            Self::NoMessage => "no_message",
            Self::DataNotBase64(_) => "data_not_base64",
            Self::HeaderNotText(_) => "header_not_text",
        }
    }
}

/// A verifier's refusal: nothing of the request is processed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Rejection {
    /// No or bad credentials: 401.
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// Credentials that may not deliver here: 403.
    #[error("forbidden: {0}")]
    Forbidden(String),
}

impl Rejection {
    /// The status the request is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
        }
    }
}
