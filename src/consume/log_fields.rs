//! The log fields that the consume pipeline puts in a handler's context and the telemetry log
//! layer writes: shared here so that neither reaches into the other.

/// Log key of the CloudEvent id.
pub const EVENT_ID: &str = "event_id";
/// Log key of the subscription a message came from.
pub const SUBSCRIPTION: &str = "subscription";
/// Log key of the adapter handling a message.
pub const ADAPTER: &str = "adapter";

/// Carried in the OpenTelemetry [`Context`](opentelemetry::Context) the handler runs in, so
/// log lines written while handling a message can name it ([`EVENT_ID`], [`SUBSCRIPTION`],
/// [`ADAPTER`]) — the telemetry log layer reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageLogFields {
    /// The CloudEvent id.
    pub event_id: String,
    /// The subscription the message came from.
    pub subscription: String,
    /// The adapter, when the subscriber names one.
    pub adapter: Option<String>,
}
