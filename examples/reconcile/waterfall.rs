//! Each trace as a waterfall: one row per span with service, name, kind, start offset and a
//! duration bar, indented by parentage. Also a JSON dump of the spans for tests.

use opentelemetry::trace::SpanId;
use opentelemetry_sdk::trace::SpanData;
use serde_json::json;
use std::collections::BTreeMap;
use std::time::SystemTime;

/// A finished span and the service that recorded it.
pub struct ServiceSpan {
    pub service: String,
    pub span: SpanData,
}

const BAR_WIDTH: usize = 40;

pub fn print(spans: &[ServiceSpan]) {
    let mut traces: BTreeMap<String, Vec<&ServiceSpan>> = BTreeMap::new();
    for s in spans {
        traces
            .entry(s.span.span_context.trace_id().to_string())
            .or_default()
            .push(s);
    }
    for (trace_id, mut spans) in traces {
        spans.sort_by_key(|s| s.span.start_time);
        let start = spans
            .iter()
            .map(|s| s.span.start_time)
            .min()
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let end = spans.iter().map(|s| s.span.end_time).max().unwrap_or(start);
        let total = end
            .duration_since(start)
            .unwrap_or_default()
            .as_secs_f64()
            .max(1e-9);
        println!(
            "\ntrace {trace_id}: {} spans, {:.1} ms",
            spans.len(),
            total * 1e3
        );
        println!(
            "{:<31} {:<46} {:<9} {:>8}  waterfall",
            "service", "span", "kind", "start ms"
        );
        let ids: Vec<SpanId> = spans
            .iter()
            .map(|s| s.span.span_context.span_id())
            .collect();
        for root in spans
            .iter()
            .filter(|s| !ids.contains(&s.span.parent_span_id))
        {
            row(root, &spans, 0, start, total);
        }
    }
}

fn row(span: &ServiceSpan, spans: &[&ServiceSpan], depth: usize, start: SystemTime, total: f64) {
    let offset = span
        .span
        .start_time
        .duration_since(start)
        .unwrap_or_default()
        .as_secs_f64();
    let length = span
        .span
        .end_time
        .duration_since(span.span.start_time)
        .unwrap_or_default()
        .as_secs_f64();
    let from = ((offset / total) * BAR_WIDTH as f64) as usize;
    let width = (((length / total) * BAR_WIDTH as f64).ceil() as usize)
        .clamp(1, BAR_WIDTH - from.min(BAR_WIDTH - 1));
    let bar = format!(
        "{}{}",
        " ".repeat(from.min(BAR_WIDTH - 1)),
        "█".repeat(width)
    );
    let name = format!("{}{}", "  ".repeat(depth), span.span.name);
    println!(
        "{:<31} {:<46} {:<9} {:>8.2}  |{bar:<BAR_WIDTH$}| {:.2} ms",
        span.service,
        name,
        format!("{:?}", span.span.span_kind),
        offset * 1e3,
        length * 1e3
    );
    for child in spans
        .iter()
        .filter(|s| s.span.parent_span_id == span.span.span_context.span_id())
    {
        row(child, spans, depth + 1, start, total);
    }
}

/// The spans as JSON, for `HYPERFLEET_RECONCILE_SPANS_JSON`.
pub fn to_json(spans: &[ServiceSpan]) -> serde_json::Value {
    serde_json::Value::Array(
        spans
            .iter()
            .map(|s| {
                let attributes: serde_json::Map<String, serde_json::Value> = s
                    .span
                    .attributes
                    .iter()
                    .map(|kv| (kv.key.to_string(), json!(kv.value.as_str())))
                    .collect();
                json!({
                    "service": s.service,
                    "name": s.span.name,
                    "kind": format!("{:?}", s.span.span_kind),
                    "trace_id": s.span.span_context.trace_id().to_string(),
                    "span_id": s.span.span_context.span_id().to_string(),
                    "parent_span_id": s.span.parent_span_id.to_string(),
                    "error": matches!(s.span.status, opentelemetry::trace::Status::Error { .. }),
                    "attributes": attributes,
                })
            })
            .collect(),
    )
}
