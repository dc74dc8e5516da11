//! Holds spans against the messaging conventions' own model: the table
//! `tests/data/semconv/messaging-v1.44.0.json` that `scripts/semconv-table` derives from
//! semantic-conventions v1.44.0. Each violation is one line naming the span and the rule.

use opentelemetry::Value;
use opentelemetry::trace::SpanKind;
use opentelemetry_sdk::trace::SpanData;
use serde_json::Value as Json;
use std::collections::BTreeSet;

/// The derived table.
pub fn table() -> Json {
    serde_json::from_str(include_str!("../data/semconv/messaging-v1.44.0.json")).unwrap()
}

/// Attribute namespaces the crate documents beside the conventions' registry.
const OWN_PREFIXES: [&str; 2] = ["hyperfleet.", "cloudevents."];

/// The recommended and conditionally required attributes the crate never sets, each with why:
/// the data is not there. Any other one a span lacks is a violation, unless its condition is
/// the message's (see [`condition`]) or the run names it unavailable.
pub const NOT_AVAILABLE: [(&str, &str); 10] = [
    (
        "messaging.destination.template",
        "destinations are fixed names, not templates",
    ),
    (
        "messaging.destination.partition.id",
        "neither Pub/Sub nor RabbitMQ partitions a destination",
    ),
    (
        "messaging.message.conversation_id",
        "a CloudEvent carries no conversation id",
    ),
    (
        "messaging.client.id",
        "neither google-cloud-pubsub nor lapin exposes a client id",
    ),
    (
        "network.peer.address",
        "the client libraries do not expose their sockets' peers",
    ),
    (
        "network.peer.port",
        "the client libraries do not expose their sockets' peers",
    ),
    (
        "messaging.gcp_pubsub.message.ack_id",
        "google-cloud-pubsub keeps it to itself (crate-private); a push request has none",
    ),
    (
        "messaging.gcp_pubsub.message.ack_deadline",
        "the deadline is the subscription's, on the server; the client library extends leases",
    ),
    (
        "messaging.destination.anonymous",
        "required only when true: every destination is named",
    ),
    (
        "messaging.destination.temporary",
        "required only when true: no destination is temporary",
    ),
];

/// Whether an attribute whose requirement has a condition must be on `span` of type `kind`:
/// `Some` when the span itself tells (`error.type` exactly on failed spans, the batch size
/// on a batch send alone, a message id on every span of one message), `None` when it is the
/// message's (an ordering key, a routing key, a delivery attempt the subscription counts).
fn condition(key: &str, span: &SpanData, kind: &str) -> Option<bool> {
    match key {
        "error.type" => Some(matches!(
            span.status,
            opentelemetry::trace::Status::Error { .. }
        )),
        "messaging.batch.message_count" => Some(kind == "send.client"),
        "messaging.message.id" => Some(kind != "send.client"),
        "messaging.gcp_pubsub.message.ordering_key"
        | "messaging.rabbitmq.destination.routing_key"
        | "messaging.gcp_pubsub.message.delivery_attempt" => None,
        _ => Some(true),
    }
}

/// The model's span for an operation type and kind, as `send.producer`.
fn span_type(operation: &str, kind: &SpanKind) -> String {
    let kind = match kind {
        SpanKind::Producer => "producer",
        SpanKind::Consumer => "consumer",
        SpanKind::Client => "client",
        SpanKind::Server => "server",
        SpanKind::Internal => "internal",
    };
    format!("{operation}.{kind}")
}

/// Whether `value` has the registry's `spec` type.
fn typed(spec: &Json, value: &Value) -> bool {
    match (spec["type"].as_str(), value) {
        (Some("string"), Value::String(_)) => true,
        (Some("int"), Value::I64(_)) => true,
        (Some("double"), Value::F64(_)) => true,
        (Some("boolean"), Value::Bool(_)) => true,
        (Some("string[]"), Value::Array(_)) => true,
        // Enums are open where the model says so with `_OTHER` (as `error.type`).
        (Some("enum"), Value::String(s)) => spec["members"].as_array().is_some_and(|members| {
            members
                .iter()
                .any(|m| m.as_str() == Some(s.as_str()) || m.as_str() == Some("_OTHER"))
        }),
        _ => false,
    }
}

/// The violations of every messaging span in `spans` for `system` (`gcp_pubsub` or
/// `rabbitmq`; a `messaging.system` of another value, as the memory transport's, is checked
/// against `system`'s spans but for its own value). `unavailable` names what this run's
/// transport does not have (`server.address` where there is no server).
pub fn span_violations(
    table: &Json,
    system: &str,
    spans: &[SpanData],
    unavailable: &[&str],
) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for span in spans {
        let attributes: Vec<(&str, &Value)> = span
            .attributes
            .iter()
            .map(|kv| (kv.key.as_str(), &kv.value))
            .collect();
        let get = |key: &str| attributes.iter().find(|(k, _)| *k == key).map(|(_, v)| *v);
        if get("messaging.system").is_none() {
            continue;
        }
        let name = span.name.to_string();
        let Some(Value::String(operation)) = get("messaging.operation.type") else {
            found.insert(format!("{name}: no messaging.operation.type"));
            continue;
        };
        let kind = span_type(operation.as_str(), &span.span_kind);
        let Some(spec) = table["spans"][system].get(&kind) else {
            found.insert(format!("{name}: no {kind} span in the conventions"));
            continue;
        };
        let expected = spec["attributes"].as_object().unwrap();
        for (key, rule) in expected {
            let present = get(key).is_some();
            match rule["requirement"].as_str() {
                Some("required") if !present => {
                    found.insert(format!("{name} ({kind}): required {key} missing"));
                }
                Some("recommended" | "conditionally_required") => {
                    let not_set = NOT_AVAILABLE.iter().any(|(k, _)| k == key)
                        || unavailable.contains(&key.as_str());
                    match condition(key, span, &kind) {
                        Some(true) if !present && !not_set => {
                            found.insert(format!(
                                "{name} ({kind}): {key} missing, though the crate has it"
                            ));
                        }
                        Some(false) if present => {
                            found.insert(format!(
                                "{name} ({kind}): {key} set where its condition does not hold"
                            ));
                        }
                        _ => {}
                    }
                }
                _ => {}
            }
        }
        found.extend(event_violations(table, span, operation.as_str(), &name));
        found.extend(link_violations(
            span,
            &kind,
            &name,
            get("messaging.batch.message_count"),
        ));
        for (key, value) in &attributes {
            if OWN_PREFIXES.iter().any(|p| key.starts_with(p)) {
                continue;
            }
            let Some(registered) = table["registry"].get(*key) else {
                found.insert(format!("{name} ({kind}): {key} is outside the registry"));
                continue;
            };
            if !expected.contains_key(*key) {
                found.insert(format!(
                    "{name} ({kind}): {key} is not an attribute of this span"
                ));
            }
            let own_system = *key == "messaging.system";
            if !own_system && !typed(registered, value) {
                found.insert(format!(
                    "{name} ({kind}): {key} = {value:?} is not a {registered}"
                ));
            }
        }
    }
    found
}

/// One exported metric: its name, unit, instrument and each data point's attributes.
pub struct MetricPoints {
    pub name: String,
    pub unit: String,
    pub instrument: &'static str,
    pub points: Vec<Vec<opentelemetry::KeyValue>>,
}

/// What `metrics` exported last, after a flush.
pub fn exported(metrics: &hyperfleet_tracing::testing::TestMetrics) -> Vec<MetricPoints> {
    use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};
    let _ = metrics.provider.force_flush();
    let exported = metrics.exporter.get_finished_metrics().unwrap();
    let Some(latest) = exported.last() else {
        return Vec::new();
    };
    latest
        .scope_metrics()
        .flat_map(|scope| scope.metrics())
        .map(|metric| {
            let (instrument, points) = match metric.data() {
                AggregatedMetrics::U64(MetricData::Sum(sum)) => (
                    "counter",
                    sum.data_points()
                        .map(|p| p.attributes().cloned().collect())
                        .collect(),
                ),
                AggregatedMetrics::F64(MetricData::Histogram(histogram)) => (
                    "histogram",
                    histogram
                        .data_points()
                        .map(|p| p.attributes().cloned().collect())
                        .collect(),
                ),
                _ => ("other", Vec::new()),
            };
            MetricPoints {
                name: metric.name().to_owned(),
                unit: metric.unit().to_owned(),
                instrument,
                points,
            }
        })
        .collect()
}

/// The violations of every messaging metric data point in `metrics` for `system`: a
/// `messaging.*` metric the conventions do not define, a wrong unit or instrument, a required
/// attribute missing, a conditionally required or recommended one missing where the crate has
/// it, an attribute the metric does not have, a wrong type. `unavailable` as for spans.
pub fn metric_violations(
    table: &Json,
    system: &str,
    metrics: &[MetricPoints],
    unavailable: &[&str],
) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for metric in metrics.iter().filter(|m| m.name.starts_with("messaging.")) {
        let name = &metric.name;
        let Some(spec) = table["metrics"].get(name) else {
            found.insert(format!("{name}: not a metric of the conventions"));
            continue;
        };
        if spec["unit"] != metric.unit.as_str() || spec["instrument"] != metric.instrument {
            found.insert(format!(
                "{name}: {} in {:?}, the conventions say {} in {}",
                metric.instrument, metric.unit, spec["instrument"], spec["unit"]
            ));
        }
        let expected = spec["attributes"].as_object().unwrap();
        for point in &metric.points {
            let get = |key: &str| point.iter().find(|kv| kv.key.as_str() == key);
            let operation = get("messaging.operation.name")
                .map(|kv| kv.value.to_string())
                .unwrap_or_default();
            let site = format!("{name}{{{operation}}}");
            for (key, rule) in expected {
                let not_set = NOT_AVAILABLE.iter().any(|(k, _)| k == key)
                    || METRICS_NOT_AVAILABLE.contains(&key.as_str())
                    || unavailable.contains(&key.as_str());
                let wanted = match key.as_str() {
                    "error.type" => false,
                    // On the consumer side; RabbitMQ's destination name takes its queue in.
                    "messaging.destination.subscription.name" => {
                        system == "gcp_pubsub" && !["send", "publish"].contains(&operation.as_str())
                    }
                    _ => !not_set,
                };
                let required = rule["requirement"] == "required";
                if (required || wanted) && get(key).is_none() {
                    found.insert(format!("{site}: {key} missing"));
                }
            }
            for kv in point {
                let key = kv.key.as_str();
                if !expected.contains_key(key) {
                    found.insert(format!("{site}: {key} is not an attribute of this metric"));
                    continue;
                }
                let registered = &table["registry"][key];
                if key != "messaging.system" && !typed(registered, &kv.value) {
                    found.insert(format!(
                        "{site}: {key} = {:?} is not a {registered}",
                        kv.value
                    ));
                }
            }
        }
    }
    found
}

/// Metric attributes the crate never sets, beside [`NOT_AVAILABLE`]: Pub/Sub and RabbitMQ
/// have no consumer groups.
const METRICS_NOT_AVAILABLE: [&str; 1] = ["messaging.consumer.group.name"];

/// A failed span's exception event: `messaging.{operation type}.exception`, with every
/// attribute of it the crate has (the exception's type and message; no stack trace, which
/// errors here do not carry).
fn event_violations(table: &Json, span: &SpanData, operation: &str, name: &str) -> Vec<String> {
    if !matches!(span.status, opentelemetry::trace::Status::Error { .. }) {
        return Vec::new();
    }
    let expected = format!("messaging.{operation}.exception");
    let Some(spec) = table["events"].get(&expected) else {
        return vec![format!("{name}: no {expected} event in the conventions")];
    };
    let Some(event) = span.events.iter().find(|e| e.name == expected.as_str()) else {
        return vec![format!("{name}: failed without a {expected} event")];
    };
    spec["attributes"]
        .as_object()
        .unwrap()
        .keys()
        .filter(|key| key.as_str() != "exception.stacktrace")
        .filter(|key| {
            !event
                .attributes
                .iter()
                .any(|kv| kv.key.as_str() == key.as_str())
        })
        .map(|key| format!("{name}: its {expected} event has no {key}"))
        .collect()
}

/// Links where the conventions ask for them: a batch send links the creation context of each
/// of its messages; a receive span links its message's creation context, even when that is its
/// parent; a settle span (which the conventions let link) links the receive span of what it
/// settles.
fn link_violations(span: &SpanData, kind: &str, name: &str, count: Option<&Value>) -> Vec<String> {
    let links = span.links.len();
    let parent = span.parent_span_id;
    match (kind, count) {
        ("receive.client", _)
            if parent != opentelemetry::trace::SpanId::INVALID
                && !span
                    .links
                    .iter()
                    .any(|l| l.span_context.span_id() == parent) =>
        {
            vec![format!(
                "{name}: does not link its message's creation context"
            )]
        }
        ("send.client", Some(Value::I64(count))) if links as i64 != *count => vec![format!(
            "{name}: a batch of {count} links {links} creation contexts"
        )],
        ("settle.client", _) if links == 0 => {
            vec![format!("{name}: links no receive span")]
        }
        _ => Vec::new(),
    }
}
