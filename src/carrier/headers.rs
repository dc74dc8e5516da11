//! An HTTP request's headers as a carrier (the server glue, push deliveries).

use super::TRACEPARENT;
use opentelemetry::propagation::Extractor;

/// A request's headers as a carrier: each value that is text, every value of a repeated header
/// in order (W3C Trace Context combines repeated `tracestate` headers), and no `traceparent`
/// when the request sent more than one (the context is then invalid).
pub(crate) struct RequestHeaders<'a>(pub(crate) &'a http::HeaderMap);

impl Extractor for RequestHeaders<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        let mut values = self.0.get_all(key).iter();
        let first = values.next()?.to_str().ok()?;
        if key.eq_ignore_ascii_case(TRACEPARENT) && values.next().is_some() {
            return None;
        }
        Some(first)
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }

    fn get_all(&self, key: &str) -> Option<Vec<&str>> {
        if key.eq_ignore_ascii_case(TRACEPARENT) {
            return self.get(key).map(|value| vec![value]);
        }
        let values: Vec<&str> = self
            .0
            .get_all(key)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .collect();
        (!values.is_empty()).then_some(values)
    }
}
