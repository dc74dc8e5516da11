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
/// [`AtStart`](Self::AtStart) is for a sampler that reads per-message attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum AttributeTiming {
    /// At the span's start, where a sampler sees them all: for samplers that decide on
    /// per-message attributes, such as the telemetry module's `AlwaysSampleRules` with
    /// listed resources (`Telemetry::settings()` picks it for them).
    AtStart,
    /// Only for spans that record: at the start of a span whose parent is sampled, which
    /// every sampler that honours its parent or decides by the trace id records (its sampler
    /// sees them); otherwise once the span has started and is known to record, its sampler
    /// seeing the conventions' creation-time attributes only. A span that is not sampled
    /// (almost every one, at a production ratio) costs no attribute building.
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
