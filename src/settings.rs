//! The settings every traced piece shares — the publisher, the pull subscriber, the push
//! endpoint and the HTTP glue: one plain value, built once and handed to each with
//! `.settings(settings)`.

pub use crate::span::TracerSource;
pub use crate::span::conventions::{Conventions, OTEL_SEMCONV_STABILITY_OPT_IN};
pub use crate::span::timing::AttributeTiming;
pub use crate::span::unsampled::UnsampledParent;

use crate::carrier::Propagation;
use crate::metrics::Metrics;
use crate::span::attributes::{self, AttributeHook};
use crate::span::{self, SharedTracer};
use cloudevents::Event;
use opentelemetry::baggage::{BaggageExt, KeyValueMetadata};
use opentelemetry::trace::{Link, TraceContextExt};
use opentelemetry::{Context, KeyValue};
use std::sync::Arc;

/// Where spans and metrics go and how they look, for every publisher, subscriber, push
/// endpoint and HTTP glue that is given it. Cheap to clone: build it once, after installing the
/// application's tracer provider (or name one with [`tracer_provider`](Self::tracer_provider)),
/// and hand a clone to each piece.
///
/// The settings that only the ways in use (adapter, process span name, parent mode, ack policy,
/// `googclient_*` fallback) are ignored by a publisher.
///
/// ```
/// use hyperfleet_tracing::settings::{AckPolicy, ParentMode};
/// use hyperfleet_tracing::transport::memory::MemoryTransport;
/// use hyperfleet_tracing::{Settings, TracedPublisher, TracedSubscriber};
/// use opentelemetry_sdk::trace::SdkTracerProvider;
///
/// let provider = SdkTracerProvider::builder().build();
/// let settings = Settings::new()
///     .tracer_provider(&provider)
///     .adapter("validation")
///     .parent_mode(ParentMode::Child)
///     .ack_policy(AckPolicy::NackOnError);
/// let transport = MemoryTransport::new();
/// let publisher = TracedPublisher::new(transport.clone(), "hyperfleet-clusters")
///     .settings(settings.clone());
/// let subscriber = TracedSubscriber::new(transport, "validation", "hyperfleet-clusters")
///     .settings(settings);
/// # let _ = (publisher, subscriber);
/// ```
#[derive(Clone)]
pub struct Settings {
    pub(crate) tracer: SharedTracer,
    pub(crate) propagation: Propagation,
    pub(crate) conventions: Conventions,
    pub(crate) metrics: Metrics,
    pub(crate) adapter: Option<String>,
    /// `None`: `adapter.process`, as the standard names it (`subscribe {subscription}` under
    /// the current conventions).
    pub(crate) process_span_name: Option<String>,
    pub(crate) parent_mode: ParentMode,
    pub(crate) ack_policy: AckPolicy,
    pub(crate) attributes: AttributeHook,
    pub(crate) googclient_fallback: bool,
    pub(crate) attribute_timing: AttributeTiming,
    pub(crate) unsampled_parent: UnsampledParent,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("conventions", &self.conventions)
            .field("metrics", &self.metrics)
            .field("adapter", &self.adapter)
            .field("process_span_name", &self.process_span_name)
            .field("parent_mode", &self.parent_mode)
            .field("ack_policy", &self.ack_policy)
            .field("googclient_fallback", &self.googclient_fallback)
            .field("attribute_timing", &self.attribute_timing)
            .field("unsampled_parent", &self.unsampled_parent)
            .finish_non_exhaustive()
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self::new()
    }
}

impl Settings {
    /// The defaults: the global tracer provider as it is now, the global propagator when the
    /// application configured one (the strict W3C one otherwise), the conventions
    /// `OTEL_SEMCONV_STABILITY_OPT_IN` asks for, [`Metrics::global`], no adapter name, process
    /// span `adapter.process`, [`ParentMode::Child`], [`AckPolicy::NackOnError`],
    /// [`hyperfleet_resource`](crate::span::attributes::hyperfleet_resource) as the attribute hook,
    /// the `googclient_*` fallback on.
    pub fn new() -> Self {
        Self {
            tracer: span::global_tracer(),
            propagation: Propagation::global(),
            conventions: Conventions::from_env(),
            metrics: Metrics::global(),
            adapter: None,
            process_span_name: None,
            parent_mode: ParentMode::default(),
            ack_policy: AckPolicy::default(),
            attributes: Arc::new(attributes::hyperfleet_resource),
            googclient_fallback: true,
            attribute_timing: AttributeTiming::default(),
            unsampled_parent: UnsampledParent::default(),
        }
    }

    /// Takes spans from `provider` instead of the global tracer provider.
    pub fn tracer_provider(mut self, provider: &impl TracerSource) -> Self {
        self.tracer = provider.shared_tracer();
        self
    }

    /// Moves trace context with `propagator` instead of the global propagator (for instance
    /// the one the telemetry bootstrap configured, `Telemetry::propagator`).
    pub fn propagator(
        mut self,
        propagator: impl opentelemetry::propagation::TextMapPropagator + Send + Sync + 'static,
    ) -> Self {
        self.propagation = Propagation::new(propagator);
        self
    }

    /// Sets the conventions spans follow (default: what `OTEL_SEMCONV_STABILITY_OPT_IN` says,
    /// [`Conventions::from_env`]).
    pub fn conventions(mut self, conventions: Conventions) -> Self {
        self.conventions = conventions;
        self
    }

    /// Records metrics into `metrics` instead of [`Metrics::global`].
    pub fn metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// Names the adapter (`hyperfleet.adapter` on the process span, `adapter` in log lines).
    pub fn adapter(mut self, adapter: impl Into<String>) -> Self {
        self.adapter = Some(adapter.into());
        self
    }

    /// Sets the process span's name (default `adapter.process`; `subscribe {subscription}`
    /// under the current conventions).
    pub fn process_span_name(mut self, name: impl Into<String>) -> Self {
        self.process_span_name = Some(name.into());
        self
    }

    /// Sets how a way in's first span relates to the context the caller sent (the event's
    /// creation context; an HTTP request's `traceparent`).
    pub fn parent_mode(mut self, mode: ParentMode) -> Self {
        self.parent_mode = mode;
        self
    }

    /// Sets what happens to a message whose handler fails.
    pub fn ack_policy(mut self, policy: AckPolicy) -> Self {
        self.ack_policy = policy;
        self
    }

    /// Replaces the hook that adds attributes from the event to message spans at their start,
    /// where samplers see them. Never return payload data from it.
    pub fn attributes<F>(mut self, hook: F) -> Self
    where
        F: Fn(&Event) -> Vec<KeyValue> + Send + Sync + 'static,
    {
        self.attributes = Arc::new(hook);
        self
    }

    /// Whether a message whose event carries no trace context continues the trace a Google
    /// Pub/Sub client left in its `googclient_traceparent` attribute (default on). When both
    /// exist, the event's own context wins.
    pub fn googclient_fallback(mut self, on: bool) -> Self {
        self.googclient_fallback = on;
        self
    }

    /// Sets when message spans are given their per-message attributes (default
    /// [`AttributeTiming::WhenRecording`]).
    pub fn attribute_timing(mut self, timing: AttributeTiming) -> Self {
        self.attribute_timing = timing;
        self
    }

    /// Sets what happens under a valid parent context that is neither sampled nor recording
    /// (default [`UnsampledParent::Follow`]).
    pub fn unsampled_parent(mut self, unsampled: UnsampledParent) -> Self {
        self.unsampled_parent = unsampled;
        self
    }
}

/// How a way in's first span relates to the context the caller sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ParentMode {
    /// The receive span is a child of the creation context: one trace from publisher to
    /// handler, which is what the HyperFleet flow needs.
    #[default]
    Child,
    /// The receive span starts a new trace and links to the creation context. For producers
    /// whose trace context should not be trusted (or not inherit their sampling decision).
    /// The creation context's baggage still reaches the handler, as the messaging conventions'
    /// users ask, and so goes on with what the handler publishes or calls: where the producer's
    /// baggage is not to be trusted either, clear it in the handler
    /// (`Context::current().with_cleared_baggage()`) or use a propagator without baggage.
    Link,
}

impl ParentMode {
    /// The parent and links of a span that consumes what `creation` produced: its child, or a
    /// new root linked to it that keeps its baggage (no link when `creation` carries no valid
    /// context).
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
                // A new trace, but the producer's baggage still reaches the handler.
                let baggage = creation.baggage();
                let root = match baggage.len() {
                    0 => Context::new(),
                    _ => Context::new().with_baggage(baggage.iter().map(|(key, (value, meta))| {
                        KeyValueMetadata::new(key.clone(), value.clone(), meta.clone())
                    })),
                };
                (root, links)
            }
        }
    }
}

/// What a way in tells the broker when the handler fails or panics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum AckPolicy {
    /// Nack so the message is redelivered, and dead-lettered after the subscription's maximum
    /// attempts (what hyperfleet-broker does).
    #[default]
    NackOnError,
    /// Always ack, relying on the producer to re-publish (what the Go HyperFleet adapter does).
    /// The span still records the failure.
    AlwaysAck,
}

/// Where [`TracedSubscriber`](crate::TracedSubscriber) runs its handlers.
///
/// Either way up to the subscriber's concurrency run at once, ordering keys keep their order,
/// a panic is recorded and nacked, and at the shutdown timeout the handlers still running are
/// dropped, which nacks their messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Execution {
    /// Decided by the runtime the loop runs on: [`TaskPerMessage`](Self::TaskPerMessage) on
    /// a multi-threaded Tokio runtime, where a task of its own lets a handler run in parallel
    /// and keeps one that blocks its thread from holding up the loop;
    /// [`LoopTask`](Self::LoopTask) on a current-thread runtime (or outside Tokio), where
    /// there is one thread, so a task of its own would give a handler neither and only cost a
    /// spawn per message.
    #[default]
    Auto,
    /// Each handler in a task of its own: on a multi-threaded runtime handlers run in
    /// parallel, and a handler that blocks its thread in synchronous code leaves the loop free
    /// to stop at the shutdown timeout.
    TaskPerMessage,
    /// Every handler on the loop's own task, polled together (as a stream's
    /// `buffer_unordered` would): no task is spawned per message, which makes the loop
    /// cheaper per message, but the handlers share one thread at a time, and a handler that
    /// blocks its thread blocks the loop, its shutdown timeout included. For handlers that
    /// await I/O rather than compute, on a multi-threaded runtime too.
    LoopTask,
}

impl Execution {
    /// What [`Auto`](Self::Auto) means on the runtime the caller runs on.
    pub(crate) fn resolved(self) -> Self {
        use tokio::runtime::{Handle, RuntimeFlavor};
        match self {
            Self::Auto => match Handle::try_current().map(|runtime| runtime.runtime_flavor()) {
                Ok(RuntimeFlavor::CurrentThread) | Err(_) => Self::LoopTask,
                Ok(_) => Self::TaskPerMessage,
            },
            chosen => chosen,
        }
    }
}
