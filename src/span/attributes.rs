//! Span attributes: the semantic-convention keys we use and the ones HyperFleet adds.

use cloudevents::event::SpecVersion;
use cloudevents::{AttributesReader, Event};
use opentelemetry::{KeyValue, Value};
pub use opentelemetry_semantic_conventions::attribute::{
    CLOUDEVENTS_EVENT_ID, CLOUDEVENTS_EVENT_SOURCE, CLOUDEVENTS_EVENT_SPEC_VERSION,
    CLOUDEVENTS_EVENT_SUBJECT, CLOUDEVENTS_EVENT_TYPE, ERROR_TYPE, EXCEPTION_MESSAGE,
    EXCEPTION_TYPE, MESSAGING_BATCH_MESSAGE_COUNT, MESSAGING_DESTINATION_NAME,
    MESSAGING_DESTINATION_SUBSCRIPTION_NAME, MESSAGING_GCP_PUBSUB_MESSAGE_DELIVERY_ATTEMPT,
    MESSAGING_GCP_PUBSUB_MESSAGE_ORDERING_KEY, MESSAGING_MESSAGE_ID, MESSAGING_OPERATION_NAME,
    MESSAGING_OPERATION_TYPE, MESSAGING_SYSTEM, SERVER_ADDRESS,
};
pub use opentelemetry_semantic_conventions::attribute::{
    DB_COLLECTION_NAME, DB_OPERATION_NAME, DB_QUERY_SUMMARY, DB_SYSTEM_NAME, HTTP_REQUEST_METHOD,
    HTTP_RESPONSE_STATUS_CODE, HTTP_ROUTE, MESSAGING_MESSAGE_BODY_SIZE, SERVER_PORT, URL_FULL,
    URL_PATH,
};

/// `db.system`: the name the HyperFleet standard asks for. The semantic conventions have
/// since renamed it `db.system.name`.
#[allow(deprecated)]
pub const DB_SYSTEM: &str = opentelemetry_semantic_conventions::attribute::DB_SYSTEM;
use std::sync::{Arc, Mutex};

/// `error.type` of a failure whose kind is not known (the semantic conventions' fallback).
pub(crate) const OTHER_ERROR: &str = "_OTHER";

/// `messaging.system` of Google Cloud Pub/Sub, pulled or pushed.
pub const GCP_PUBSUB: &str = "gcp_pubsub";

/// A hook that derives span attributes from an event.
pub(crate) type AttributeHook = Arc<dyn Fn(&Event) -> Vec<KeyValue> + Send + Sync>;

/// `hyperfleet.cluster_id`: the cluster an operation concerns.
pub const HYPERFLEET_CLUSTER_ID: &str = "hyperfleet.cluster_id";
/// `hyperfleet.resource_type`: `clusters`, `nodepools`, …
pub const HYPERFLEET_RESOURCE_TYPE: &str = "hyperfleet.resource_type";
/// `hyperfleet.resource_id`: the resource an operation concerns.
pub const HYPERFLEET_RESOURCE_ID: &str = "hyperfleet.resource_id";
/// `hyperfleet.adapter`: the adapter type name.
pub const HYPERFLEET_ADAPTER: &str = "hyperfleet.adapter";
/// `hyperfleet.decision_reason`: why the Sentinel published.
pub const HYPERFLEET_DECISION_REASON: &str = "hyperfleet.decision_reason";

/// The attributes every messaging span starts with: `messaging.system`,
/// `messaging.operation.type` and `.name`, `messaging.destination.name`, the subscription on
/// the consumer side, and `server.address` when the transport has one.
///
/// Publishers and subscribers build these once; the names are reference-counted, so each
/// message's spans clone them without allocating.
pub(crate) fn messaging(
    system: &'static str,
    (operation_type, operation_name): (&'static str, &'static str),
    destination: &str,
    subscription: Option<&str>,
    server_address: Option<&str>,
    server_port: Option<u16>,
) -> Vec<KeyValue> {
    let mut attributes = Vec::with_capacity(7);
    attributes.extend([
        KeyValue::new(MESSAGING_SYSTEM, system),
        KeyValue::new(MESSAGING_OPERATION_TYPE, operation_type),
        KeyValue::new(MESSAGING_OPERATION_NAME, operation_name),
        KeyValue::new(MESSAGING_DESTINATION_NAME, shared(destination)),
    ]);
    if let Some(subscription) = subscription {
        attributes.push(KeyValue::new(
            MESSAGING_DESTINATION_SUBSCRIPTION_NAME,
            shared(subscription),
        ));
    }
    if let Some(address) = server_address {
        attributes.push(KeyValue::new(SERVER_ADDRESS, shared(address)));
    }
    if let Some(port) = server_port {
        attributes.push(KeyValue::new(SERVER_PORT, i64::from(port)));
    }
    attributes
}

/// Longest value taken from a message into a span attribute: ids and types are short, and an
/// oversized one must not bloat every span and export batch.
pub const MAX_VALUE_LEN: usize = 256;

/// `value`, cut to at most [`MAX_VALUE_LEN`] bytes on a character boundary.
pub(crate) fn bounded(value: &str) -> String {
    truncated(value).to_owned()
}

fn truncated(value: &str) -> &str {
    if value.len() <= MAX_VALUE_LEN {
        return value;
    }
    let mut end = MAX_VALUE_LEN;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    &value[..end]
}

/// A string attribute value whose clones share one allocation.
fn shared(value: &str) -> Value {
    Value::from(Arc::<str>::from(value))
}

/// [`bounded`], as a value whose clones share one allocation: a message's receive and process
/// spans both carry it.
pub(crate) fn bounded_shared(value: &str) -> Value {
    shared(truncated(value))
}

/// The `cloudevents.*` attributes of an event (never its data), each at most
/// [`MAX_VALUE_LEN`] bytes.
#[cfg(test)]
fn cloudevents(event: &Event) -> Vec<KeyValue> {
    cloudevents_with(
        event,
        bounded(event.source()).into(),
        bounded(event.ty()).into(),
    )
}

fn cloudevents_with(event: &Event, source: Value, ty: Value) -> Vec<KeyValue> {
    let spec_version = match event.specversion() {
        SpecVersion::V03 => "0.3",
        SpecVersion::V10 => "1.0",
    };
    let mut attributes = Vec::with_capacity(5);
    attributes.extend([
        KeyValue::new(CLOUDEVENTS_EVENT_ID, bounded_shared(event.id())),
        KeyValue::new(CLOUDEVENTS_EVENT_SOURCE, source),
        KeyValue::new(CLOUDEVENTS_EVENT_TYPE, ty),
        KeyValue::new(CLOUDEVENTS_EVENT_SPEC_VERSION, spec_version),
    ]);
    if let Some(subject) = event.subject() {
        attributes.push(KeyValue::new(CLOUDEVENTS_EVENT_SUBJECT, bounded(subject)));
    }
    attributes
}

/// [`cloudevents`] for the events of one publisher or subscriber. Their source and type
/// seldom change from one event to the next, so the last of each is kept and shared with the
/// next event's spans instead of copied again.
#[derive(Debug, Default)]
pub(crate) struct EventAttributes {
    source: Recent,
    ty: Recent,
}

impl EventAttributes {
    pub(crate) fn of(&self, event: &Event) -> Vec<KeyValue> {
        cloudevents_with(
            event,
            self.source.value(event.source()),
            self.ty.value(event.ty()),
        )
    }
}

/// The last value of one attribute, bounded.
#[derive(Debug, Default)]
struct Recent(Mutex<Option<Arc<str>>>);

impl Recent {
    fn value(&self, value: &str) -> Value {
        let value = truncated(value);
        let mut last = crate::sync::lock(&self.0);
        match last.as_ref() {
            Some(kept) if **kept == *value => Value::from(Arc::clone(kept)),
            _ => {
                let kept = Arc::<str>::from(value);
                *last = Some(Arc::clone(&kept));
                Value::from(kept)
            }
        }
    }
}

/// The `hyperfleet.*` resource attributes of a HyperFleet reconcile event.
///
/// Reads the identifiers (not the payload) of the data shape the Sentinel publishes,
/// `{id, kind, href, generation}` plus `owner_references` for node pools:
/// `hyperfleet.resource_type` (`clusters`, `nodepools`), `hyperfleet.resource_id`, and
/// `hyperfleet.cluster_id` (the resource itself for a cluster, its owner for a node pool).
/// Other events yield nothing.
pub fn hyperfleet_resource(event: &Event) -> Vec<KeyValue> {
    let Some(cloudevents::Data::Json(data)) = event.data() else {
        return Vec::new();
    };
    fn text<'a>(v: &'a serde_json::Value, key: &str) -> Option<&'a str> {
        v.get(key)?.as_str().map(truncated)
    }
    let (Some(id), Some(kind)) = (text(data, "id"), text(data, "kind")) else {
        return Vec::new();
    };
    let resource_type = match kind {
        "Cluster" => Value::from("clusters"),
        "NodePool" => Value::from("nodepools"),
        other => Value::from(bounded(&format!("{}s", other.to_ascii_lowercase()))),
    };
    let id = shared(id);
    let cluster_id = if kind == "Cluster" {
        Some(id.clone())
    } else {
        data.get("owner_references")
            .filter(|owner| text(owner, "kind") == Some("Cluster"))
            .and_then(|owner| text(owner, "id"))
            .map(shared)
    };
    let mut attributes = Vec::with_capacity(3);
    attributes.extend([
        KeyValue::new(HYPERFLEET_RESOURCE_TYPE, resource_type),
        KeyValue::new(HYPERFLEET_RESOURCE_ID, id),
    ]);
    if let Some(cluster_id) = cluster_id {
        attributes.push(KeyValue::new(HYPERFLEET_CLUSTER_ID, cluster_id));
    }
    attributes
}

#[cfg(test)]
mod tests {
    #[cfg(feature = "pubsub")]
    #[test]
    fn the_pubsub_transport_names_the_system_as_push_does() {
        assert_eq!(crate::transport::pubsub::SYSTEM, super::GCP_PUBSUB);
    }

    use super::*;
    use cloudevents::{EventBuilder, EventBuilderV10};

    fn event(id: &str, source: &str) -> Event {
        EventBuilderV10::new()
            .id(id)
            .source(source)
            .ty("com.redhat.hyperfleet.cluster.reconcile")
            .build()
            .unwrap()
    }

    #[test]
    fn kept_source_and_type_read_like_fresh_ones() {
        let kept = EventAttributes::default();
        let long_source = format!("https://{}", "s".repeat(MAX_VALUE_LEN));
        for e in [
            event("1", "hyperfleet-sentinel"),
            event("2", "hyperfleet-sentinel"),
            event("3", "other-source"),
            event("4", &long_source),
            event("5", "hyperfleet-sentinel"),
        ] {
            assert_eq!(kept.of(&e), cloudevents(&e));
        }
    }
}
