//! When a messaging span is given its per-message attributes.

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
    /// Only once the span has started and is known to record. A sampler sees the
    /// conventions' creation-time attributes only; a span that is not sampled (almost every
    /// one, at a production ratio) costs no attribute building.
    #[default]
    WhenRecording,
}

impl AttributeTiming {
    /// Whether per-message attributes wait until the span is known to record.
    pub(crate) fn deferred(self) -> bool {
        self == Self::WhenRecording
    }
}
