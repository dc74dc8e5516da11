//! An HTTP request's headers as a carrier (the server glue, push deliveries).

use super::TRACEPARENT;
use opentelemetry::propagation::Extractor;

/// A request's headers as a carrier: every value of a repeated header in order (W3C Trace
/// Context combines repeated `tracestate` headers), none when one of them is not text, and no
/// `traceparent` when the request sent more than one (the context is then invalid).
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
        // A value that is not text makes the whole list unreadable, as a header the carrier
        // cannot read would (W3C: an invalid `tracestate` is discarded).
        let values: Option<Vec<&str>> = self
            .0
            .get_all(key)
            .iter()
            .map(|value| value.to_str().ok())
            .collect();
        values.filter(|values| !values.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tracestate_value_that_is_not_text_makes_the_list_unreadable() {
        let mut headers = http::HeaderMap::new();
        headers.append("tracestate", http::HeaderValue::from_static("a=1"));
        headers.append(
            "tracestate",
            http::HeaderValue::from_bytes(b"b=\xff").expect("opaque bytes are a header value"),
        );
        assert_eq!(RequestHeaders(&headers).get_all("tracestate"), None);
        headers.remove("tracestate");
        headers.append("tracestate", http::HeaderValue::from_static("a=1"));
        headers.append("tracestate", http::HeaderValue::from_static("b=2"));
        assert_eq!(
            RequestHeaders(&headers).get_all("tracestate"),
            Some(vec!["a=1", "b=2"])
        );
    }
}
