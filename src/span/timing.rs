//! When a messaging span is given its per-message attributes.

use opentelemetry::Context;
use opentelemetry::trace::TraceContextExt as _;

/// When publish, receive and process spans are given their per-message attributes: the
/// message id, ordering key, delivery attempt and body size, the `cloudevents.*` attributes
/// and the attribute hook's.
///
/// The attributes the messaging conventions ask for at creation, because samplers may use
/// them (`messaging.system`, `messaging.operation.*`, `messaging.destination.name`, the
/// subscription, `server.*`), are always given at the start.
///
/// Exported spans carry the same attributes either way. The default,
/// [`WhenRecording`](Self::WhenRecording), is right for every sampler that decides on what
/// the conventions hand it at creation (the SDK's, the standard's ratio samplers);
/// [`AtStart`](Self::AtStart) is for a sampler that reads per-message attributes of every
/// span, roots included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum AttributeTiming {
    /// At the span's start, where a sampler sees them all: for samplers that decide on
    /// per-message attributes, such as the telemetry module's `AlwaysSampleRules` with
    /// listed resources (`Telemetry::settings()` picks it for them).
    AtStart,
    /// For spans expected to record. A span whose parent is sampled gets them at its start,
    /// where its sampler sees them: a parent-based sampler (the SDK's default, the
    /// standard's) records such a span, so nothing is built in vain; a sampler that may drop
    /// it (a lower trace-id ratio than upstream's, one that decides by name) has them built
    /// for spans it drops. Any other span (a root, a child of an unsampled parent) gets them
    /// once it has started and is known to record, its sampler seeing the conventions'
    /// creation-time attributes only: at a production ratio almost none is built.
    #[default]
    WhenRecording,
}

impl AttributeTiming {
    /// Whether a span under `parent` is given its per-message attributes only once it is
    /// known to record.
    pub(crate) fn deferred_under(self, parent: &Context) -> bool {
        self == Self::WhenRecording && !parent.span().span_context().is_sampled()
    }
}
