//! The tracer our spans come from, and how failures are recorded on them.

use opentelemetry::InstrumentationScope;
use opentelemetry::KeyValue;
use opentelemetry::global::{self, BoxedTracer};
use opentelemetry::trace::{SpanBuilder, SpanKind, SpanRef, Status, Tracer, TracerProvider};
use std::sync::Arc;

use crate::attributes::ERROR_TYPE;
use crate::naming;

/// Instrumentation scope name of every span this crate starts.
pub const SCOPE_NAME: &str = "hyperfleet-tracing";

pub(crate) type SharedTracer = Arc<BoxedTracer>;

fn scope() -> InstrumentationScope {
    InstrumentationScope::builder(SCOPE_NAME)
        .with_version(env!("CARGO_PKG_VERSION"))
        .build()
}

/// A tracer from the global provider as it is now: build publishers and subscribers after
/// installing the application's provider.
pub(crate) fn global_tracer() -> SharedTracer {
    Arc::new(global::tracer_with_scope(scope()))
}

/// A tracer provider spans can come from: any OpenTelemetry provider whose tracers and spans
/// are thread-safe (the SDK's `SdkTracerProvider`, the no-op provider, …). Publishers,
/// subscribers and the HTTP glue take one with `.tracer_provider(&provider)`.
pub trait TracerSource {
    /// A tracer with this crate's instrumentation scope.
    #[doc(hidden)]
    fn shared_tracer(&self) -> Arc<BoxedTracer>;
}

impl<P> TracerSource for P
where
    P: TracerProvider,
    P::Tracer: Send + Sync + 'static,
    <P::Tracer as opentelemetry::trace::Tracer>::Span: Send + Sync + 'static,
{
    fn shared_tracer(&self) -> Arc<BoxedTracer> {
        Arc::new(BoxedTracer::new(Box::new(self.tracer_with_scope(scope()))))
    }
}

/// Records a failure the way the standard asks: the error, `error.type`, status Error.
pub(crate) fn record_failure(span: &SpanRef<'_>, error_type: &str, error: &dyn std::error::Error) {
    span.record_error(error);
    span.set_attribute(KeyValue::new(ERROR_TYPE, error_type.to_owned()));
    span.set_status(Status::error(error.to_string()));
}

/// What every span of one kind from a publisher or subscriber starts with: a name and the
/// attributes that are the same for every message. Built once, so that a message's span
/// clones reference-counted values instead of allocating them again.
#[derive(Debug, Clone)]
pub(crate) struct SpanTemplate {
    name: &'static str,
    kind: SpanKind,
    attributes: Vec<KeyValue>,
}

impl Default for SpanTemplate {
    fn default() -> Self {
        Self {
            name: "",
            kind: SpanKind::Internal,
            attributes: Vec::new(),
        }
    }
}

impl SpanTemplate {
    pub(crate) fn new(name: &str, kind: SpanKind, attributes: Vec<KeyValue>) -> Self {
        Self {
            name: naming::intern(name),
            kind,
            attributes,
        }
    }

    /// The template's attributes, with room for `more` (those of the message, and those set
    /// when the span ends) so that adding them does not reallocate.
    pub(crate) fn attributes(&self, more: usize) -> Vec<KeyValue> {
        let mut attributes = Vec::with_capacity(self.attributes.len() + more);
        attributes.extend_from_slice(&self.attributes);
        attributes
    }

    /// A builder for this span with `attributes` (from [`Self::attributes`]).
    pub(crate) fn builder(&self, tracer: &BoxedTracer, attributes: Vec<KeyValue>) -> SpanBuilder {
        tracer
            .span_builder(self.name)
            .with_kind(self.kind.clone())
            .with_attributes(attributes)
    }
}
