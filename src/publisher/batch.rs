//! Batches: one PRODUCER `create` span per event, whose context the event carries, and one
//! CLIENT send span over the transport call that links them all.

use super::{PublishError, Published, TracedPublisher};
use crate::span::attributes::MESSAGING_BATCH_MESSAGE_COUNT;
use crate::span::conventions::Operation;
use crate::span::record_failure;
use crate::transport::{ErrorCode, Message, Transport, TransportError};
use cloudevents::Event;
use opentelemetry::context::FutureExt as _;
use opentelemetry::trace::{Link, SpanContext, TraceContextExt};
use opentelemetry::{Context, KeyValue};
use std::future::Future;
use std::time::Instant;

/// A batch being published: each event's create span and creation context, the messages
/// that encoded, and for each event its message's index or why it did not encode.
struct Batch {
    creates: Vec<(Context, SpanContext)>,
    messages: Vec<Message>,
    slots: Vec<Result<usize, PublishError>>,
}

/// The transport's result for message `i` of a batch.
fn sent_result(
    sent: &mut [Option<Result<String, TransportError>>],
    i: usize,
) -> Result<String, PublishError> {
    sent.get_mut(i)
        .and_then(Option::take)
        .unwrap_or_else(|| {
            Err(TransportError::new(
                ErrorCode::Internal,
                "the transport returned fewer results than messages",
            ))
        })
        .map_err(PublishError::from)
}

/// Ends the batch's send span, failed when a message of it failed.
fn end_batch_send(send_cx: &Context, event: &'static str, first_failure: Option<&'static str>) {
    let send = send_cx.span();
    if let Some(error_type) = first_failure {
        let error = TransportError::new(
            ErrorCode::Unknown,
            "some messages of the batch were not published",
        );
        record_failure(&send, event, error_type, &error);
    }
    send.end();
}

impl<T: Transport> TracedPublisher<T> {
    /// Publishes several events in one transport call under the context current when it is
    /// called.
    ///
    /// Each event gets its own PRODUCER span `{topic} create` whose context it carries; one
    /// CLIENT span `{topic} publish` covers the send and links to every create span.
    pub fn publish_batch(
        &self,
        events: Vec<Event>,
    ) -> impl Future<Output = Vec<Result<Published, PublishError>>> + '_ {
        let parent = Context::current();
        async move { self.publish_batch_with(events, &parent).await }
    }

    /// [`publish_batch`](Self::publish_batch) under an explicit parent context.
    pub async fn publish_batch_with(
        &self,
        events: Vec<Event>,
        parent: &Context,
    ) -> Vec<Result<Published, PublishError>> {
        let batch = self.prepare_batch(events, parent);
        let send_cx = self.start_batch_send(parent, &batch);
        let started = self.metrics.is_enabled().then(Instant::now);
        let sent = self
            .transport
            .publish_batch(&self.topic, batch.messages)
            .with_context(send_cx.clone())
            .await;
        let mut sent = sent.into_iter().map(Some).collect::<Vec<_>>();
        let mut first_failure = None;
        let results = batch
            .slots
            .into_iter()
            .zip(batch.creates)
            .map(|(slot, (cx, trace_context))| {
                let result = match slot {
                    Ok(i) => sent_result(&mut sent, i),
                    Err(e) => Err(e),
                };
                let span = cx.span();
                let result = self.finish(&span, Operation::Create, result);
                span.end();
                if let Err(e) = &result {
                    first_failure.get_or_insert(e.error_type());
                }
                result.map(|message_id| Published {
                    message_id,
                    trace_context,
                })
            })
            .collect();
        if let Some(started) = started {
            self.record_operation(started, first_failure, &send_cx);
        }
        let event = self.settings.conventions.exception_event(Operation::Send);
        end_batch_send(&send_cx, event, first_failure);
        results
    }

    /// Starts each event's create span and encodes it.
    fn prepare_batch(&self, events: Vec<Event>, parent: &Context) -> Batch {
        let mut batch = Batch {
            creates: Vec::with_capacity(events.len()),
            messages: Vec::with_capacity(events.len()),
            slots: Vec::with_capacity(events.len()),
        };
        for mut event in events {
            let create = self.start_message_span(parent, &mut event, &self.spans.create, None);
            match self.encode(event, None) {
                Ok(message) => {
                    self.record_body_size(&create.0.span(), &message);
                    batch.slots.push(Ok(batch.messages.len()));
                    batch.messages.push(message);
                }
                Err(e) => batch.slots.push(Err(e)),
            }
            batch.creates.push(create);
        }
        batch
    }

    /// The CLIENT span over the batch's send, linking every create span.
    fn start_batch_send(&self, parent: &Context, batch: &Batch) -> Context {
        if self
            .span_making
            .skips(parent, self.settings.unsampled_parent)
        {
            return self.span_making.unmade(parent);
        }
        let links = batch
            .creates
            .iter()
            .map(|(cx, _)| Link::with_context(cx.span().span_context().clone()))
            .collect();
        let template = &self.spans.batch_send;
        let mut attributes = template.attributes(1);
        attributes.push(KeyValue::new(
            MESSAGING_BATCH_MESSAGE_COUNT,
            batch.messages.len() as i64,
        ));
        let span = template
            .builder(&self.settings.tracer, attributes)
            .with_links(links)
            .start_with_context(self.settings.tracer.as_ref(), parent);
        parent.with_span(span)
    }
}
