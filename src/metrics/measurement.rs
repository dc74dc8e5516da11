//! One thing that happened to a message, as the sinks record it.

use super::names::BrokerError;
use opentelemetry::trace::SpanContext;
use std::time::Duration;

/// What a publisher or a consume pipeline measured.
pub(crate) enum Measurement<'a> {
    /// A message was published, or failed to be (`messaging.client.sent.messages`,
    /// `hyperfleet_broker_messages_published_total` or `…_errors_total`).
    Sent {
        /// What failed, with the `error.type` of the span.
        failure: Option<(BrokerError, &'static str)>,
    },
    /// A delivery arrived (`…consumed…`).
    Received,
    /// A delivery could not be decoded (`hyperfleet_broker_errors_total{error_type=conversion}`).
    Undecodable,
    /// The handler ran (`messaging.process.duration`, `hyperfleet_broker_message_duration_seconds`,
    /// and `…_errors_total{error_type=handler}` on failure).
    Processed(Timed<'a>),
    /// A client operation ended: a publish call, an ack or a nack
    /// (`messaging.client.operation.duration`).
    Operation(Timed<'a>),
}

/// A timed operation and the span that measured it (an exemplar when it is sampled).
pub(crate) struct Timed<'a> {
    /// `messaging.operation.name`.
    pub(crate) operation: &'static str,
    pub(crate) elapsed: Duration,
    /// `error.type` when it failed.
    pub(crate) error_type: Option<&'static str>,
    /// The exemplar of the sinks that keep them (the OpenTelemetry SDK records none).
    pub(crate) span: &'a SpanContext,
}

/// Whether `span` can be a sample's exemplar: a sampled span this process made. An unsampled
/// span's trace cannot be opened; a remote one (what the handler runs under when the tracer
/// makes no spans) did not measure the sample.
pub(crate) fn names_its_span(span: &SpanContext) -> bool {
    span.is_valid() && span.is_sampled() && !span.is_remote()
}
