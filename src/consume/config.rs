//! The consume pipeline's settings, as plain values: what a subscriber's builder holds.

use super::{AckPolicy, ParentMode};
use crate::attributes::{self, AttributeHook};
use crate::carrier::Propagation;
use crate::instrumentation::{self, SharedTracer};
use crate::naming::SpanNaming;
use std::sync::Arc;

/// Default name of the process span, as the standard names it.
const DEFAULT_PROCESS_SPAN_NAME: &str = "adapter.process";

/// How deliveries of one subscription are consumed. Nothing here is built yet: the
/// [`Consumer`](super::Consumer) made from it builds its span templates once.
#[derive(Clone)]
pub(crate) struct ConsumerConfig {
    pub(crate) topic: String,
    pub(crate) subscription: String,
    pub(crate) adapter: Option<String>,
    pub(crate) process_span_name: String,
    pub(crate) naming: SpanNaming,
    pub(crate) parent_mode: ParentMode,
    pub(crate) ack_policy: AckPolicy,
    pub(crate) attributes: AttributeHook,
    pub(crate) googclient_fallback: bool,
    pub(crate) tracer: SharedTracer,
    pub(crate) propagation: Propagation,
}

impl ConsumerConfig {
    /// The defaults: process span `adapter.process`, [`ParentMode::Child`],
    /// [`AckPolicy::NackOnError`], `{destination} {operation}` names, HyperFleet resource
    /// attributes, the `googclient_*` fallback on, the global tracer and propagator.
    pub(crate) fn new(subscription: String, topic: String) -> Self {
        Self {
            topic,
            subscription,
            adapter: None,
            process_span_name: DEFAULT_PROCESS_SPAN_NAME.to_owned(),
            naming: SpanNaming::default(),
            parent_mode: ParentMode::default(),
            ack_policy: AckPolicy::default(),
            attributes: Arc::new(attributes::hyperfleet_resource),
            googclient_fallback: true,
            tracer: instrumentation::global_tracer(),
            propagation: Propagation::global(),
        }
    }
}
