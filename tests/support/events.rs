//! Test events.

#[cfg(feature = "testing")]
use cloudevents::Event;

/// A Sentinel cluster reconcile event whose event id and cluster id are `id`.
#[cfg(feature = "testing")]
pub fn reconcile_event(id: &str) -> Event {
    hyperfleet_tracing::testing::reconcile_event(id, id).expect("a valid event")
}
