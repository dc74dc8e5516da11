//! What the publisher does with trace context an event already carries.

/// Policy for an event that already carries a valid `traceparent` when it is published.
///
/// The CloudEvents Distributed Tracing extension says the extension carries the trace of the
/// *start* of the transmission and must not be rewritten per hop, so [`Preserve`] is the default.
///
/// [`Preserve`]: OverwritePolicy::Preserve
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum OverwritePolicy {
    /// Keep a valid `traceparent` (and its `tracestate`); the publish span links to it.
    /// An event without one, or with an invalid one, gets the publish span's context.
    #[default]
    Preserve,
    /// Always replace the event's trace context with the publish span's context.
    Overwrite,
}
