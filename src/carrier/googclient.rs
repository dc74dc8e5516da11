//! Trace context that Google's Pub/Sub client libraries put in message attributes.
//!
//! With OpenTelemetry tracing on, Google's Go, Python and Node clients inject their per-message
//! create span as the attributes `googclient_traceparent` / `googclient_tracestate`. A message
//! whose CloudEvent carries no trace context can continue that trace instead.

use super::validate;
use opentelemetry::propagation::Extractor;
use std::collections::BTreeMap;

/// Attribute carrying a Google client's W3C `traceparent`.
pub const GOOGCLIENT_TRACEPARENT: &str = "googclient_traceparent";
/// Attribute carrying a Google client's W3C `tracestate`.
pub const GOOGCLIENT_TRACESTATE: &str = "googclient_tracestate";

/// Reads `traceparent` / `tracestate` from the `googclient_*` message attributes, with the
/// same strict checks as [`EventExtractor`](super::EventExtractor).
#[derive(Debug, Clone, Copy)]
pub struct GoogclientExtractor<'a>(pub &'a BTreeMap<String, String>);

impl Extractor for GoogclientExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        // Compared without case and without allocating: this runs for every message whose
        // event carries no context.
        let (key, attribute) = if key.eq_ignore_ascii_case(super::TRACEPARENT) {
            (super::TRACEPARENT, GOOGCLIENT_TRACEPARENT)
        } else if key.eq_ignore_ascii_case(super::TRACESTATE) {
            (super::TRACESTATE, GOOGCLIENT_TRACESTATE)
        } else {
            return None;
        };
        validate::checked(key, self.0.get(attribute)?)
    }

    fn keys(&self) -> Vec<&str> {
        [
            (GOOGCLIENT_TRACEPARENT, super::TRACEPARENT),
            (GOOGCLIENT_TRACESTATE, super::TRACESTATE),
        ]
        .into_iter()
        .filter(|(attribute, _)| self.0.get(*attribute).is_some_and(|v| !v.is_empty()))
        .map(|(_, key)| key)
        .collect()
    }
}
