//! Fields the subscriber loop adds to the handler's logging context.

/// Carried in the OpenTelemetry [`Context`](opentelemetry::Context) the handler runs in, so
/// log lines written while handling a message can name it (`event_id`, `subscription`,
/// `adapter`) — the telemetry log layer reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageLogFields {
    /// The CloudEvent id.
    pub event_id: String,
    /// The subscription the message came from.
    pub subscription: String,
    /// The adapter, when the subscriber names one.
    pub adapter: Option<String>,
}
