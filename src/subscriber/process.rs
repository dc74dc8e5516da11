//! One delivery: decode, continue the trace, run the handler inside the process span, settle.

use super::{AckPolicy, Handler, MessageLogFields, ParentMode, Received, Settings};
use crate::attributes::{
    self, MESSAGING_GCP_PUBSUB_MESSAGE_DELIVERY_ATTEMPT, MESSAGING_GCP_PUBSUB_MESSAGE_ORDERING_KEY,
    MESSAGING_MESSAGE_ID,
};
use crate::binding;
use crate::carrier;
use crate::instrumentation::record_failure;
use crate::transport::{Acknowledger, Delivery, Message};
use cloudevents::AttributesReader;
use futures::FutureExt as _;
use opentelemetry::context::FutureExt as _;
use opentelemetry::trace::{Link, SpanRef, TraceContextExt};
use opentelemetry::{Context, KeyValue};
use std::panic::AssertUnwindSafe;

/// `error.type` of a handler error (its type is the application's, so unknown here).
const HANDLER_ERROR: &str = "_OTHER";
/// `error.type` of a handler panic.
const HANDLER_PANIC: &str = "panic";

/// A handler panic, as an error to record.
#[derive(Debug, thiserror::Error)]
#[error("handler panicked: {0}")]
struct Panicked(String);

/// How the handler ended.
enum Outcome {
    Handled,
    Failed(&'static str, Box<dyn std::error::Error + Send + Sync>),
}

/// How a delivery ended.
pub(super) enum Processed {
    /// Acked, or nacked here.
    Settled {
        /// `true` when acked.
        acked: bool,
    },
    /// Not handled, and the nack is left to the caller (see [`process`]'s `defer_nack`).
    NackPending(PendingNack),
}

/// A nack the caller performs, so that it can order it before others; the receive span stays
/// open until then.
pub(super) struct PendingNack {
    acker: Box<dyn Acknowledger>,
    receive: Context,
}

impl PendingNack {
    pub(super) async fn nack(self) {
        let span = self.receive.span();
        settle(&span, self.acker, false).await;
        span.end();
    }
}

/// Handles one delivery. With `defer_nack`, a delivery that is not handled comes back
/// unsettled, for the caller to nack.
pub(super) async fn process<H: Handler>(
    settings: &Settings,
    handler: &H,
    delivery: Delivery,
    defer_nack: bool,
) -> Processed {
    let (message, attempt, acker) = delivery.into_parts();
    let delivery_attributes = delivery_attributes(&message, attempt);

    let event = match binding::decode(&message) {
        Ok(event) => event,
        Err(error) => {
            // Nothing to continue: a root span records why, and the nack lets a dead-letter
            // policy take the message.
            // Room for the failure's `error.type`.
            let mut receive_attributes = settings
                .receive_span
                .attributes(delivery_attributes.len() + 1);
            receive_attributes.extend(delivery_attributes);
            let span = settings
                .receive_span
                .builder(&settings.tracer, receive_attributes)
                .start_with_context(settings.tracer.as_ref(), &Context::new());
            let cx = Context::new().with_span(span);
            let span = cx.span();
            record_failure(&span, error.error_type(), &error);
            let pending = PendingNack { acker, receive: cx };
            if defer_nack {
                return Processed::NackPending(pending);
            }
            pending.nack().await;
            return Processed::Settled { acked: false };
        }
    };

    let mut creation = carrier::extract(&event);
    if settings.googclient_fallback && !creation.span().span_context().is_valid() {
        // No context in the event: continue a Google client's trace, if it left one.
        let from_client = carrier::extract_googclient(&message.attributes);
        if from_client.span().span_context().is_valid() {
            creation = from_client;
        }
    }
    let creation_span = creation.span().span_context().clone();
    let (parent, links) = match settings.parent_mode {
        ParentMode::Child => (creation, Vec::new()),
        ParentMode::Link if creation_span.is_valid() => {
            (Context::new(), vec![Link::with_context(creation_span)])
        }
        ParentMode::Link => (Context::new(), Vec::new()),
    };
    // A panicking hook must not take the delivery down with it: no extra attributes then.
    let event_attributes =
        std::panic::catch_unwind(AssertUnwindSafe(|| (settings.attributes)(&event)))
            .unwrap_or_default();
    let cloudevents_attributes = settings.event_attributes.of(&event);
    // The event id's value is shared with the process span, as are the hook's values when
    // they are reference-counted.
    let event_id = cloudevents_attributes
        .iter()
        .find(|kv| kv.key.as_str() == attributes::CLOUDEVENTS_EVENT_ID)
        .cloned();
    // Room for a failure's `error.type`.
    let mut receive_attributes = settings.receive_span.attributes(
        delivery_attributes.len() + cloudevents_attributes.len() + event_attributes.len() + 1,
    );
    receive_attributes.extend(delivery_attributes);
    receive_attributes.extend(cloudevents_attributes);
    receive_attributes.extend(event_attributes.iter().cloned());
    let receive_span = settings
        .receive_span
        .builder(&settings.tracer, receive_attributes)
        .with_links(links)
        .start_with_context(settings.tracer.as_ref(), &parent);
    let receive_cx = parent.with_span(receive_span);

    let mut process_attributes = settings.process_span.attributes(event_attributes.len() + 2);
    process_attributes.extend(event_id);
    process_attributes.extend(event_attributes);
    let process_span = settings
        .process_span
        .builder(&settings.tracer, process_attributes)
        .start_with_context(settings.tracer.as_ref(), &receive_cx);
    let process_cx = receive_cx
        .with_span(process_span)
        .with_value(MessageLogFields {
            event_id: attributes::bounded(event.id()),
            subscription: settings.subscription.clone(),
            adapter: settings.adapter.clone(),
        });

    let received = Received {
        event,
        message_id: message.id.clone(),
        delivery_attempt: attempt,
        subscription: settings.subscription.clone(),
        context: process_cx.clone(),
    };
    // `handle` itself is called inside the guarded future, so a panic before it returns its
    // future is caught too.
    let run =
        AssertUnwindSafe(async { handler.handle(received).await }.with_context(process_cx.clone()));
    let outcome = match run.catch_unwind().await {
        Ok(Ok(())) => Outcome::Handled,
        Ok(Err(error)) => Outcome::Failed(HANDLER_ERROR, error),
        Err(panic) => Outcome::Failed(HANDLER_PANIC, Box::new(Panicked(panic_text(&*panic)))),
    };

    let process = process_cx.span();
    let receive = receive_cx.span();
    let ack = match &outcome {
        Outcome::Handled => true,
        Outcome::Failed(error_type, error) => {
            record_failure(&process, error_type, error.as_ref());
            record_failure(&receive, error_type, error.as_ref());
            settings.ack_policy == AckPolicy::AlwaysAck
        }
    };
    process.end();
    if ack {
        settle(&receive, acker, true).await;
        receive.end();
        return Processed::Settled { acked: true };
    }
    let pending = PendingNack {
        acker,
        receive: receive_cx,
    };
    if defer_nack {
        return Processed::NackPending(pending);
    }
    pending.nack().await;
    Processed::Settled { acked: false }
}

/// Acks or nacks; a failed settle is recorded on the receive span.
async fn settle(span: &SpanRef<'_>, acker: Box<dyn Acknowledger>, ack: bool) {
    let result = if ack {
        acker.ack().await
    } else {
        acker.nack().await
    };
    if let Err(error) = result {
        record_failure(span, error.code().as_str(), &error);
    }
}

fn delivery_attributes(message: &Message, attempt: Option<u32>) -> Vec<KeyValue> {
    let mut attributes = Vec::with_capacity(3);
    if let Some(id) = &message.id {
        attributes.push(KeyValue::new(MESSAGING_MESSAGE_ID, attributes::bounded(id)));
    }
    if let Some(key) = &message.ordering_key {
        attributes.push(KeyValue::new(
            MESSAGING_GCP_PUBSUB_MESSAGE_ORDERING_KEY,
            attributes::bounded(key),
        ));
    }
    if let Some(attempt) = attempt {
        attributes.push(KeyValue::new(
            MESSAGING_GCP_PUBSUB_MESSAGE_DELIVERY_ATTEMPT,
            i64::from(attempt),
        ));
    }
    attributes
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}
