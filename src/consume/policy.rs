//! Choices a subscriber makes per message.

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
