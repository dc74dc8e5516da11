//! The pipeline's two spans: `{topic} receive` (CONSUMER) and the process span (INTERNAL,
//! `adapter.process` by default) as its child.

use super::DeliveryFacts;
use crate::attributes::{
    self, HYPERFLEET_ADAPTER, MESSAGING_GCP_PUBSUB_MESSAGE_DELIVERY_ATTEMPT,
    MESSAGING_GCP_PUBSUB_MESSAGE_ORDERING_KEY, MESSAGING_MESSAGE_ID,
};
use crate::instrumentation::{Destination, SharedTracer, SpanTemplate};
use crate::transport::Message;
use opentelemetry::trace::{Link, SpanKind, TraceContextExt};
use opentelemetry::{Context, KeyValue};
use std::sync::Arc;

/// The receive and process span templates of one subscription, built once.
pub(super) struct ConsumeSpans {
    receive: SpanTemplate,
    process: SpanTemplate,
}

/// The attributes a receive span starts with, besides its template's.
pub(super) struct ReceiveAttributes {
    /// Message id, ordering key, delivery attempt, and the transport's own.
    pub(super) delivery: Vec<KeyValue>,
    /// `cloudevents.*`; empty when the message could not be decoded.
    pub(super) cloudevents: Vec<KeyValue>,
    /// The attribute hook's, shared with the process span.
    pub(super) hook: Vec<KeyValue>,
}

impl ConsumeSpans {
    pub(super) fn new(
        destination: Destination<'_>,
        process_name: &str,
        adapter: Option<&str>,
    ) -> Self {
        // Each may gain `error.type` when it ends.
        let receive = SpanTemplate::messaging(destination, "receive", SpanKind::Consumer, 1);
        let mut process = SpanTemplate::messaging(destination, "process", SpanKind::Internal, 1)
            .named(process_name);
        if let Some(adapter) = adapter {
            process = process
                .with_attribute(KeyValue::new(HYPERFLEET_ADAPTER, Arc::<str>::from(adapter)));
        }
        Self { receive, process }
    }

    /// Starts the receive span under `parent` (an empty context for a root span).
    pub(super) fn start_receive(
        &self,
        tracer: &SharedTracer,
        parent: &Context,
        links: Vec<Link>,
        start: ReceiveAttributes,
    ) -> Context {
        let ReceiveAttributes {
            delivery,
            cloudevents,
            hook,
        } = start;
        let mut attributes = self
            .receive
            .attributes(delivery.len() + cloudevents.len() + hook.len());
        attributes.extend(delivery);
        attributes.extend(cloudevents);
        attributes.extend(hook);
        let span = self
            .receive
            .builder(tracer, attributes)
            .with_links(links)
            .start_with_context(tracer.as_ref(), parent);
        parent.with_span(span)
    }

    /// Starts the process span as a child of `receive`, with the event id and the hook's
    /// attributes.
    pub(super) fn start_process(
        &self,
        tracer: &SharedTracer,
        receive: &Context,
        event_id: Option<KeyValue>,
        hook: Vec<KeyValue>,
    ) -> Context {
        let mut attributes = self.process.attributes(hook.len() + 1);
        attributes.extend(event_id);
        attributes.extend(hook);
        let span = self
            .process
            .builder(tracer, attributes)
            .start_with_context(tracer.as_ref(), receive);
        receive.with_span(span)
    }
}

/// A delivery's own attributes: message id, ordering key, delivery attempt, then the
/// transport's.
pub(super) fn delivery_attributes(message: &Message, facts: DeliveryFacts) -> Vec<KeyValue> {
    let mut attributes = Vec::with_capacity(3 + facts.attributes.len());
    if let Some(id) = &message.id {
        attributes.push(KeyValue::new(MESSAGING_MESSAGE_ID, attributes::bounded(id)));
    }
    if let Some(key) = &message.ordering_key {
        attributes.push(KeyValue::new(
            MESSAGING_GCP_PUBSUB_MESSAGE_ORDERING_KEY,
            attributes::bounded(key),
        ));
    }
    if let Some(attempt) = facts.delivery_attempt {
        attributes.push(KeyValue::new(
            MESSAGING_GCP_PUBSUB_MESSAGE_DELIVERY_ATTEMPT,
            i64::from(attempt),
        ));
    }
    attributes.extend(facts.attributes);
    attributes
}
