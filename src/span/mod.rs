//! The span vocabulary: attribute names, the conventions spans follow, their names and
//! templates, the tracer they come from, and how failures are recorded on them.

use opentelemetry::Context;
use opentelemetry::InstrumentationScope;
use opentelemetry::KeyValue;
use opentelemetry::global;
use opentelemetry::trace::{
    SpanBuilder, SpanKind, SpanRef, Status, TraceContextExt, Tracer, TracerProvider,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

pub mod attributes;
pub(crate) mod conventions;
pub(crate) mod naming;
pub(crate) mod timing;
mod tracer;
pub(crate) mod unsampled;

use attributes::{ERROR_TYPE, EXCEPTION_MESSAGE, EXCEPTION_TYPE};
use conventions::{Conventions, Operation};
use unsampled::UnsampledParent;

/// Instrumentation scope name of every span this crate starts.
pub(crate) const SCOPE_NAME: &str = "hyperfleet-tracing";

pub(crate) use tracer::SourceSpan;
pub use tracer::SpanSource;

pub(crate) type SharedTracer = Arc<SpanSource>;

pub(crate) fn scope() -> InstrumentationScope {
    InstrumentationScope::builder(SCOPE_NAME)
        .with_version(env!("CARGO_PKG_VERSION"))
        .build()
}

/// A tracer from the global provider as it is now: build publishers and subscribers after
/// installing the application's provider.
pub(crate) fn global_tracer() -> SharedTracer {
    Arc::new(SpanSource::Boxed(global::tracer_with_scope(scope())))
}

/// A tracer provider spans can come from: any OpenTelemetry provider whose tracers and spans
/// are thread-safe (the SDK's `SdkTracerProvider`, the no-op provider, …). Publishers,
/// subscribers and the HTTP glue take one with `.tracer_provider(&provider)`.
///
/// Sealed: it is implemented for every such provider, and for nothing else.
pub trait TracerSource: sealed::Sealed {
    /// A tracer with this crate's instrumentation scope.
    #[doc(hidden)]
    fn shared_tracer(&self) -> Arc<SpanSource>;
}

mod sealed {
    use opentelemetry::trace::TracerProvider;

    pub trait Sealed {}

    impl<P: TracerProvider> Sealed for P {}
}

impl<P> TracerSource for P
where
    P: TracerProvider,
    P::Tracer: Send + Sync + 'static,
    <P::Tracer as opentelemetry::trace::Tracer>::Span: Send + Sync + 'static,
{
    fn shared_tracer(&self) -> Arc<SpanSource> {
        Arc::new(SpanSource::new(self.tracer_with_scope(scope())))
    }
}

/// Records a failure the way the standard asks: an exception event named `event` (`exception`,
/// or the current conventions' `messaging.{operation type}.exception`) with the error's type
/// and message, `error.type`, status Error. Error texts may quote untrusted input, so the
/// message is cut to [`MAX_VALUE_LEN`](crate::span::attributes::MAX_VALUE_LEN) bytes, like
/// every text on a span.
pub(crate) fn record_failure(
    span: &SpanRef<'_>,
    event: &'static str,
    error_type: &str,
    error: &dyn std::error::Error,
) {
    let message = attributes::bounded_shared(&error.to_string());
    span.add_event(
        event,
        vec![
            KeyValue::new(EXCEPTION_TYPE, error_type.to_owned()),
            KeyValue::new(EXCEPTION_MESSAGE, message.clone()),
        ],
    );
    span.set_attribute(KeyValue::new(ERROR_TYPE, error_type.to_owned()));
    span.set_status(Status::error(message.as_str().into_owned()));
}

/// Where messaging spans point: the same for every span of one publisher or subscriber.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Destination<'a> {
    /// `messaging.system`.
    pub(crate) system: &'static str,
    /// The topic (`messaging.destination.name`).
    pub(crate) topic: &'a str,
    /// The subscription, on the consumer side.
    pub(crate) subscription: Option<&'a str>,
    /// The system's own name for the destination under the current conventions, when it is
    /// not the topic ([`Transport::destination_name`](crate::transport::Transport)); it
    /// takes the subscription in, so that those spans carry no subscription attribute.
    pub(crate) current_name: Option<&'a str>,
    /// `server.address`, when the transport talks to a server.
    pub(crate) server_address: Option<&'a str>,
    /// `server.port`, when the transport names one.
    pub(crate) server_port: Option<u16>,
    /// The conventions spans follow.
    pub(crate) conventions: Conventions,
}

/// Room for a message's own attributes in a span's vector when they are set after it starts
/// (`AttributeTiming::WhenRecording`): `cloudevents.*` (up to 5), the delivery's naming (up
/// to 4) and one more.
pub(crate) const PER_MESSAGE_ROOM: usize = 10;

/// What every span of one kind from a publisher or subscriber starts with: a name and the
/// attributes that are the same for every message. Built once, so that a message's span
/// clones reference-counted values instead of allocating them again.
#[derive(Debug, Clone)]
pub(crate) struct SpanTemplate {
    name: &'static str,
    kind: SpanKind,
    attributes: Vec<KeyValue>,
    /// Attributes a span of this kind may gain after it starts (`error.type`, the message id).
    set_later: usize,
}

impl SpanTemplate {
    /// The span of `operation` on `destination`, with the messaging attributes every such
    /// span starts with. Under the HyperFleet standard it is named `{topic} {operation}` (or
    /// the other order); under the current conventions `{operation} {topic}` for a producer and
    /// `{operation} {subscription}` for a consumer.
    pub(crate) fn messaging(
        destination: Destination<'_>,
        operation: Operation,
        kind: SpanKind,
        set_later: usize,
    ) -> Self {
        let conventions = destination.conventions;
        let (operation_type, operation_name) = conventions.operation(operation);
        // A system's own destination name takes the subscription in: its spans are named after
        // it and carry no subscription, but under `messaging/dup`, which keeps the standard's
        // subscription attribute too.
        let (name, named_subscription, subscription) =
            match (conventions.current(), destination.current_name) {
                (true, Some(name)) => {
                    let dup = conventions == Conventions::MessagingDup;
                    (name, None, destination.subscription.filter(|_| dup))
                }
                _ => (
                    destination.topic,
                    destination.subscription,
                    destination.subscription,
                ),
            };
        let attributes = attributes::messaging(
            destination.system,
            (operation_type, operation_name),
            name,
            subscription,
            destination.server_address,
            destination.server_port,
        );
        let name = conventions.span_name(operation_name, name, named_subscription);
        Self {
            name: naming::intern(&name),
            kind,
            attributes,
            set_later,
        }
    }

    /// The same span under another name.
    pub(crate) fn named(mut self, name: &str) -> Self {
        self.name = naming::intern(name);
        self
    }

    /// The same span without the constant attribute `key`.
    pub(crate) fn without(mut self, key: &str) -> Self {
        self.attributes.retain(|kv| kv.key.as_str() != key);
        self
    }

    /// The same span with one more constant attribute.
    pub(crate) fn with_attribute(mut self, attribute: KeyValue) -> Self {
        self.attributes.push(attribute);
        self
    }

    /// The template's attributes, with room for `per_message` more (a message's, given now or
    /// once the span records: [`PER_MESSAGE_ROOM`]) and for those set after the span starts,
    /// so that adding them does not reallocate: the SDK keeps this vector as the span's own.
    pub(crate) fn attributes(&self, per_message: usize) -> Vec<KeyValue> {
        let mut attributes =
            Vec::with_capacity(self.attributes.len() + per_message + self.set_later);
        attributes.extend_from_slice(&self.attributes);
        attributes
    }

    /// A builder for this span with `attributes` (from [`Self::attributes`]).
    pub(crate) fn builder(&self, tracer: &SpanSource, attributes: Vec<KeyValue>) -> SpanBuilder {
        tracer
            .span_builder(self.name)
            .with_kind(self.kind.clone())
            .with_attributes(attributes)
    }
}

/// `parent` with a span that only carries the parent span's context: what a span that is not
/// made hands on. Ending or annotating it leaves the caller's span alone.
pub(crate) fn without_own_span(parent: &Context) -> Context {
    match parent.has_active_span() {
        true => parent.with_remote_span_context(parent.span().span_context().clone()),
        false => parent.clone(),
    }
}

/// `parent` with a span of its own that records nothing and is never exported: a fresh span
/// id under the parent's trace id, flags and `tracestate`, as the SDK gives a span its
/// sampler drops. What a span skipped under an unsampled parent hands on, so that the next hop
/// still sees a new parent id (W3C Trace Context's `parent-id` is the caller's own operation),
/// without the SDK's span, sampler call and attributes.
pub(crate) fn unrecorded_child(parent: &Context) -> Context {
    use opentelemetry_sdk::trace::{IdGenerator as _, RandomIdGenerator};
    let span = parent.span();
    let of_parent = span.span_context();
    let own = opentelemetry::trace::SpanContext::new(
        of_parent.trace_id(),
        RandomIdGenerator::default().new_span_id(),
        of_parent.trace_flags(),
        false,
        of_parent.trace_state().clone(),
    );
    parent.with_remote_span_context(own)
}

/// Whether a tracer makes spans of its own, learned from the first span it starts: a no-op
/// tracer's span carries its parent's context (or none), never a span id of its own. Once a
/// tracer is known to make none, the publisher and the consume pipeline skip the attributes
/// and spans it would throw away (the context still travels: it is the parent's). The OpenTelemetry
/// API cannot say this of a provider beforehand: the global one is opaque, and a probe span
/// would be exported by a recording one.
#[derive(Debug, Default)]
pub(crate) struct SpanMaking(AtomicU8);

const UNKNOWN: u8 = 0;
const MAKES_SPANS: u8 = 1;
const NO_SPANS: u8 = 2;

impl SpanMaking {
    /// Whether the tracer is known to make no spans.
    pub(crate) fn makes_none(&self) -> bool {
        self.0.load(Ordering::Relaxed) == NO_SPANS
    }

    /// Whether no span is to be started under `parent`: the tracer makes none, or `unsampled`
    /// says that none would record there.
    pub(crate) fn skips(&self, parent: &Context, unsampled: UnsampledParent) -> bool {
        self.makes_none() || unsampled.skips(parent)
    }

    /// The context handed on in place of a span [`skips`](Self::skips) skipped: the parent's
    /// when the tracer makes no spans, an unrecorded child of the parent's when it is the
    /// unsampled parent that makes the span pointless.
    pub(crate) fn unmade(&self, parent: &Context) -> Context {
        match self.makes_none() {
            true => without_own_span(parent),
            false => unrecorded_child(parent),
        }
    }

    /// Learns from `started`, a span the tracer started under `parent`.
    pub(crate) fn learn(&self, parent: &Context, started: &Context) {
        if self.0.load(Ordering::Relaxed) != UNKNOWN {
            return;
        }
        let (parent, started) = (parent.span(), started.span());
        let (parent, started) = (parent.span_context(), started.span_context());
        let own =
            started.is_valid() && !(parent.is_valid() && started.span_id() == parent.span_id());
        let learned = if own { MAKES_SPANS } else { NO_SPANS };
        self.0.store(learned, Ordering::Relaxed);
    }
}
