//! Whether spans under an unsampled parent are left to the sampler.

use opentelemetry::Context;
use opentelemetry::trace::TraceContextExt;

/// What the publisher and the consume pipeline do when the parent context of a span they
/// would start is valid, not sampled and not recording: at the standard's production ratio,
/// almost every message after the first hop.
///
/// Under a parent-based sampler (the standard's `parentbased_traceidratio`) such a span is
/// never recorded, whatever its attributes: the SDK still makes it, with a span id of its
/// own that nothing exports. [`Follow`](Self::Follow) skips that work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UnsampledParent {
    /// The tracer's sampler decides, as for any span.
    #[default]
    AskSampler,
    /// No span is started (nor, under the current conventions, the settle spans): the handler
    /// runs in the parent's context, and a published event carries the parent's (unsampled)
    /// trace context onward. Logs still correlate with the trace id (their span id is the
    /// parent's); metrics are recorded as always. Only for parent-based samplers that drop
    /// a child of an unsampled parent: not with the telemetry module's always-sample rules,
    /// which record such spans to keep the ones that fail or run slow
    /// (with the telemetry module's set-up, `Config::unsampled_parent` says which applies).
    Follow,
}

impl UnsampledParent {
    /// Whether no span is to be started under `parent`.
    pub(crate) fn skips(self, parent: &Context) -> bool {
        if self == Self::AskSampler {
            return false;
        }
        let span = parent.span();
        let context = span.span_context();
        context.is_valid() && !context.is_sampled() && !span.is_recording()
    }
}
