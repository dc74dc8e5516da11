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
/// against `system`'s spans but for its own value).
pub fn span_violations(table: &Json, system: &str, spans: &[SpanData]) -> BTreeSet<String> {
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
            if rule["requirement"] == "required" && get(key).is_none() {
                found.insert(format!("{name} ({kind}): required {key} missing"));
            }
        }
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
