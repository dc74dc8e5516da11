//! The tracer spans come from. An SDK provider's tracer is kept as it is, so each span is boxed
//! once (by the `Context` that carries it) and its calls are direct; any other provider's,
//! the global one included, goes behind the API's box.

use opentelemetry::global::{BoxedSpan, BoxedTracer};
use opentelemetry::trace::{self, SpanBuilder, SpanContext, Status};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::{SdkTracer, Span as SdkSpan};
use std::any::Any;
use std::borrow::Cow;
use std::time::SystemTime;

/// A tracer: the SDK's, or any other behind a box.
#[doc(hidden)]
#[derive(Debug)]
pub enum SpanSource {
    /// The OpenTelemetry SDK's tracer.
    Sdk(SdkTracer),
    /// Any other tracer (the global one, a no-op one, a custom one).
    Boxed(BoxedTracer),
}

impl SpanSource {
    /// `tracer` as it is when it is the SDK's, boxed otherwise.
    pub(crate) fn new<T>(tracer: T) -> Self
    where
        T: trace::Tracer + Send + Sync + 'static,
        T::Span: Send + Sync + 'static,
    {
        let mut slot = Some(tracer);
        if let Some(sdk) = (&mut slot as &mut dyn Any)
            .downcast_mut::<Option<SdkTracer>>()
            .and_then(Option::take)
        {
            return Self::Sdk(sdk);
        }
        match slot {
            Some(other) => Self::Boxed(BoxedTracer::new(Box::new(other))),
            // Emptied only when it was the SDK's, which returned above.
            None => Self::Boxed(BoxedTracer::new(Box::new(trace::noop::NoopTracer::new()))),
        }
    }
}

impl trace::Tracer for SpanSource {
    type Span = SourceSpan;

    fn build_with_context(&self, builder: SpanBuilder, parent_cx: &Context) -> SourceSpan {
        match self {
            Self::Sdk(tracer) => SourceSpan::Sdk(tracer.build_with_context(builder, parent_cx)),
            Self::Boxed(tracer) => SourceSpan::Boxed(tracer.build_with_context(builder, parent_cx)),
        }
    }
}

/// A span of a [`SpanSource`].
#[doc(hidden)]
#[derive(Debug)]
// Not boxed: the `Context` that carries the span boxes it once; a box here would be a second.
#[allow(clippy::large_enum_variant)]
pub enum SourceSpan {
    /// The SDK's span.
    Sdk(SdkSpan),
    /// Any other tracer's.
    Boxed(BoxedSpan),
}

/// Calls `$call` on whichever span `$span` holds.
macro_rules! either {
    ($span:expr, $inner:ident => $call:expr) => {
        match $span {
            SourceSpan::Sdk($inner) => $call,
            SourceSpan::Boxed($inner) => $call,
        }
    };
}

impl trace::Span for SourceSpan {
    fn add_event_with_timestamp<T>(
        &mut self,
        name: T,
        timestamp: SystemTime,
        attributes: Vec<KeyValue>,
    ) where
        T: Into<Cow<'static, str>>,
    {
        either!(self, s => s.add_event_with_timestamp(name, timestamp, attributes))
    }

    fn span_context(&self) -> &SpanContext {
        either!(self, s => s.span_context())
    }

    fn is_recording(&self) -> bool {
        either!(self, s => s.is_recording())
    }

    fn set_attribute(&mut self, attribute: KeyValue) {
        either!(self, s => s.set_attribute(attribute))
    }

    fn set_attributes(&mut self, attributes: impl IntoIterator<Item = KeyValue>) {
        either!(self, s => s.set_attributes(attributes))
    }

    fn set_status(&mut self, status: Status) {
        either!(self, s => s.set_status(status))
    }

    fn update_name<T>(&mut self, new_name: T)
    where
        T: Into<Cow<'static, str>>,
    {
        either!(self, s => s.update_name(new_name))
    }

    fn add_link(&mut self, span_context: SpanContext, attributes: Vec<KeyValue>) {
        either!(self, s => s.add_link(span_context, attributes))
    }

    fn end_with_timestamp(&mut self, timestamp: SystemTime) {
        either!(self, s => s.end_with_timestamp(timestamp))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
    use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};

    #[test]
    fn an_sdk_tracer_is_kept_unboxed_and_its_spans_are_exported() {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        let source = SpanSource::new(provider.tracer("test"));
        assert!(matches!(source, SpanSource::Sdk(_)));
        let mut span = source.start("s");
        assert!(matches!(span, SourceSpan::Sdk(_)));
        span.set_attribute(KeyValue::new("k", "v"));
        span.end();
        let spans = exporter.get_finished_spans().unwrap_or_default();
        assert_eq!(spans.len(), 1);
        assert_eq!(spans[0].attributes, vec![KeyValue::new("k", "v")]);
    }

    #[test]
    fn any_other_tracer_is_boxed() {
        let noop = opentelemetry::trace::noop::NoopTracerProvider::new();
        let source = SpanSource::new(noop.tracer("test"));
        assert!(matches!(source, SpanSource::Boxed(_)));
        assert!(!source.start("s").is_recording());
    }
}
