//! Strict checks on trace-context values read from any carrier, whichever propagator reads
//! them: a `traceparent` in the exact W3C layout, `tracestate` and `baggage` within bounds.

use super::w3c;

/// Longest `baggage` read: what can be sent on again as a binary-mode Pub/Sub attribute
/// (`ce-baggage`, at most 1,024 bytes), below W3C Baggage's own 8,192.
pub(crate) const BAGGAGE_MAX_LEN: usize = 1024;

/// The part of `value` a propagator may read for the context field `key`, or `None` when it
/// must be ignored: `traceparent` in the exact W3C layout (without surrounding whitespace),
/// `tracestate` and `baggage` within their bounds. Other keys pass as they are.
pub(super) fn checked<'v>(key: &str, value: &'v str) -> Option<&'v str> {
    match key {
        super::TRACEPARENT => w3c::valid_traceparent(value),
        super::TRACESTATE => (value.len() <= w3c::TRACESTATE_MAX_READ_LEN).then_some(value),
        super::BAGGAGE => (value.len() <= BAGGAGE_MAX_LEN).then_some(value),
        _ => Some(value),
    }
}
