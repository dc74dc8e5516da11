//! The consume pipeline that every way in shares.
//!
//! Given a received [`Message`] and its delivery facts (the delivery attempt, the transport's
//! own attributes), the crate's consumer decodes the event with the [`binding`](crate::binding#),
//! resolves its creation context (the CloudEvent's extension, then a Google client's
//! `googclient_*` attributes, as the [`ParentMode`] says), starts the `{topic} receive` and
//! process spans, runs the [`Handler`] inside the process span's context with the message's log
//! fields, catches its panics, and returns the verdict (ack or nack) with the receive span,
//! which stays open until the way in has settled.
//!
//! The way in only schedules and settles: the pull loop of
//! [`TracedSubscriber`](crate::TracedSubscriber) settles through the transport's
//! acknowledger.

mod config;
pub(crate) mod handler;
pub mod log_fields;
mod outcome;
mod parent;
mod run;
mod spans;

pub use handler::Handler;
use handler::{HandlerError, Received};

pub(crate) use config::ConsumerConfig;
use outcome::Settlement;
pub(crate) use outcome::{Consumed, Verdict};

use crate::binding::{self, BindingError};
use crate::carrier::Propagation;
use crate::metrics::{Measurement, PipelineMetrics, Timed};
use crate::settings::{AckPolicy, ParentMode};
use crate::span::attributes::{self, AttributeHook, CLOUDEVENTS_EVENT_ID, EventAttributes};
use crate::span::conventions::{Conventions, Operation};
use crate::span::timing::AttributeTiming;
use crate::span::unsampled::UnsampledParent;
use crate::span::{Destination, SharedTracer, SpanMaking, record_failure};
use crate::transport::Message;
use cloudevents::{AttributesReader, Event};
use log_fields::MessageLogFields;
use opentelemetry::trace::{Link, Span as _, TraceContextExt};
use opentelemetry::{Context, KeyValue};
use run::HandlerOutcome;
use spans::{ConsumeSpans, ReceiveAttributes};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Instant;

/// What the way in knows of a delivery besides the message itself (whose id and ordering key
/// the message carries).
#[derive(Debug, Clone, Default)]
pub(crate) struct DeliveryFacts {
    /// 1 for the first delivery, …; `None` when the backend does not count.
    pub(crate) delivery_attempt: Option<u32>,
    /// The transport's own attributes of this delivery, added to the receive span.
    pub(crate) attributes: Vec<KeyValue>,
    /// Contexts of the delivery itself (a push request's own `traceparent`), linked from the
    /// receive span: they belong to the broker, not to the producer.
    pub(crate) links: Vec<Link>,
    /// The delivery's own subscription, when the pipeline's spans and metrics name another
    /// (a push endpoint's stand-in for subscriptions beyond its bound): the handler and the
    /// log lines see this one.
    pub(crate) subscription: Option<String>,
}

/// A delivery whose handler is running: what is finished once it has run.
struct Running {
    /// The handler's context: the process span's, or the parent's when no span is made.
    process: Context,
    /// The receive span, and the attributes naming the delivery that its settle spans carry
    /// (none unless under the current conventions); `None` when no span is made.
    receive: Option<(Context, Vec<KeyValue>)>,
    /// When the handler started, when metrics are recorded.
    started: Option<Instant>,
}

/// The consume pipeline of one subscription, with its span templates built.
pub(crate) struct Consumer {
    tracer: SharedTracer,
    propagation: Propagation,
    subscription: String,
    adapter: Option<String>,
    parent_mode: ParentMode,
    ack_policy: AckPolicy,
    attributes: AttributeHook,
    attribute_timing: AttributeTiming,
    unsampled_parent: UnsampledParent,
    googclient_fallback: bool,
    event_attributes: EventAttributes,
    spans: ConsumeSpans,
    span_making: SpanMaking,
    conventions: Conventions,
    /// Whether deliveries have Pub/Sub's semantics, and so its delivery-attempt attribute.
    pubsub_semantics: bool,
    /// `None` when nothing is recorded; shared with each delivery until it is settled.
    metrics: Option<Arc<PipelineMetrics>>,
}

impl Consumer {
    /// Builds the pipeline `config` describes, for a transport of `system` at `server_address`
    /// (and `server_port`).
    pub(crate) fn new(
        config: ConsumerConfig,
        system: &'static str,
        server_address: Option<&str>,
        server_port: Option<u16>,
    ) -> Self {
        let ConsumerConfig {
            topic,
            subscription,
            settings,
            stand_in,
            current_name,
        } = config;
        let destination = Destination {
            system,
            topic: &topic,
            subscription: Some(&subscription),
            current_name: current_name.as_deref(),
            server_address,
            server_port,
            conventions: settings.conventions,
        };
        let spans = ConsumeSpans::new(
            &settings.tracer,
            destination,
            settings.process_span_name.as_deref(),
            settings.adapter.as_deref(),
            stand_in,
        );
        let metrics = settings.metrics.pipeline(&destination);
        Self {
            tracer: settings.tracer,
            propagation: settings.propagation,
            subscription,
            adapter: settings.adapter,
            parent_mode: settings.parent_mode,
            ack_policy: settings.ack_policy,
            attributes: settings.attributes,
            attribute_timing: settings.attribute_timing,
            unsampled_parent: settings.unsampled_parent,
            googclient_fallback: settings.googclient_fallback,
            event_attributes: EventAttributes::default(),
            spans,
            span_making: SpanMaking::default(),
            conventions: settings.conventions,
            pubsub_semantics: spans::has_pubsub_semantics(system),
            metrics: metrics.is_enabled().then(|| Arc::new(metrics)),
        }
    }

    /// What a delivery's own attributes follow: the conventions, and the system's semantics.
    fn delivery_rules(&self) -> spans::DeliveryRules {
        spans::DeliveryRules {
            conventions: self.conventions,
            pubsub_semantics: self.pubsub_semantics,
        }
    }

    /// Consumes one delivery: everything but the settlement.
    pub(crate) async fn consume<H: Handler>(
        &self,
        handler: &H,
        message: Message,
        facts: DeliveryFacts,
    ) -> Consumed {
        let (run, running) = match self.begin(handler, message, facts) {
            Ok(begun) => begun,
            Err(undecodable) => return undecodable,
        };
        let outcome = run.await;
        self.finish(outcome, running)
    }

    /// Decodes the event, starts the spans and the handler, and returns the handler's run;
    /// or, when the message cannot be decoded, the nack.
    fn begin<'a, H: Handler>(
        &'a self,
        handler: &'a H,
        message: Message,
        mut facts: DeliveryFacts,
    ) -> Result<(impl Future<Output = HandlerOutcome> + Send + 'a, Running), Consumed> {
        self.record(Measurement::Received);
        let attempt = facts.delivery_attempt;
        let delivery_links = std::mem::take(&mut facts.links);
        let subscription = facts
            .subscription
            .clone()
            .unwrap_or_else(|| self.subscription.clone());
        let event = match binding::decode(&message) {
            Ok(event) => event,
            Err(error) => {
                let delivery = spans::delivery_attributes(&message, facts, self.delivery_rules());
                return Err(self.undecodable(delivery, delivery_links, &error));
            }
        };
        let creation = parent::creation_context(
            &self.propagation,
            &event,
            &message.attributes,
            self.googclient_fallback,
        );
        let creation_link = self.creation_link(&creation);
        let (parent, mut links) = self.parent_mode.resolve(creation);
        let (process, receive) = if self.span_making.skips(&parent, self.unsampled_parent) {
            // The tracer makes no spans, or none would record: the handler runs in the
            // parent's context (under a span id of its own when none would record), and its
            // logs and calls carry that.
            (self.span_making.unmade(&parent), None)
        } else {
            links.extend(delivery_links);
            if let Some(creation) = creation_link
                && !links.iter().any(|l| l.span_context == creation)
            {
                links.push(Link::with_context(creation));
            }
            let (process, receive) = self.start_spans(&parent, links, (&message, facts), &event);
            (process, Some(receive))
        };
        let process = process.with_value(self.log_fields(&event, subscription.clone()));
        let received = Received {
            event,
            message_id: message.id,
            delivery_attempt: attempt,
            subscription,
            context: process.clone(),
        };
        let started = self.metrics.is_some().then(Instant::now);
        let run = run::run_handler(handler, received, process.clone());
        let running = Running {
            process,
            receive,
            started,
        };
        Ok((run, running))
    }

    /// Starts the receive span under `parent` and the process span as its child; returns the
    /// process span's context, and the receive span's with the attributes naming the delivery
    /// that its settle spans carry. Under [`AttributeTiming::WhenRecording`] and a parent that
    /// is not sampled the spans start with their templates' attributes only, and the first that
    /// records is given the message's, before a `Context` boxes it behind a lock (the process
    /// span at its start when the receive span records).
    fn start_spans(
        &self,
        parent: &Context,
        links: Vec<Link>,
        delivery: (&Message, DeliveryFacts),
        event: &Event,
    ) -> (Context, (Context, Vec<KeyValue>)) {
        // Taken by the first use of the message's attributes.
        let mut delivery = Some(delivery);
        let deferred = self.attribute_timing.deferred_under(parent);
        let (mut start, mut named_by, mut event_id, mut hook) = Default::default();
        if let Some(delivery) = delivery.take_if(|_| !deferred) {
            (start, event_id) = self.per_message_attributes(delivery, event);
            (named_by, hook) = (self.shared_naming(&start), start.hook.clone());
        }
        let mut receive = self
            .spans
            .start_receive(&self.tracer, parent, links, start, deferred);
        if let Some(delivery) = delivery.take_if(|_| receive.is_recording()) {
            let (start, id) = self.per_message_attributes(delivery, event);
            (named_by, event_id, hook) = (self.shared_naming(&start), id, start.hook.clone());
            receive.set_attributes(start);
        }
        let receive = parent.with_span(receive);
        self.span_making.learn(parent, &receive);
        let later = delivery.is_some();
        let mut process =
            self.spans
                .start_process(&self.tracer, &receive, (&named_by, event_id), hook, later);
        if let Some(delivery) = delivery.take_if(|_| process.is_recording()) {
            let (start, id) = self.per_message_attributes(delivery, event);
            named_by = self.shared_naming(&start);
            process.set_attributes(named_by.iter().cloned().chain(id).chain(start.hook));
        }
        (receive.with_span(process), (receive, named_by))
    }

    /// The message's creation context, which the current conventions have the receive span
    /// link even when it is the span's parent; `None` under the standard, or when the message
    /// carries none.
    fn creation_link(&self, creation: &Context) -> Option<opentelemetry::trace::SpanContext> {
        if !self.conventions.current() {
            return None;
        }
        let span = creation.span();
        let context = span.span_context();
        context.is_valid().then(|| context.clone())
    }

    /// The attributes naming the delivery that its process and settle spans carry too: under
    /// the current conventions, which ask for them there; else none.
    fn shared_naming(&self, start: &ReceiveAttributes) -> Vec<KeyValue> {
        match self.conventions.current() {
            true => start.named_by().to_vec(),
            false => Vec::new(),
        }
    }

    /// The receive span's per-message attributes, and the event id the process span shares.
    fn per_message_attributes(
        &self,
        (message, facts): (&Message, DeliveryFacts),
        event: &Event,
    ) -> (ReceiveAttributes, Option<KeyValue>) {
        let (delivery, naming) = spans::delivery_attributes(message, facts, self.delivery_rules());
        let hook = self.hook_attributes(event);
        let cloudevents = self.event_attributes.of(event);
        let event_id = cloudevents
            .iter()
            .find(|kv| kv.key.as_str() == CLOUDEVENTS_EVENT_ID)
            .cloned();
        let start = ReceiveAttributes {
            delivery,
            naming,
            cloudevents,
            hook,
        };
        (start, event_id)
    }

    /// Once the handler has run: measures it, records its failure, ends the process span and
    /// gives the verdict with the receive span (the parent's context when no span was made).
    fn finish(&self, outcome: HandlerOutcome, running: Running) -> Consumed {
        let Running {
            process,
            receive,
            started,
        } = running;
        if let Some(started) = started {
            self.record(Measurement::Processed(Timed {
                operation: self.conventions.operation(Operation::Process).1,
                elapsed: started.elapsed(),
                error_type: outcome.error_type(),
                span: process.span().span_context(),
            }));
        }
        match receive {
            Some((receive, named_by)) => self.conclude(outcome, &process, receive, named_by),
            None => {
                // No receive span: no settle spans linked to it either.
                let settlement = Settlement {
                    spans: None,
                    named_by: Vec::new(),
                    exception_event: self.conventions.exception_event(Operation::Ack),
                    metrics: self.metrics.clone(),
                };
                Consumed::new(self.verdict(&outcome), process, settlement)
            }
        }
    }

    /// Nothing to continue: a root receive span records why, and the nack lets a dead-letter
    /// policy take the message.
    fn undecodable(
        &self,
        (delivery, naming): (Vec<KeyValue>, usize),
        links: Vec<Link>,
        error: &BindingError,
    ) -> Consumed {
        let start = ReceiveAttributes {
            delivery,
            naming,
            cloudevents: Vec::new(),
            hook: Vec::new(),
        };
        let named_by = self.shared_naming(&start);
        let root = Context::new();
        let span = self
            .spans
            .start_receive(&self.tracer, &root, links, start, false);
        let receive = root.with_span(span);
        let event = self.conventions.exception_event(Operation::Receive);
        record_failure(&receive.span(), event, error.error_type(), error);
        self.record(Measurement::Undecodable);
        Consumed::new(Verdict::Nack, receive, self.settlement(named_by))
    }

    /// What a delivery's settlement records: its spans, with the attributes naming the
    /// delivery, and metrics.
    fn settlement(&self, named_by: Vec<KeyValue>) -> Settlement {
        Settlement {
            spans: self.spans.settle(),
            named_by,
            exception_event: self.conventions.exception_event(Operation::Ack),
            metrics: self.metrics.clone(),
        }
    }

    fn record(&self, measurement: Measurement<'_>) {
        if let Some(metrics) = &self.metrics {
            metrics.record(measurement);
        }
    }

    /// The hook's attributes; a panicking hook must not take the delivery down with it, so
    /// it adds none then.
    fn hook_attributes(&self, event: &Event) -> Vec<KeyValue> {
        std::panic::catch_unwind(AssertUnwindSafe(|| (self.attributes)(event))).unwrap_or_default()
    }

    fn log_fields(&self, event: &Event, subscription: String) -> MessageLogFields {
        MessageLogFields {
            event_id: attributes::bounded(event.id()),
            subscription,
            adapter: self.adapter.clone(),
        }
    }

    /// Records the handler's failure on both spans, ends the process span and gives the
    /// verdict.
    fn conclude(
        &self,
        outcome: HandlerOutcome,
        process: &Context,
        receive: Context,
        named_by: Vec<KeyValue>,
    ) -> Consumed {
        let process = process.span();
        if let HandlerOutcome::Failed(error_type, error) = &outcome {
            let (on_process, on_receive) = (
                self.conventions.exception_event(Operation::Process),
                self.conventions.exception_event(Operation::Receive),
            );
            record_failure(&process, on_process, error_type, error.as_ref());
            record_failure(&receive.span(), on_receive, error_type, error.as_ref());
        }
        process.end();
        Consumed::new(self.verdict(&outcome), receive, self.settlement(named_by))
    }

    /// Ack or nack, as the handler's outcome and the ack policy say.
    fn verdict(&self, outcome: &HandlerOutcome) -> Verdict {
        match (outcome, self.ack_policy) {
            (HandlerOutcome::Handled, _) | (HandlerOutcome::Failed(..), AckPolicy::AlwaysAck) => {
                Verdict::Ack
            }
            (HandlerOutcome::Failed(..), AckPolicy::NackOnError) => Verdict::Nack,
        }
    }
}
