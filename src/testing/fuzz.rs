//! Fuzz harnesses for the two places untrusted bytes enter: [`binding::decode`] and
//! [`carrier::extract`]. The `fuzz/` targets call them on libFuzzer's input, and the seed and
//! crash files in `testdata/fuzz/` replay through them in `cargo test`.
//!
//! Inputs are readable text, so seeds can be written by hand: a block of `name: value` lines,
//! an empty line, then the body.
//!
//! ```text
//! content-type: application/cloudevents+json
//! ordering-key: cluster-1
//!
//! {"specversion":"1.0", ...}
//! ```
//!
//! For [`extract_extensions`], `name:b value` makes a boolean extension and `name:i value` an
//! integer one; there is no body.

use crate::binding::{self, Encoding};
use crate::carrier;
use crate::transport::Message;
use cloudevents::event::ExtensionValue;
use cloudevents::{AttributesReader, AttributesWriter, Event, EventBuilder, EventBuilderV10};
use opentelemetry::trace::TraceContextExt;

/// Most `tracestate` members and characters the carrier lets through.
const TRACESTATE_MEMBERS: usize = 32;
const TRACESTATE_CHARS: usize = 512;

/// Splits `input` into its `name: value` lines and its body.
fn parse(input: &[u8]) -> (Vec<(String, String)>, &[u8]) {
    let split = input.windows(2).position(|w| w == b"\n\n");
    let (head, body) = match split {
        Some(at) => (&input[..at], &input[at + 2..]),
        None => (input, &[][..]),
    };
    let fields = String::from_utf8_lossy(head)
        .lines()
        .filter_map(|line| {
            let (name, value) = line.split_once(':')?;
            Some((
                name.to_owned(),
                value.strip_prefix(' ').unwrap_or(value).to_owned(),
            ))
        })
        .collect();
    (fields, body)
}

/// The Pub/Sub message `input` describes: its lines are attributes (`ordering-key` sets the
/// ordering key), the body is the data.
pub fn message(input: &[u8]) -> Message {
    let (fields, body) = parse(input);
    let mut message = Message::new(body.to_vec());
    for (name, value) in fields {
        if name == "ordering-key" {
            message = message.with_ordering_key(value);
        } else {
            message = message.with_attribute(name, value);
        }
    }
    message
}

/// Decodes the message `input` describes. Decoding may fail, but must not panic; an event it
/// yields must give up its trace context without panicking and, when it can be encoded,
/// decode again to the same event in both encodings.
///
/// Returns whether the message decoded, so callers can tell seeds that reach past the decoder.
///
/// # Panics
///
/// When a property above breaks: that is the finding.
pub fn decode_message(input: &[u8]) -> bool {
    let Ok(event) = binding::decode(&message(input)) else {
        return false;
    };
    let _ = carrier::extract(&event);
    for encoding in [Encoding::Structured, Encoding::Binary] {
        if let Ok(encoded) = binding::encode(&event, encoding) {
            match binding::decode(&encoded) {
                Ok(again) => assert!(
                    same_event(&again, &event, encoding),
                    "{encoding:?} round trip changed the event:\n{again:?}\n{event:?}"
                ),
                Err(error) => panic!("{encoding:?} encoding of a decoded event: {error}"),
            }
        }
    }
    true
}

/// Equal events; except that data without a content type may come back with the type that
/// keeps it the same kind of data in the other encoding (see `binding::encode`), and that
/// binary mode carries extensions as strings (Pub/Sub attributes have no other type).
fn same_event(again: &Event, event: &Event, encoding: Encoding) -> bool {
    let mut expected = event.clone();
    if encoding == Encoding::Binary {
        for (name, value) in event.iter_extensions() {
            expected.set_extension(name, ExtensionValue::String(value.to_string()));
        }
    }
    if *again == expected {
        return true;
    }
    let declared = matches!(
        again.datacontenttype(),
        Some("application/octet-stream" | "application/json" | "text/plain")
    );
    let untyped = expected.datacontenttype().is_none();
    expected.set_datacontenttype(again.datacontenttype());
    untyped && declared && *again == expected
}

/// Extracts the trace context from an event whose extensions `input` lists. Invalid values
/// mean no parent, never a panic; a context that is extracted must have come from a string
/// `traceparent`, keep `tracestate` within its limits, and survive injection into another event.
///
/// Returns whether a valid remote parent came out.
///
/// # Panics
///
/// When a property above breaks.
pub fn extract_extensions(input: &[u8]) -> bool {
    let (fields, _) = parse(input);
    let Ok(mut event) = EventBuilderV10::new()
        .id("fuzz")
        .source("fuzz")
        .ty("fuzz")
        .build()
    else {
        return false;
    };
    for (name, value) in fields {
        let value = match name.rsplit_once(':') {
            Some((name, "b")) => (name.to_owned(), ExtensionValue::Boolean(value == "true")),
            Some((name, "i")) => match value.trim().parse() {
                Ok(i) => (name.to_owned(), ExtensionValue::Integer(i)),
                Err(_) => continue,
            },
            _ => (name, ExtensionValue::String(value)),
        };
        event.set_extension(&value.0, value.1);
    }

    let cx = carrier::extract(&event);
    let span = cx.span();
    let remote = span.span_context();
    if !remote.is_valid() {
        return false;
    }
    assert!(
        matches!(
            event.extension("traceparent"),
            Some(ExtensionValue::String(_))
        ),
        "a parent from a traceparent that is not a string"
    );
    assert!(remote.is_remote());
    let state = remote.trace_state().header();
    assert!(
        state.len() <= TRACESTATE_CHARS,
        "tracestate of {} chars",
        state.len()
    );
    assert!(
        state.split(',').filter(|m| !m.is_empty()).count() <= TRACESTATE_MEMBERS,
        "tracestate over {TRACESTATE_MEMBERS} members"
    );

    let mut next = event.clone();
    next.remove_extension("traceparent");
    next.remove_extension("tracestate");
    carrier::inject(&cx, &mut next);
    let again = carrier::extract(&next);
    assert_eq!(
        again.span().span_context(),
        remote,
        "the context did not survive injection"
    );
    true
}
