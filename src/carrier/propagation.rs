//! Which propagator moves the context: one given explicitly, or the application's global one.

use opentelemetry::Context;
use opentelemetry::global;
use opentelemetry::propagation::text_map_propagator::FieldIter;
use opentelemetry::propagation::{
    Extractor, Injector, TextMapCompositePropagator, TextMapPropagator,
};
use std::fmt;
use std::sync::{Arc, LazyLock, RwLock};

/// The propagation the telemetry bootstrap made global, so that [`Propagation::global`] keeps
/// its fast path on events (the codec on the extensions themselves) while that one is still
/// the global propagator.
static INSTALLED: RwLock<Option<Propagation>> = RwLock::new(None);

/// The propagator a publisher, subscriber or HTTP glue uses.
///
/// [`Propagation::global`] (the default) looks the global propagator up on every use: the
/// application's, when it configured one (for instance with
/// `opentelemetry::global::set_text_map_propagator`, or through the telemetry bootstrap),
/// otherwise the crate's strict [`W3cTraceContext`](super::W3cTraceContext). [`Propagation::new`] fixes one.
#[derive(Clone, Default)]
pub struct Propagation(Chosen);

#[derive(Clone, Default)]
enum Chosen {
    #[default]
    Global,
    Fixed(Arc<dyn TextMapPropagator + Send + Sync>),
    /// The crate's W3C codec, then `rest` (baggage, …): on a CloudEvent the codec reads and
    /// writes the extensions itself; `all` is the two together, for other carriers.
    #[cfg_attr(not(feature = "telemetry"), allow(dead_code))]
    W3cFirst {
        all: Arc<dyn TextMapPropagator + Send + Sync>,
        rest: Option<Arc<dyn TextMapPropagator + Send + Sync>>,
    },
}

impl Propagation {
    /// Always `propagator`.
    pub fn new(propagator: impl TextMapPropagator + Send + Sync + 'static) -> Self {
        Self(Chosen::Fixed(Arc::new(propagator)))
    }

    /// The global propagator when one is configured, else [`W3cTraceContext`](super::W3cTraceContext).
    pub fn global() -> Self {
        Self(Chosen::Global)
    }

    /// The crate's [`W3cTraceContext`](super::W3cTraceContext) then `rest`, in that order (as
    /// `TextMapCompositePropagator` would run them).
    #[cfg_attr(not(feature = "telemetry"), allow(dead_code))]
    pub(crate) fn w3c_then(rest: Vec<Box<dyn TextMapPropagator + Send + Sync>>) -> Self {
        let rest = (!rest.is_empty()).then(|| {
            Arc::new(TextMapCompositePropagator::new(rest))
                as Arc<dyn TextMapPropagator + Send + Sync>
        });
        let mut all: Vec<Box<dyn TextMapPropagator + Send + Sync>> =
            vec![Box::new(super::W3cTraceContext)];
        all.extend(
            rest.clone()
                .map(|r| Box::new(Shared(r)) as Box<dyn TextMapPropagator + Send + Sync>),
        );
        Self(Chosen::W3cFirst {
            all: Arc::new(TextMapCompositePropagator::new(all)),
            rest,
        })
    }

    /// Runs `f` with the chosen propagator.
    ///
    /// The global default is a no-op propagator with no fields; that is how an unconfigured
    /// global is told apart.
    pub(crate) fn with<T>(&self, mut f: impl FnMut(&dyn TextMapPropagator) -> T) -> T {
        match &self.0 {
            Chosen::Fixed(propagator)
            | Chosen::W3cFirst {
                all: propagator, ..
            } => f(propagator.as_ref()),
            Chosen::Global => global::get_text_map_propagator(|p| {
                if p.fields().next().is_some() {
                    f(p)
                } else {
                    f(&super::W3cTraceContext)
                }
            }),
        }
    }

    /// Runs `f` with what moves the context on a CloudEvent: whether the crate's W3C codec
    /// runs first on the event's extensions itself, and the propagator for the rest.
    pub(crate) fn with_event_parts<T>(
        &self,
        mut f: impl FnMut(bool, Option<&dyn TextMapPropagator>) -> T,
    ) -> T {
        if let Some((codec, rest)) = self.chosen_event_parts() {
            return f(codec, rest);
        }
        global::get_text_map_propagator(|p| {
            // Unconfigured: no fields.
            if p.fields().next().is_none() {
                return f(true, None);
            }
            let installed = INSTALLED.read().unwrap_or_else(|e| e.into_inner());
            let known = installed.as_ref().filter(|i| i.is(p));
            match known.and_then(Propagation::chosen_event_parts) {
                Some((codec, rest)) => f(codec, rest),
                None => f(false, Some(p)),
            }
        })
    }

    /// [`Self::with_event_parts`]'s arguments when the propagator is chosen, not global.
    fn chosen_event_parts(&self) -> Option<(bool, Option<&dyn TextMapPropagator>)> {
        match &self.0 {
            Chosen::Fixed(propagator) => Some((false, Some(propagator.as_ref()))),
            Chosen::W3cFirst { rest, .. } => Some((true, rest.as_deref().map(|r| r as _))),
            Chosen::Global => None,
        }
    }

    /// Makes this the global propagator, remembered as the crate's own.
    #[cfg_attr(not(feature = "telemetry"), allow(dead_code))]
    pub(crate) fn install_globally(self) {
        *INSTALLED.write().unwrap_or_else(|e| e.into_inner()) = Some(self.clone());
        global::set_text_map_propagator(self);
    }

    /// Whether `propagator` is this propagation or a clone of it: the same composite, known by
    /// the address of its first field's name, which the composite owns (and this one keeps
    /// alive). Only a [`Propagation::w3c_then`] has a fast path to keep.
    fn is(&self, propagator: &dyn TextMapPropagator) -> bool {
        let Chosen::W3cFirst { all, .. } = &self.0 else {
            return false;
        };
        match (all.fields().next(), propagator.fields().next()) {
            (Some(ours), Some(theirs)) => std::ptr::eq(ours.as_ptr(), theirs.as_ptr()),
            _ => false,
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
            Chosen::Fixed(propagator)
            | Chosen::W3cFirst {
                all: propagator, ..
            } => propagator.fields(),
            // The global one's fields cannot be borrowed past its lock.
            Chosen::Global => FieldIter::new(&[]),
        }
    }
}

impl fmt::Debug for Propagation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Chosen::Fixed(_) | Chosen::W3cFirst { .. } => f.write_str("Propagation::new(..)"),
            Chosen::Global => f.write_str("Propagation::global()"),
        }
    }
}

/// A shared propagator as a boxed one, for a composite.
#[derive(Debug)]
struct Shared(Arc<dyn TextMapPropagator + Send + Sync>);

impl TextMapPropagator for Shared {
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        self.0.inject_context(cx, injector);
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        self.0.extract_with_context(cx, extractor)
    }

    fn fields(&self) -> FieldIter<'_> {
        self.0.fields()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::carrier::{EventExtractor, EventInjector, W3cTraceContext};
    use opentelemetry::KeyValue;
    use opentelemetry::baggage::BaggageExt;
    use opentelemetry::trace::TraceState;
    use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId};
    use opentelemetry_sdk::propagation::BaggagePropagator;
    use std::collections::HashMap;
    use std::str::FromStr;

    fn sent() -> Context {
        let sc = SpanContext::new(
            TraceId::from(0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736),
            SpanId::from(0x00f0_67aa_0ba9_02b7),
            TraceFlags::SAMPLED,
            true,
            TraceState::from_str("congo=t61rcWkgMzE").unwrap(),
        );
        Context::new()
            .with_remote_span_context(sc)
            .with_baggage([KeyValue::new("cluster", "c-1")])
    }

    fn event() -> cloudevents::Event {
        crate::testing::reconcile_event("e-1", "c-1").unwrap()
    }

    #[test]
    fn the_installed_propagation_is_known_again_and_no_other() {
        let ours = Propagation::w3c_then(vec![Box::new(BaggagePropagator::new())]);
        // What the global slot holds after `install_globally`: the value itself, boxed.
        let global: Box<dyn TextMapPropagator + Send + Sync> = Box::new(ours.clone());
        assert!(ours.is(global.as_ref()));
        let same_kind = Propagation::w3c_then(vec![Box::new(BaggagePropagator::new())]);
        assert!(
            !ours.is(&same_kind),
            "another value of the same configuration"
        );
        assert!(!ours.is(&TextMapCompositePropagator::new(vec![
            Box::new(W3cTraceContext),
            Box::new(BaggagePropagator::new()),
        ])));
        assert!(!Propagation::new(W3cTraceContext).is(global.as_ref()));
        assert!(!Propagation::global().is(global.as_ref()));
    }

    /// The codec first, on events by itself: what it writes and reads is what the generic
    /// composite writes and reads, baggage included.
    #[test]
    fn w3c_first_moves_on_events_what_the_composite_moves() {
        let fast = Propagation::w3c_then(vec![Box::new(BaggagePropagator::new())]);
        let composite = TextMapCompositePropagator::new(vec![
            Box::new(W3cTraceContext),
            Box::new(BaggagePropagator::new()),
        ]);
        let (mut by_fast, mut by_composite) = (event(), event());
        fast.inject(&sent(), &mut by_fast);
        composite.inject_context(&sent(), &mut EventInjector(&mut by_composite));
        let extensions = |e: &cloudevents::Event| {
            let mut all: Vec<_> = e
                .iter_extensions()
                .map(|(k, v)| (k.to_owned(), v.to_string()))
                .collect();
            all.sort();
            all
        };
        assert_eq!(extensions(&by_fast), extensions(&by_composite));
        assert_eq!(extensions(&by_fast).len(), 3, "{:?}", extensions(&by_fast));

        let read = fast.extract_event(&by_composite);
        let expected = composite.extract(&EventExtractor(&by_fast));
        assert_eq!(read.span().span_context(), expected.span().span_context());
        assert_eq!(
            read.baggage().get("cluster").map(ToString::to_string),
            Some("c-1".to_owned())
        );
        assert_eq!(read.span().span_context(), sent().span().span_context());

        // Other carriers get both too.
        let mut headers = HashMap::new();
        fast.inject_context(&sent(), &mut headers);
        assert!(headers.contains_key("traceparent") && headers.contains_key("baggage"));
    }

    #[test]
    fn w3c_first_alone_ignores_baggage_and_an_invalid_traceparent() {
        let fast = Propagation::w3c_then(Vec::new());
        let mut carried = event();
        fast.inject(&sent(), &mut carried);
        assert!(carried.extension("baggage").is_none());
        carried.set_extension(
            "traceparent",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        );
        assert!(
            !fast
                .extract_event(&carried)
                .span()
                .span_context()
                .is_valid()
        );
    }
}
