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
///
/// ```
/// use cloudevents::{EventBuilder, EventBuilderV10};
/// use hyperfleet_tracing::transport::memory::MemoryTransport;
/// use hyperfleet_tracing::{PublishOptions, Settings, TracedPublisher};
/// use hyperfleet_tracing::settings::UnsampledParent;
/// use opentelemetry::Context;
/// use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId};
/// use opentelemetry_sdk::trace::SdkTracerProvider;
///
/// # tokio::runtime::Runtime::new()?.block_on(async {
/// let transport = MemoryTransport::new();
/// transport.create_topic("hyperfleet-clusters")?;
/// let provider = SdkTracerProvider::builder().build(); // parent-based, always on
/// let publisher = TracedPublisher::new(transport, "hyperfleet-clusters").settings(
///     Settings::new()
///         .tracer_provider(&provider)
///         .unsampled_parent(UnsampledParent::Follow),
/// );
/// // A trace its root did not sample, as 99 of 100 are at a 1% ratio.
/// let upstream = SpanContext::new(
///     TraceId::from(0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736),
///     SpanId::from(0x00f0_67aa_0ba9_02b7),
///     TraceFlags::default(),
///     true,
///     Default::default(),
/// );
/// let parent = Context::new().with_remote_span_context(upstream.clone());
/// let event = EventBuilderV10::new()
///     .id("018f0f7e-0000-7000-8000-000000000001")
///     .source("hyperfleet-sentinel")
///     .ty("com.redhat.hyperfleet.cluster.reconcile")
///     .build()?;
/// let published = publisher
///     .publish_with(event, PublishOptions::new().parent(parent))
///     .await?;
/// // No publish span: the event carries the upstream trace, unsampled, under a parent id of
/// // the publish's own that nothing records.
/// assert_eq!(published.trace_context.trace_id(), upstream.trace_id());
/// assert_ne!(published.trace_context.span_id(), upstream.span_id());
/// assert!(!published.trace_context.is_sampled());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum UnsampledParent {
    /// The tracer's sampler decides, as for any span: for a sampler that may record a child
    /// of an unsampled parent (one that is not parent-based, or the telemetry module's
    /// always-sample rules, which record such spans to keep the ones that fail or run slow;
    /// `Telemetry::settings()` picks it for them).
    AskSampler,
    /// No span is started (nor, under the current conventions, the settle spans): the handler
    /// runs in the parent's trace, and a published event carries it onward, unsampled, under
    /// a span id of the hop's own that nothing records (as the SDK gives a span its sampler
    /// drops, so the next hop still sees a new W3C `parent-id`). Logs still correlate with
    /// the trace id; metrics are recorded as always. Only for parent-based samplers that drop
    /// a child of an unsampled parent: not with the telemetry module's always-sample rules,
    /// which record such spans to keep the ones that fail or run slow
    /// (with the telemetry module's set-up, `Config::unsampled_parent` says which applies).
    /// The default: the SDK's default sampler and the standard's
    /// (`parentbased_traceidratio`) are parent-based.
    #[default]
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
