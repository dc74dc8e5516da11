//! Trace context in a CloudEvent's extension attributes.
//!
//! [`EventInjector`] and [`EventExtractor`] are thin carriers over a borrowed
//! [`cloudevents::Event`], in the manner of `opentelemetry-http`'s header carriers: they read and
//! write the `traceparent`, `tracestate` and `baggage` extensions defined by the CloudEvents
//! Distributed Tracing extension, and quietly skip anything that is not valid.
//!
//! ```
//! use cloudevents::{EventBuilder, EventBuilderV10};
//! use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
//! use opentelemetry::Context;
//!
//! let mut event = EventBuilderV10::new()
//!     .id("1").source("hyperfleet-sentinel").ty("com.redhat.hyperfleet.cluster.reconcile")
//!     .build()?;
//! let span_context = SpanContext::new(
//!     TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736")?,
//!     SpanId::from_hex("00f067aa0ba902b7")?,
//!     TraceFlags::SAMPLED, false, TraceState::default(),
//! );
//! hyperfleet_tracing::carrier::inject(&Context::new().with_remote_span_context(span_context), &mut event);
//! assert_eq!(
//!     event.extension("traceparent").map(|v| v.to_string()).as_deref(),
//!     Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
//! );
//! // The Rust propagator writes an empty `tracestate`; the carrier drops it.
//! assert!(event.extension("tracestate").is_none());
//!
//! let cx = hyperfleet_tracing::carrier::extract(&event);
//! assert_eq!(cx.span().span_context().trace_id().to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod googclient;
#[cfg(any(feature = "http-server", feature = "push"))]
mod headers;
mod policy;
mod propagation;
mod validate;
mod w3c;

pub use googclient::{GOOGCLIENT_TRACEPARENT, GOOGCLIENT_TRACESTATE, GoogclientExtractor};
#[cfg(any(feature = "http-server", feature = "push"))]
pub(crate) use headers::RequestHeaders;
pub use policy::OverwritePolicy;
pub use propagation::{NoPropagation, Propagation};
pub use w3c::W3cTraceContext;

use crate::message::names::lowercase;
use cloudevents::Event;
use cloudevents::event::ExtensionValue;
use opentelemetry::Context;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{SpanContext, TraceContextExt};

/// Extension attribute carrying the W3C `traceparent`.
pub const TRACEPARENT: &str = "traceparent";
/// Extension attribute carrying the W3C `tracestate`.
pub const TRACESTATE: &str = "tracestate";
/// Extension attribute carrying W3C baggage (written only when a baggage propagator is in use).
pub const BAGGAGE: &str = "baggage";

/// Writes trace context into a CloudEvent's extension attributes.
///
/// Keys are lower-cased; a key that is not a valid CloudEvents extension name is skipped. An
/// empty value is never written: it removes the extension instead, so a stale `tracestate` does
/// not outlive the `traceparent` it belonged to.
#[derive(Debug)]
pub struct EventInjector<'a>(pub &'a mut Event);

impl Injector for EventInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        let key = lowercase(key);
        if !crate::message::names::is_extension_name(&key) {
            return;
        }
        if value.is_empty() {
            self.0.remove_extension(&key);
        } else {
            self.0.set_extension(&key, value);
        }
    }
}

/// Reads trace context from a CloudEvent's extension attributes.
///
/// Only string-typed, non-empty extensions are read. `traceparent` must have the exact W3C
/// layout (lower-case hex, fixed field lengths, non-zero ids) and `tracestate` must be within the
/// W3C limits; anything else reads as absent, which means "no remote parent".
#[derive(Debug, Clone, Copy)]
pub struct EventExtractor<'a>(pub &'a Event);

impl Extractor for EventExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        let key = lowercase(key);
        let value = match self.0.extension(&key)? {
            ExtensionValue::String(s) if !s.is_empty() => s.as_str(),
            _ => return None,
        };
        validate::checked(&key, value)
    }

    fn keys(&self) -> Vec<&str> {
        self.0
            .iter_extensions()
            .filter(|(_, v)| matches!(v, ExtensionValue::String(s) if !s.is_empty()))
            .map(|(k, _)| k)
            .collect()
    }
}

/// Any carrier, read with the same strict checks as [`EventExtractor`]: a `traceparent` that
/// is not in the exact W3C layout, a `tracestate` or `baggage` over its bound, read as absent.
/// Repeated values (`get_all`) are checked one by one.
#[derive(Debug, Clone, Copy)]
pub struct StrictExtractor<E>(pub E);

impl<E: Extractor> Extractor for StrictExtractor<E> {
    fn get(&self, key: &str) -> Option<&str> {
        let value = self.0.get(key)?;
        validate::checked(&lowercase(key), value)
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys()
    }

    fn get_all(&self, key: &str) -> Option<Vec<&str>> {
        let key = lowercase(key);
        self.0
            .get_all(&key)?
            .into_iter()
            .map(|value| validate::checked(&key, value))
            .collect()
    }
}

/// Injects `cx` into `event` with the application's propagator.
///
/// Uses the global propagator when the application has configured one (for instance through
/// `opentelemetry::global::set_text_map_propagator`), otherwise [`W3cTraceContext`].
pub fn inject(cx: &Context, event: &mut Event) {
    Propagation::global().inject(cx, event);
}

/// Extracts the trace context carried by `event` with the application's propagator.
///
/// Returns a context without a remote span when the event carries none, or an invalid one.
pub fn extract(event: &Event) -> Context {
    Propagation::global().extract_event(event)
}

/// Injects `cx` into `event` with an explicit propagator.
pub fn inject_with(propagator: &dyn TextMapPropagator, cx: &Context, event: &mut Event) {
    propagator.inject_context(cx, &mut EventInjector(event));
}

/// Extracts the trace context carried by `event` with an explicit propagator.
pub fn extract_with(propagator: &dyn TextMapPropagator, event: &Event) -> Context {
    propagator.extract_with_context(&Context::new(), &EventExtractor(event))
}

/// Extracts the trace context a Google Pub/Sub client left in `googclient_*` message attributes.
///
/// Always W3C Trace Context ([`W3cTraceContext`]): that is what those clients write.
pub fn extract_googclient(attributes: &std::collections::BTreeMap<String, String>) -> Context {
    W3cTraceContext.extract_with_context(&Context::new(), &GoogclientExtractor(attributes))
}

/// The valid remote span context `event` carries, if any, read with the application's
/// propagator.
pub fn remote_span_context(event: &Event) -> Option<SpanContext> {
    Propagation::global().remote_span_context(event)
}

impl Propagation {
    /// Injects `cx` into `event`.
    pub fn inject(&self, cx: &Context, event: &mut Event) {
        self.with_event_parts(|w3c, rest| {
            if w3c {
                W3cTraceContext::inject_event(cx, event);
            }
            if let Some(rest) = rest {
                inject_with(rest, cx, event);
            }
        });
    }

    /// Extracts the trace context `event` carries.
    pub fn extract_event(&self, event: &Event) -> Context {
        self.with_event_parts(|w3c, rest| {
            let cx = match w3c {
                true => W3cTraceContext::extract_event(&Context::new(), event),
                false => Context::new(),
            };
            match rest {
                Some(rest) => rest.extract_with_context(&cx, &EventExtractor(event)),
                None => cx,
            }
        })
    }

    /// Replaces whatever context `event` carries with `cx`: the old `traceparent`,
    /// `tracestate` and `baggage` go even when the propagator writes none of them, so nothing
    /// untrusted outlives the context it came with.
    pub fn replace(&self, cx: &Context, event: &mut Event) {
        // Most events carry no extensions: skip the three lookups.
        if event.iter_extensions().next().is_some() {
            for key in [TRACEPARENT, TRACESTATE, BAGGAGE] {
                event.remove_extension(key);
            }
        }
        self.inject(cx, event);
    }

    /// The valid remote span context `event` carries, if any.
    pub fn remote_span_context(&self, event: &Event) -> Option<SpanContext> {
        // Context travels in extensions only: without any, skip the propagator.
        event.iter_extensions().next()?;
        let cx = self.extract_event(event);
        let span = cx.span();
        let sc = span.span_context();
        (sc.is_valid() && sc.is_remote()).then(|| sc.clone())
    }
}
