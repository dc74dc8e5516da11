//! Helpers for asserting on exported spans.

use opentelemetry::Value;
use opentelemetry::trace::SpanId;
use opentelemetry_sdk::trace::SpanData;

/// The value of attribute `key` on `span`.
pub fn attribute<'a>(span: &'a SpanData, key: &str) -> Option<&'a Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| &kv.value)
}

/// The value of attribute `key` on `span` as a string.
pub fn attribute_str(span: &SpanData, key: &str) -> Option<String> {
    attribute(span, key).map(|v| v.as_str().into_owned())
}

/// The spans called `name`.
pub fn named<'a>(spans: &'a [SpanData], name: &str) -> Vec<&'a SpanData> {
    spans.iter().filter(|s| s.name == name).collect()
}

/// The one span called `name`, or an error saying how many there were.
pub fn single<'a>(spans: &'a [SpanData], name: &str) -> Result<&'a SpanData, String> {
    match named(spans, name).as_slice() {
        [one] => Ok(one),
        found => Err(format!(
            "expected one span named {name:?}, found {}; spans: {:?}",
            found.len(),
            spans.iter().map(|s| s.name.as_ref()).collect::<Vec<_>>()
        )),
    }
}

/// The spans whose parent is `parent`.
pub fn children_of<'a>(spans: &'a [SpanData], parent: &SpanData) -> Vec<&'a SpanData> {
    spans
        .iter()
        .filter(|s| {
            s.parent_span_id == parent.span_context.span_id()
                && s.span_context.trace_id() == parent.span_context.trace_id()
        })
        .collect()
}

/// Whether `span` starts a trace.
pub fn is_root(span: &SpanData) -> bool {
    span.parent_span_id == SpanId::INVALID
}

/// Every piece of text `span` carries: its name, its attribute values, its events' names and
/// attribute values, its links' attribute values, and its status description, each with
/// where it was found.
pub fn texts(span: &SpanData) -> Vec<(String, String)> {
    let mut texts = vec![("name".to_owned(), span.name.to_string())];
    let values = |place: &str, attributes: &[opentelemetry::KeyValue]| {
        attributes
            .iter()
            .map(|kv| {
                (
                    format!("{place} {}", kv.key),
                    kv.value.as_str().into_owned(),
                )
            })
            .collect::<Vec<_>>()
    };
    texts.extend(values("attribute", &span.attributes));
    for event in span.events.iter() {
        texts.push(("event name".to_owned(), event.name.to_string()));
        texts.extend(values(&format!("event {}", event.name), &event.attributes));
    }
    for link in span.links.iter() {
        texts.extend(values("link", &link.attributes));
    }
    if let opentelemetry::trace::Status::Error { description } = &span.status {
        texts.push(("status".to_owned(), description.to_string()));
    }
    texts
}

/// The pieces of text on `span` ([`texts`]) longer than `limit` bytes, described.
pub fn oversized(span: &SpanData, limit: usize) -> Vec<String> {
    texts(span)
        .into_iter()
        .filter(|(_, text)| text.len() > limit)
        .map(|(place, text)| format!("{}: {place} has {} bytes", span.name, text.len()))
        .collect()
}
