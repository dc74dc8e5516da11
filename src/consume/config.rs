//! The consume pipeline's settings, as plain values: what a subscriber's builder holds.

use super::{AckPolicy, ParentMode};
use crate::attribute_timing::AttributeTiming;
use crate::attributes::{self, AttributeHook};
use crate::carrier::Propagation;
use crate::conventions::Conventions;
use crate::instrumentation::{self, SharedTracer};
use crate::metrics::Metrics;
use crate::naming::SpanNaming;
use crate::unsampled_parent::UnsampledParent;
use std::sync::Arc;

/// How deliveries of one subscription are consumed. Nothing here is built yet: the
/// [`Consumer`](super::Consumer) made from it builds its span templates once.
#[derive(Clone)]
pub(crate) struct ConsumerConfig {
    pub(crate) topic: String,
    pub(crate) subscription: String,
    pub(crate) adapter: Option<String>,
    /// `None`: `adapter.process`, as the standard names it (`subscribe {subscription}` under
    /// the current conventions).
    pub(crate) process_span_name: Option<String>,
    pub(crate) conventions: Conventions,
    pub(crate) naming: SpanNaming,
    pub(crate) parent_mode: ParentMode,
    pub(crate) ack_policy: AckPolicy,
    pub(crate) attributes: AttributeHook,
    pub(crate) attribute_timing: AttributeTiming,
    pub(crate) unsampled_parent: UnsampledParent,
    pub(crate) googclient_fallback: bool,
    pub(crate) tracer: SharedTracer,
    pub(crate) propagation: Propagation,
    pub(crate) metrics: Metrics,
}

impl ConsumerConfig {
    /// The defaults: process span `adapter.process`, [`ParentMode::Child`],
    /// [`AckPolicy::NackOnError`], `{destination} {operation}` names, HyperFleet resource
    /// attributes, the `googclient_*` fallback on, the global tracer, propagator and metrics.
    pub(crate) fn new(subscription: String, topic: String) -> Self {
        Self {
            topic,
            subscription,
            adapter: None,
            process_span_name: None,
            conventions: Conventions::from_env(),
            naming: SpanNaming::default(),
            parent_mode: ParentMode::default(),
            ack_policy: AckPolicy::default(),
            attributes: Arc::new(attributes::hyperfleet_resource),
            attribute_timing: AttributeTiming::default(),
            unsampled_parent: UnsampledParent::default(),
            googclient_fallback: true,
            tracer: instrumentation::global_tracer(),
            propagation: Propagation::global(),
            metrics: Metrics::global(),
        }
    }
}

/// The consume pipeline's settings as builder methods, for every way in (the pull loop, the
/// push endpoint): `consumer_settings!(config)` where `config` is the `ConsumerConfig` field.
macro_rules! consumer_settings {
    ($field:ident) => {
        /// Names the adapter (`hyperfleet.adapter` on the process span).
        pub fn adapter(mut self, adapter: impl Into<String>) -> Self {
            self.$field.adapter = Some(adapter.into());
            self
        }

        /// Sets the process span's name (default `adapter.process`; `subscribe {subscription}`
        /// under the current conventions).
        pub fn process_span_name(mut self, name: impl Into<String>) -> Self {
            self.$field.process_span_name = Some(name.into());
            self
        }

        /// Sets the conventions spans follow (default: what `OTEL_SEMCONV_STABILITY_OPT_IN`
        /// says, [`Conventions::from_env`]($crate::Conventions::from_env)).
        pub fn conventions(mut self, conventions: $crate::Conventions) -> Self {
            self.$field.conventions = conventions;
            self
        }

        /// Records metrics into `metrics` instead of
        /// [`Metrics::global`]($crate::metrics::Metrics::global).
        pub fn metrics(mut self, metrics: $crate::metrics::Metrics) -> Self {
            self.$field.metrics = metrics;
            self
        }

        /// Sets the span-name order.
        pub fn span_naming(mut self, naming: $crate::SpanNaming) -> Self {
            self.$field.naming = naming;
            self
        }

        /// Sets how the receive span relates to the event's creation context.
        pub fn parent_mode(mut self, mode: $crate::ParentMode) -> Self {
            self.$field.parent_mode = mode;
            self
        }

        /// Sets what happens to a message whose handler fails.
        pub fn ack_policy(mut self, policy: $crate::AckPolicy) -> Self {
            self.$field.ack_policy = policy;
            self
        }

        /// Whether a message whose event carries no trace context continues the trace a Google
        /// Pub/Sub client left in its `googclient_traceparent` attribute (default on). When both
        /// exist, the event's own context wins.
        pub fn googclient_fallback(mut self, on: bool) -> Self {
            self.$field.googclient_fallback = on;
            self
        }

        /// Replaces the hook that adds attributes from the event to the receive and process spans
        /// at their start (see `attribute_timing`). Never return payload data from it.
        pub fn attributes<F>(mut self, hook: F) -> Self
        where
            F: Fn(&cloudevents::Event) -> Vec<opentelemetry::KeyValue> + Send + Sync + 'static,
        {
            self.$field.attributes = std::sync::Arc::new(hook);
            self
        }

        /// Sets when the receive and process spans are given their per-message attributes
        /// (default [`AttributeTiming::AtStart`]($crate::AttributeTiming::AtStart)).
        pub fn attribute_timing(mut self, timing: $crate::AttributeTiming) -> Self {
            self.$field.attribute_timing = timing;
            self
        }

        /// Sets what happens under a valid parent context that is neither sampled nor recording
        /// (default [`UnsampledParent::AskSampler`]($crate::UnsampledParent::AskSampler)).
        pub fn unsampled_parent(mut self, unsampled: $crate::UnsampledParent) -> Self {
            self.$field.unsampled_parent = unsampled;
            self
        }
    };
}
pub(crate) use consumer_settings;
