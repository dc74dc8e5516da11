//! Choices a subscriber makes per message.

use opentelemetry::Context;
use opentelemetry::trace::{Link, TraceContextExt};

/// How the receive span relates to the creation context the event carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ParentMode {
    /// The receive span is a child of the creation context: one trace from publisher to
    /// handler, which is what the HyperFleet flow needs.
    #[default]
    Child,
    /// The receive span starts a new trace and links to the creation context. For producers
    /// whose trace context should not be trusted (or not inherit their sampling decision).
    Link,
}

impl ParentMode {
    /// The parent and links of a span that consumes what `creation` produced: its child, or a
    /// new root linked to it (no link when `creation` carries no valid context).
    pub(crate) fn resolve(self, creation: Context) -> (Context, Vec<Link>) {
        match self {
            Self::Child => (creation, Vec::new()),
            Self::Link => {
                let span_context = creation.span().span_context().clone();
                let links = if span_context.is_valid() {
                    vec![Link::with_context(span_context)]
                } else {
                    Vec::new()
                };
                (Context::new(), links)
            }
        }
    }
}

/// What the subscriber tells the transport when the handler fails or panics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AckPolicy {
    /// Nack so the message is redelivered, and dead-lettered after the subscription's maximum
    /// attempts (what hyperfleet-broker does).
    #[default]
    NackOnError,
    /// Always ack, relying on the producer to re-publish (what the Go HyperFleet adapter does).
    /// The span still records the failure.
    AlwaysAck,
}
