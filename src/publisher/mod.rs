//! Traced publishing: the standard's `{topic} publish` span around a [`Transport`], one
//! message at a time (here) or in batches (`batch`).

use crate::binding::{self, BindingError, Encoding};
use crate::carrier::OverwritePolicy;
use crate::metrics::{BrokerError, Measurement, PipelineMetrics, Timed};
use crate::settings::Settings;
use crate::span::attributes::{
    self, EventAttributes, MESSAGING_GCP_PUBSUB_MESSAGE_ORDERING_KEY, MESSAGING_MESSAGE_BODY_SIZE,
    MESSAGING_MESSAGE_ID,
};
use crate::span::conventions::Operation;
use crate::span::{Destination, PER_MESSAGE_ROOM, SpanMaking, SpanTemplate, record_failure};
use crate::transport::{Message, Transport, TransportError};
use cloudevents::Event;
use opentelemetry::context::FutureExt as _;
use opentelemetry::trace::{Link, Span as _, SpanContext, SpanKind, TraceContextExt};
use opentelemetry::{Context, KeyValue};
use std::future::Future;
use std::time::Instant;

mod batch;

/// Why a publish failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PublishError {
    /// The event could not be encoded into a message.
    #[error("cannot encode the event: {0}")]
    Encode(#[from] BindingError),
    /// The transport refused or failed the publish.
    #[error("cannot publish the message: {0}")]
    Transport(#[from] TransportError),
}

impl PublishError {
    /// What failed, as `hyperfleet_broker_errors_total` names it.
    fn broker_error(&self) -> BrokerError {
        match self {
            Self::Encode(_) => BrokerError::Conversion,
            Self::Transport(_) => BrokerError::Publish,
        }
    }

    /// The `error.type` recorded on the span: the transport's gRPC code name, or the binding
    /// error's kind.
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::Encode(e) => e.error_type(),
            Self::Transport(e) => e.code().as_str(),
        }
    }
}

/// A published event.
#[derive(Debug, Clone, PartialEq)]
pub struct Published {
    /// The id the transport gave the message (`messaging.message.id`).
    pub message_id: String,
    /// The creation context the event carries: the publish span's, or the one it already had
    /// under [`OverwritePolicy::Preserve`].
    pub trace_context: SpanContext,
}

/// Per-call publish options.
#[derive(Debug, Clone, Default)]
pub struct PublishOptions {
    parent: Option<Context>,
    ordering_key: Option<String>,
}

impl PublishOptions {
    /// Default options: parent is the current context, no ordering key.
    pub fn new() -> Self {
        Self::default()
    }

    /// The parent of the publish span (default: [`Context::current`]).
    pub fn parent(mut self, cx: Context) -> Self {
        self.parent = Some(cx);
        self
    }

    /// Publish with an ordering key (an empty key means none, as in Pub/Sub).
    pub fn ordering_key(mut self, key: impl Into<String>) -> Self {
        self.ordering_key = Some(key.into()).filter(|k| !k.is_empty());
        self
    }
}

/// Publishes CloudEvents to one topic, each inside a PRODUCER span named
/// `{topic} publish` whose context travels in the event's `traceparent`.
///
/// ```
/// use cloudevents::{EventBuilder, EventBuilderV10};
/// use hyperfleet_tracing::transport::memory::MemoryTransport;
/// use hyperfleet_tracing::TracedPublisher;
///
/// # tokio::runtime::Runtime::new()?.block_on(async {
/// let transport = MemoryTransport::new();
/// transport.create_topic("hyperfleet-clusters")?;
/// let publisher = TracedPublisher::new(transport, "hyperfleet-clusters");
///
/// let event = EventBuilderV10::new()
///     .id("018f0f7e-0000-7000-8000-000000000001")
///     .source("hyperfleet-sentinel")
///     .ty("com.redhat.hyperfleet.cluster.reconcile")
///     .data("application/json", serde_json::json!({"id": "c1", "kind": "Cluster", "href": "/api/hyperfleet/v1/clusters/c1", "generation": 1}))
///     .build()?;
/// let published = publisher.publish(event).await?;
/// assert_eq!(published.message_id, "1");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct TracedPublisher<T> {
    transport: T,
    topic: String,
    encoding: Encoding,
    overwrite: OverwritePolicy,
    settings: Settings,
    /// Built from the settings whenever they change, so that no message builds them.
    spans: PublisherSpans,
    metrics: PipelineMetrics,
    event_attributes: EventAttributes,
    span_making: SpanMaking,
}

/// The spans a publisher starts, named and with their constant attributes.
struct PublisherSpans {
    /// One message's PRODUCER span.
    publish: SpanTemplate,
    /// One message's PRODUCER span in a batch.
    create: SpanTemplate,
    /// The CLIENT span over a batch's send.
    batch_send: SpanTemplate,
}

impl PublisherSpans {
    fn new(destination: Destination<'_>) -> Self {
        // A message's span gains its message id, or `error.type`, when it ends, and its body
        // size under the current conventions.
        Self {
            publish: SpanTemplate::messaging(destination, Operation::Send, SpanKind::Producer, 2),
            create: SpanTemplate::messaging(destination, Operation::Create, SpanKind::Producer, 2),
            batch_send: SpanTemplate::messaging(destination, Operation::Send, SpanKind::Client, 1),
        }
    }
}

impl<T: Transport> TracedPublisher<T> {
    /// A publisher to `topic` with the defaults: [`Settings::new`], structured encoding,
    /// [`OverwritePolicy::Preserve`].
    pub fn new(transport: T, topic: impl Into<String>) -> Self {
        let settings = Settings::new();
        let topic = topic.into();
        let (spans, metrics) = Self::built(&transport, &topic, &settings);
        Self {
            transport,
            topic,
            encoding: Encoding::default(),
            overwrite: OverwritePolicy::default(),
            settings,
            spans,
            metrics,
            event_attributes: EventAttributes::default(),
            span_making: SpanMaking::default(),
        }
    }

    /// Uses `settings` (tracer provider, propagator, conventions, metrics, attribute hook)
    /// instead of the defaults; the ways-in-only settings are ignored.
    pub fn settings(mut self, settings: Settings) -> Self {
        (self.spans, self.metrics) = Self::built(&self.transport, &self.topic, &settings);
        self.settings = settings;
        self.span_making = SpanMaking::default();
        self
    }

    /// Sets the message encoding (default structured).
    pub fn encoding(mut self, encoding: Encoding) -> Self {
        self.encoding = encoding;
        self
    }

    /// Sets what happens to trace context the event already carries (default
    /// [`OverwritePolicy::Preserve`]).
    pub fn overwrite_policy(mut self, policy: OverwritePolicy) -> Self {
        self.overwrite = policy;
        self
    }

    /// The span templates and metric series of `settings`.
    fn built(transport: &T, topic: &str, settings: &Settings) -> (PublisherSpans, PipelineMetrics) {
        let current_name = transport.destination_name(topic, None);
        let destination = Destination {
            system: transport.system(),
            topic,
            subscription: None,
            current_name: current_name.as_deref(),
            server_address: transport.server_address(),
            server_port: transport.server_port(),
            conventions: settings.conventions,
        };
        let spans = PublisherSpans::new(destination);
        (spans, settings.metrics.pipeline(&destination))
    }

    /// The topic this publisher sends to.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The transport underneath.
    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// Publishes `event` under the context current when `publish` is called (not when the
    /// future is first polled), so a future made inside one span and awaited elsewhere, or
    /// several publishes joined together, each keep the span they were made in.
    pub fn publish(
        &self,
        event: Event,
    ) -> impl Future<Output = Result<Published, PublishError>> + '_ {
        self.publish_with(event, PublishOptions::default())
    }

    /// Publishes `event` with explicit options; without a parent in `options`, under the
    /// context current when it is called.
    pub fn publish_with(
        &self,
        event: Event,
        options: PublishOptions,
    ) -> impl Future<Output = Result<Published, PublishError>> + '_ {
        let parent = options.parent.unwrap_or_else(Context::current);
        self.publish_under(event, parent, options.ordering_key)
    }

    async fn publish_under(
        &self,
        mut event: Event,
        parent: Context,
        ordering_key: Option<String>,
    ) -> Result<Published, PublishError> {
        let (cx, trace_context) = self.start_message_span(
            &parent,
            &mut event,
            &self.spans.publish,
            ordering_key.as_deref(),
        );
        let span = cx.span();
        let started = self.metrics.is_enabled().then(Instant::now);
        let result = match self.encode(event, ordering_key) {
            Ok(message) => {
                self.record_body_size(&span, &message);
                self.transport
                    .publish(&self.topic, message)
                    .with_context(cx.clone())
                    .await
                    .map_err(PublishError::from)
            }
            Err(e) => Err(e),
        };
        let result = self.finish(&span, Operation::Send, result);
        if let Some(started) = started {
            let error = result.as_ref().err();
            if !matches!(error, Some(PublishError::Encode(_))) {
                self.record_operation(started, error.map(PublishError::error_type), &cx);
            }
        }
        span.end();
        result.map(|message_id| Published {
            message_id,
            trace_context,
        })
    }

    /// Starts the span for one message and puts its creation context into the event.
    fn start_message_span(
        &self,
        parent: &Context,
        event: &mut Event,
        template: &SpanTemplate,
        ordering_key: Option<&str>,
    ) -> (Context, SpanContext) {
        let preserved = match self.overwrite {
            OverwritePolicy::Preserve => self.settings.propagation.remote_span_context(event),
            OverwritePolicy::Overwrite => None,
        };
        let cx = if self
            .span_making
            .skips(parent, self.settings.unsampled_parent)
        {
            // The span would carry the parent's context, or record nothing: the event carries
            // the parent's context (under a span id of the publish's own when it records
            // nothing).
            self.span_making.unmade(parent)
        } else {
            let cx = self.start_span(parent, event, template, ordering_key, preserved.as_ref());
            self.span_making.learn(parent, &cx);
            cx
        };
        let trace_context = match preserved {
            Some(existing) => existing,
            None => {
                // Whatever the event carried goes: it is not the context of this publish.
                self.settings.propagation.replace(&cx, event);
                cx.span().span_context().clone()
            }
        };
        (cx, trace_context)
    }

    /// The span of one message, with its attributes (and a link to the context the event
    /// keeps, under [`OverwritePolicy::Preserve`]).
    fn start_span(
        &self,
        parent: &Context,
        event: &Event,
        template: &SpanTemplate,
        ordering_key: Option<&str>,
        preserved: Option<&SpanContext>,
    ) -> Context {
        let deferred = self.settings.attribute_timing.deferred_under(parent);
        let per_message = if deferred {
            Vec::new()
        } else {
            self.per_message_attributes(event, ordering_key)
        };
        let room = match deferred {
            true => PER_MESSAGE_ROOM,
            false => per_message.len(),
        };
        let mut attributes = template.attributes(room);
        attributes.extend(per_message);
        let mut builder = template.builder(&self.settings.tracer, attributes);
        if let Some(existing) = preserved {
            builder = builder.with_links(vec![Link::with_context(existing.clone())]);
        }
        let mut span = builder.start_with_context(self.settings.tracer.as_ref(), parent);
        // Set on the span itself, before a `Context` boxes it behind a lock.
        if deferred && span.is_recording() {
            span.set_attributes(self.per_message_attributes(event, ordering_key));
        }
        parent.with_span(span)
    }

    /// A message span's own attributes: `cloudevents.*`, the ordering key, the hook's.
    fn per_message_attributes(&self, event: &Event, ordering_key: Option<&str>) -> Vec<KeyValue> {
        let mut attributes = self.event_attributes.of(event);
        attributes.extend(ordering_key.map(|key| {
            KeyValue::new(
                MESSAGING_GCP_PUBSUB_MESSAGE_ORDERING_KEY,
                attributes::bounded(key),
            )
        }));
        attributes.extend((self.settings.attributes)(event));
        attributes
    }

    fn encode(&self, event: Event, ordering_key: Option<String>) -> Result<Message, PublishError> {
        let mut message = binding::encode_owned(event, self.encoding)?;
        message.ordering_key = ordering_key;
        Ok(message)
    }

    /// Ends a message's publish (or, in a batch, create) span's work: its message id, or its
    /// failure recorded as the failure of `operation`.
    fn finish(
        &self,
        span: &opentelemetry::trace::SpanRef<'_>,
        operation: Operation,
        result: Result<String, PublishError>,
    ) -> Result<String, PublishError> {
        let failure = match &result {
            Ok(id) => {
                span.set_attribute(KeyValue::new(MESSAGING_MESSAGE_ID, id.clone()));
                None
            }
            Err(e) => {
                let event = self.settings.conventions.exception_event(operation);
                record_failure(span, event, e.error_type(), e);
                Some((e.broker_error(), e.error_type()))
            }
        };
        self.metrics.record(Measurement::Sent { failure });
        result
    }

    /// `messaging.message.body.size`, under the current conventions.
    fn record_body_size(&self, span: &opentelemetry::trace::SpanRef<'_>, message: &Message) {
        if self.settings.conventions.current() {
            span.set_attribute(KeyValue::new(
                MESSAGING_MESSAGE_BODY_SIZE,
                message.data.len() as i64,
            ));
        }
    }

    /// `messaging.client.operation.duration` of a publish call that began at `started`,
    /// measured by the span of `cx`.
    fn record_operation(&self, started: Instant, error_type: Option<&'static str>, cx: &Context) {
        self.metrics.record(Measurement::Operation(Timed {
            operation: self.settings.conventions.operation(Operation::Send).1,
            elapsed: started.elapsed(),
            error_type,
            span: cx.span().span_context(),
        }));
    }
}
