//! Test events.

use cloudevents::{Event, EventBuilder, EventBuilderV10};

/// A Sentinel cluster reconcile event whose cluster id is `id`.
pub fn reconcile_event(id: &str) -> Event {
    EventBuilderV10::new()
        .id(id)
        .source("hyperfleet-sentinel")
        .ty("com.redhat.hyperfleet.cluster.reconcile")
        .data(
            "application/json",
            serde_json::json!({"id": id, "kind": "Cluster", "generation": 1}),
        )
        .build()
        .expect("a valid event")
}
