//! The test event every suite shares: a HyperFleet cluster reconcile event.

use cloudevents::event::EventBuilderError;
use cloudevents::{Event, EventBuilder, EventBuilderV10};

/// A cluster reconcile event as the Sentinel publishes it: id `event_id`, source
/// `hyperfleet-sentinel`, type `com.redhat.hyperfleet.cluster.reconcile`, JSON data
/// `{id, kind: "Cluster", href, generation: 1}` for cluster `cluster_id`.
pub fn reconcile_event(event_id: &str, cluster_id: &str) -> Result<Event, EventBuilderError> {
    EventBuilderV10::new()
        .id(event_id)
        .source("hyperfleet-sentinel")
        .ty("com.redhat.hyperfleet.cluster.reconcile")
        .data(
            "application/json",
            serde_json::json!({
                "id": cluster_id,
                "kind": "Cluster",
                "href": format!("/api/hyperfleet/v1/clusters/{cluster_id}"),
                "generation": 1,
            }),
        )
        .build()
}
