//! W3C Trace Context (Level 2), read and written strictly: the propagator every carrier of the
//! crate uses unless the application configured its own.
//!
//! - `traceparent`: version `00` exactly 55 characters of lower-case hex; a higher version read
//!   by its first four fields; `ff`, all-zero ids and any other layout invalid; optional
//!   whitespace around the value ignored; the `sampled` and `random` flags kept, others zeroed.
//! - `tracestate`: read only with a valid `traceparent`; repeated fields combined in order; keys
//!   and values by the current grammar (`foo@@bar` and 256-character keys are keys); empty
//!   members and optional whitespace ignored; an invalid member or more than 32 members discard
//!   the whole list; a later duplicate of a key is dropped. When written, members the context
//!   updated come first, at most 32, and at most 512 characters (whole members dropped, those
//!   over 128 characters first, then from the right).
//!
//! The OpenTelemetry API's `TraceState` refuses some keys the current grammar allows, and its
//! SDK drops the `random` flag of a span it does not sample. What the API cannot hold is kept
//! beside the span context in the [`Context`], and written again for as long as the context
//! continues the same trace.

mod traceparent;
mod tracestate;

pub(crate) use traceparent::valid_fields as valid_traceparent;
pub(crate) use tracestate::MAX_READ_LEN as TRACESTATE_MAX_READ_LEN;

use super::{TRACEPARENT, TRACESTATE};
use cloudevents::Event;
use cloudevents::event::ExtensionValue;
use opentelemetry::Context;
use opentelemetry::propagation::text_map_propagator::FieldIter;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{SpanContext, TraceContextExt, TraceId, TraceState};
use std::sync::LazyLock;
use traceparent::{RANDOM, Traceparent};
use tracestate::Members;

/// The W3C Trace Context propagator, to the letter of the current text (Level 2).
///
/// A drop-in for the SDK's `TraceContextPropagator`, which follows an older `tracestate`
/// grammar, reads only the first of repeated fields and drops the `random` flag. The crate's
/// carriers use it by default; install it globally for the rest of the application:
///
/// ```
/// use hyperfleet_tracing::carrier::W3cTraceContext;
/// use opentelemetry::propagation::TextMapPropagator;
/// use opentelemetry::trace::TraceContextExt;
/// use std::collections::HashMap;
///
/// opentelemetry::global::set_text_map_propagator(W3cTraceContext::new());
///
/// let headers = HashMap::from([
///     ("traceparent".to_owned(), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03".to_owned()),
///     ("tracestate".to_owned(), "congo@@edge=t61rcWkgMzE, rojo=00f067aa0ba902b7".to_owned()),
/// ]);
/// let cx = W3cTraceContext::new().extract(&headers);
/// let mut out = HashMap::new();
/// W3cTraceContext::new().inject_context(&cx, &mut out);
/// assert_eq!(out["traceparent"], "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03");
/// assert_eq!(out["tracestate"], "congo@@edge=t61rcWkgMzE,rojo=00f067aa0ba902b7");
/// assert!(cx.span().span_context().is_remote());
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct W3cTraceContext;

impl W3cTraceContext {
    /// The propagator.
    pub const fn new() -> Self {
        Self
    }
}

/// A received `tracestate` member, and whether the API's `TraceState` holds it.
struct ReceivedMember {
    key: Box<str>,
    value: Box<str>,
    held: bool,
}

/// What was received with a remote span context that the API's `SpanContext` cannot hold.
struct Received {
    trace_id: TraceId,
    random: bool,
    /// The whole list as received, each member marked with whether the API's `TraceState`
    /// holds it; empty when it holds them all.
    members: Box<[ReceivedMember]>,
}

impl W3cTraceContext {
    /// Writes `cx` through `set`: `traceparent`, then `tracestate` (empty when there is none,
    /// which tells carriers to drop a stale field).
    fn write(cx: &Context, mut set: impl FnMut(&'static str, String)) {
        let span = cx.span();
        let sc = span.span_context();
        if !sc.is_valid() {
            return;
        }
        let received = cx.get::<Received>().filter(|r| r.trace_id == sc.trace_id());
        let mut flags = sc.trace_flags();
        if received.is_some_and(|r| r.random) {
            flags = flags | RANDOM;
        }
        set(
            TRACEPARENT,
            traceparent::format(sc.trace_id(), sc.span_id(), flags),
        );
        let state = match received {
            Some(r) if !r.members.is_empty() => written_state(sc.trace_state(), &r.members),
            _ => tracestate::format(sc.trace_state().into_iter()),
        };
        set(TRACESTATE, state);
    }

    /// `cx` with the remote span context of `parent` and the `tracestate` values read with it.
    fn read(cx: &Context, parent: Traceparent, tracestate: &[&str]) -> Context {
        let mut members = Members::new();
        let parsed = tracestate::parse(tracestate, &mut members);
        let members = if parsed.is_some() {
            members.as_slice()
        } else {
            &[][..]
        };
        let (state, complete) = tracestate::to_trace_state(members);
        let random = parent.flags.to_u8() & RANDOM.to_u8() != 0;
        let sc = SpanContext::new(parent.trace_id, parent.span_id, parent.flags, true, state);
        let cx = cx.with_remote_span_context(sc);
        if complete && !random && cx.get::<Received>().is_none() {
            return cx;
        }
        let kept = if complete { &[][..] } else { members };
        cx.with_value(Received {
            trace_id: parent.trace_id,
            random,
            members: kept
                .iter()
                .map(|&(key, value)| ReceivedMember {
                    key: key.into(),
                    value: value.into(),
                    held: TraceState::NONE.insert(key, value).is_ok(),
                })
                .collect(),
        })
    }

    /// [`inject_context`](TextMapPropagator::inject_context) into a CloudEvent's extensions,
    /// as through [`EventInjector`](super::EventInjector), without its per-key checks (the two
    /// keys are valid extension names).
    pub(crate) fn inject_event(cx: &Context, event: &mut Event) {
        Self::write(cx, |key, value| {
            if value.is_empty() {
                event.remove_extension(key);
            } else {
                event.set_extension(key, value);
            }
        });
    }

    /// [`extract_with_context`](TextMapPropagator::extract_with_context) from a CloudEvent's
    /// extensions, reading what [`EventExtractor`](super::EventExtractor) would (non-empty
    /// strings, `tracestate` within its bound) but `traceparent` once: the extractor's strict
    /// check and this codec's reading are the same.
    pub(crate) fn extract_event(cx: &Context, event: &Event) -> Context {
        let text = |key| match event.extension(key) {
            Some(ExtensionValue::String(s)) if !s.is_empty() => Some(s.as_str()),
            _ => None,
        };
        let Some(parent) = text(TRACEPARENT).and_then(Traceparent::parse) else {
            return cx.clone();
        };
        let tracestate = text(TRACESTATE).filter(|v| v.len() <= tracestate::MAX_READ_LEN);
        Self::read(cx, parent, tracestate.as_slice())
    }
}

impl TextMapPropagator for W3cTraceContext {
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        Self::write(cx, |key, value| injector.set(key, value));
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        let Some(parent) = extractor.get(TRACEPARENT).and_then(Traceparent::parse) else {
            return cx.clone();
        };
        let values = extractor.get_all(TRACESTATE).unwrap_or_default();
        Self::read(cx, parent, &values)
    }

    fn fields(&self) -> FieldIter<'_> {
        static FIELDS: LazyLock<[String; 2]> =
            LazyLock::new(|| [TRACEPARENT.to_owned(), TRACESTATE.to_owned()]);
        FieldIter::new(FIELDS.as_slice())
    }
}

/// `text` without the optional whitespace (spaces and tabs) around it, by byte scans: `trim`
/// with a pattern decodes characters, which costs more than the rest of a short field's
/// reading.
fn trim_ows(text: &str) -> &str {
    let blank = |b: &u8| *b == b' ' || *b == b'\t';
    let bytes = text.as_bytes();
    let first = bytes.iter().position(|b| !blank(b)).unwrap_or(bytes.len());
    let last = bytes
        .iter()
        .rposition(|b| !blank(b))
        .map_or(first, |i| i + 1);
    // Spaces and tabs are single bytes, so both ends are character boundaries.
    text.get(first..last).unwrap_or_default()
}

/// The list to write for a context whose received list the API could not hold whole: the
/// members the context added or updated first, then the received ones it left as they were.
fn written_state(current: &TraceState, received: &[ReceivedMember]) -> String {
    let unchanged = |key: &str, value: &str| {
        received
            .iter()
            .any(|m| m.held && &*m.key == key && &*m.value == value)
    };
    let updated = current
        .into_iter()
        .filter(move |&(key, value)| !unchanged(key, value));
    let kept = received
        .iter()
        .filter(|m| !m.held || current.get(&m.key) == Some(&*m.value))
        .map(|m| (&*m.key, &*m.value));
    tracestate::format(updated.chain(kept))
}

#[cfg(test)]
mod tests {
    use super::trim_ows;

    #[test]
    fn optional_whitespace_is_spaces_and_tabs_at_either_end() {
        assert_eq!(trim_ows(" \t a b\t \t"), "a b");
        assert_eq!(trim_ows("a"), "a");
        assert_eq!(trim_ows(" \t "), "");
        assert_eq!(trim_ows(""), "");
        assert_eq!(trim_ows("\na\r"), "\na\r");
        assert_eq!(trim_ows(" é "), "é");
    }
}
