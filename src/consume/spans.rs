//! The pipeline's spans: `{topic} receive` (CONSUMER) and the process span (INTERNAL,
//! `adapter.process` by default) as its child; under the current conventions
//! `receive {subscription}` (CLIENT), `subscribe {subscription}` (CONSUMER), and the settle
//! spans `ack` / `nack {subscription}` (CLIENT) linked to the receive span.

use super::DeliveryFacts;
use crate::span::attributes::{
    self, HYPERFLEET_ADAPTER, MESSAGING_GCP_PUBSUB_MESSAGE_DELIVERY_ATTEMPT,
    MESSAGING_GCP_PUBSUB_MESSAGE_ORDERING_KEY, MESSAGING_MESSAGE_BODY_SIZE, MESSAGING_MESSAGE_ID,
};
use crate::span::conventions::{Conventions, Operation};
use crate::span::{Destination, PER_MESSAGE_ROOM, SharedTracer, SourceSpan, SpanTemplate};
use crate::transport::Message;
use opentelemetry::trace::{Link, SpanKind, TraceContextExt};
use opentelemetry::{Context, KeyValue};
use std::sync::Arc;

/// The receive and process span templates of one subscription, built once.
pub(super) struct ConsumeSpans {
    receive: SpanTemplate,
    process: SpanTemplate,
    /// Under the current conventions only.
    settle: Option<Arc<SettleSpans>>,
}

/// The settle spans of one subscription (current conventions), shared with each delivery until
/// it is settled.
pub(crate) struct SettleSpans {
    tracer: SharedTracer,
    ack: SpanTemplate,
    nack: SpanTemplate,
}

impl SettleSpans {
    /// Starts the `ack` or `nack` span, linked to the receive span of `receive`, with the
    /// attributes that name the delivery.
    pub(crate) fn start(&self, ack: bool, receive: &Context, named_by: &[KeyValue]) -> Context {
        let template = if ack { &self.ack } else { &self.nack };
        let link = Link::with_context(receive.span().span_context().clone());
        let mut attributes = template.attributes(named_by.len());
        attributes.extend_from_slice(named_by);
        let span = template
            .builder(&self.tracer, attributes)
            .with_links(vec![link])
            .start_with_context(self.tracer.as_ref(), receive);
        receive.with_span(span)
    }
}

/// A stand-in's receive span takes its subscription attribute from each delivery (its process
/// and settle spans keep the stand-in's).
fn own_subscription(template: SpanTemplate, stand_in: bool) -> SpanTemplate {
    match stand_in {
        true => template.without(attributes::MESSAGING_DESTINATION_SUBSCRIPTION_NAME),
        false => template,
    }
}

/// The attributes a receive span starts with, besides its template's.
#[derive(Default)]
pub(super) struct ReceiveAttributes {
    /// The delivery's own ([`delivery_attributes`]): first those that name it, then those of
    /// the receive span alone.
    pub(super) delivery: Vec<KeyValue>,
    /// How many of `delivery` name it.
    pub(super) naming: usize,
    /// `cloudevents.*`; empty when the message could not be decoded.
    pub(super) cloudevents: Vec<KeyValue>,
    /// The attribute hook's, shared with the process span.
    pub(super) hook: Vec<KeyValue>,
}

impl ReceiveAttributes {
    /// The attributes that name the delivery: what the current conventions put on its
    /// process and settle spans too.
    pub(super) fn named_by(&self) -> &[KeyValue] {
        &self.delivery[..self.naming]
    }
}

impl IntoIterator for ReceiveAttributes {
    type Item = KeyValue;
    type IntoIter = std::iter::Chain<
        std::iter::Chain<std::vec::IntoIter<KeyValue>, std::vec::IntoIter<KeyValue>>,
        std::vec::IntoIter<KeyValue>,
    >;

    /// In the order the span is given them: delivery, `cloudevents.*`, the hook's.
    fn into_iter(self) -> Self::IntoIter {
        self.delivery
            .into_iter()
            .chain(self.cloudevents)
            .chain(self.hook)
    }
}

impl ConsumeSpans {
    pub(super) fn new(
        tracer: &SharedTracer,
        destination: Destination<'_>,
        process_name: Option<&str>,
        adapter: Option<&str>,
        stand_in: bool,
    ) -> Self {
        let current = destination.conventions.current();
        let (receive_kind, process_kind) = match current {
            false => (SpanKind::Consumer, SpanKind::Internal),
            true => (SpanKind::Client, SpanKind::Consumer),
        };
        // Each may gain `error.type` when it ends.
        let receive = SpanTemplate::messaging(destination, Operation::Receive, receive_kind, 1);
        let mut process = SpanTemplate::messaging(destination, Operation::Process, process_kind, 1);
        match process_name {
            Some(name) => process = process.named(name),
            None if !current => process = process.named(DEFAULT_PROCESS_SPAN_NAME),
            None => {}
        }
        if let Some(adapter) = adapter {
            process = process
                .with_attribute(KeyValue::new(HYPERFLEET_ADAPTER, Arc::<str>::from(adapter)));
        }
        let settle = current.then(|| {
            Arc::new(SettleSpans {
                tracer: Arc::clone(tracer),
                ack: SpanTemplate::messaging(destination, Operation::Ack, SpanKind::Client, 1),
                nack: SpanTemplate::messaging(destination, Operation::Nack, SpanKind::Client, 1),
            })
        });
        let receive = own_subscription(receive, stand_in);
        Self {
            receive,
            process,
            settle,
        }
    }

    /// The settle spans, under the current conventions.
    pub(super) fn settle(&self) -> Option<Arc<SettleSpans>> {
        self.settle.clone()
    }

    /// Starts the receive span under `parent` (an empty context for a root span), with room
    /// for the message's attributes when they come `later`.
    pub(super) fn start_receive(
        &self,
        tracer: &SharedTracer,
        parent: &Context,
        links: Vec<Link>,
        start: ReceiveAttributes,
        later: bool,
    ) -> SourceSpan {
        let per_message = match later {
            true => PER_MESSAGE_ROOM,
            false => start.delivery.len() + start.cloudevents.len() + start.hook.len(),
        };
        let mut attributes = self.receive.attributes(per_message);
        attributes.extend(start);
        self.receive
            .builder(tracer, attributes)
            .with_links(links)
            .start_with_context(tracer.as_ref(), parent)
    }

    /// Starts the process span as a child of `receive`, with the attributes that name the
    /// delivery (under the current conventions; else none), the event id and the hook's, and
    /// room for them when they come `later`.
    pub(super) fn start_process(
        &self,
        tracer: &SharedTracer,
        receive: &Context,
        (named_by, event_id): (&[KeyValue], Option<KeyValue>),
        hook: Vec<KeyValue>,
        later: bool,
    ) -> SourceSpan {
        let per_message = match later {
            true => PER_MESSAGE_ROOM,
            false => named_by.len() + hook.len() + 1,
        };
        let mut attributes = self.process.attributes(per_message);
        attributes.extend_from_slice(named_by);
        attributes.extend(event_id);
        attributes.extend(hook);
        self.process
            .builder(tracer, attributes)
            .start_with_context(tracer.as_ref(), receive)
    }
}

/// What a delivery's own attributes follow.
#[derive(Debug, Clone, Copy)]
pub(super) struct DeliveryRules {
    pub(super) conventions: Conventions,
    /// Pub/Sub's semantics (Pub/Sub itself, push, the memory transport): the delivery attempt
    /// is Pub/Sub's attribute, which RabbitMQ's spans do not have.
    pub(super) pubsub_semantics: bool,
}

/// Whether a transport of `system` delivers with Pub/Sub's semantics: every system but
/// RabbitMQ's.
pub(super) fn has_pubsub_semantics(system: &str) -> bool {
    system != "rabbitmq"
}

/// A delivery's own attributes, and how many of them (the first) name it: the message id, the
/// delivery attempt (Pub/Sub's) and the transport's own (RabbitMQ's delivery tag and routing
/// key); then the receive span's alone: a stand-in's delivery's own subscription, the ordering
/// key, which the current conventions keep for the producer side (`messaging/dup` keeps the
/// standard's), and the body size under the current conventions.
pub(super) fn delivery_attributes(
    message: &Message,
    facts: DeliveryFacts,
    rules: DeliveryRules,
) -> (Vec<KeyValue>, usize) {
    let mut attributes = Vec::with_capacity(4 + facts.attributes.len());
    if let Some(id) = &message.id {
        attributes.push(KeyValue::new(MESSAGING_MESSAGE_ID, attributes::bounded(id)));
    }
    if let Some(attempt) = facts.delivery_attempt.filter(|_| rules.pubsub_semantics) {
        attributes.push(KeyValue::new(
            MESSAGING_GCP_PUBSUB_MESSAGE_DELIVERY_ATTEMPT,
            i64::from(attempt),
        ));
    }
    attributes.extend(facts.attributes);
    let naming = attributes.len();
    // A stand-in's receive span names the delivery's own subscription (its process and settle
    // spans keep the stand-in's).
    if let Some(own) = facts.subscription {
        attributes.push(KeyValue::new(
            attributes::MESSAGING_DESTINATION_SUBSCRIPTION_NAME,
            own,
        ));
    }
    if let Some(key) = message
        .ordering_key
        .as_ref()
        .filter(|_| rules.conventions != Conventions::Messaging)
    {
        attributes.push(KeyValue::new(
            MESSAGING_GCP_PUBSUB_MESSAGE_ORDERING_KEY,
            attributes::bounded(key),
        ));
    }
    if rules.conventions.current() {
        attributes.push(KeyValue::new(
            MESSAGING_MESSAGE_BODY_SIZE,
            message.data.len() as i64,
        ));
    }
    (attributes, naming)
}

/// The process span's name under the HyperFleet standard, unless configured.
const DEFAULT_PROCESS_SPAN_NAME: &str = "adapter.process";
