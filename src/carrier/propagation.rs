//! Which propagator moves the context: one given explicitly, or the application's global one.

use opentelemetry::Context;
use opentelemetry::global;
use opentelemetry::propagation::text_map_propagator::FieldIter;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use std::fmt;
use std::sync::{Arc, LazyLock};

/// The propagator a publisher, subscriber or HTTP glue uses.
///
/// [`Propagation::global`] (the default) looks the global propagator up on every use: the
/// application's, when it configured one (for instance with
/// `opentelemetry::global::set_text_map_propagator`, or through the telemetry bootstrap),
/// otherwise the crate's strict [`W3cTraceContext`](super::W3cTraceContext). [`Propagation::new`] fixes one.
#[derive(Clone, Default)]
pub struct Propagation(Option<Arc<dyn TextMapPropagator + Send + Sync>>);

impl Propagation {
    /// Always `propagator`.
    pub fn new(propagator: impl TextMapPropagator + Send + Sync + 'static) -> Self {
        Self(Some(Arc::new(propagator)))
    }

    /// The global propagator when one is configured, else [`W3cTraceContext`](super::W3cTraceContext).
    pub fn global() -> Self {
        Self(None)
    }

    /// Runs `f` with the chosen propagator.
    ///
    /// The global default is a no-op propagator with no fields; that is how an unconfigured
    /// global is told apart.
    pub(crate) fn with<T>(&self, mut f: impl FnMut(&dyn TextMapPropagator) -> T) -> T {
        match &self.0 {
            Some(propagator) => f(propagator.as_ref()),
            None => global::get_text_map_propagator(|p| {
                if p.fields().next().is_some() {
                    f(p)
                } else {
                    f(&super::W3cTraceContext)
                }
            }),
        }
    }

    /// Extracts a context from any carrier (HTTP headers, message attributes, …) into a fresh
    /// context.
    pub fn extract(&self, extractor: &dyn Extractor) -> Context {
        self.with(|p| p.extract_with_context(&Context::new(), extractor))
    }
}

/// A [`Propagation`] is itself a propagator, so that it can be handed on as one.
impl TextMapPropagator for Propagation {
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        self.with(|p| p.inject_context(cx, injector));
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        self.with(|p| p.extract_with_context(cx, extractor))
    }

    fn fields(&self) -> FieldIter<'_> {
        match &self.0 {
            Some(propagator) => propagator.fields(),
            // The global one's fields cannot be borrowed past its lock.
            None => FieldIter::new(&[]),
        }
    }
}

impl fmt::Debug for Propagation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(_) => f.write_str("Propagation::new(..)"),
            None => f.write_str("Propagation::global()"),
        }
    }
}

/// A propagator that moves nothing, for `OTEL_PROPAGATORS=none`.
///
/// It names the W3C fields, so that [`Propagation::global`] takes it for a configured
/// propagator (and uses it) rather than for the unconfigured no-op default.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoPropagation;

impl TextMapPropagator for NoPropagation {
    fn inject_context(&self, _cx: &Context, _injector: &mut dyn Injector) {}

    fn extract_with_context(&self, cx: &Context, _extractor: &dyn Extractor) -> Context {
        cx.clone()
    }

    fn fields(&self) -> FieldIter<'_> {
        static FIELDS: LazyLock<[String; 2]> =
            LazyLock::new(|| [super::TRACEPARENT.to_owned(), super::TRACESTATE.to_owned()]);
        FieldIter::new(FIELDS.as_slice())
    }
}
