//! On Google's emulator: a message over Pub/Sub's limits is refused alone, and the good
//! messages batched with it are published.

mod support;

use cloudevents::AttributesReader;
use hyperfleet_tracing::binding::Encoding;
use hyperfleet_tracing::transport::{ErrorCode, SubscriptionConfig};
use hyperfleet_tracing::{HandlerError, PublishError, Received, TracedPublisher, TracedSubscriber};
use std::sync::{Arc, Mutex};
use support::events::reconcile_event;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_oversized_message_never_fails_the_good_ones_batched_with_it() {
    let emulated = support::emulator::with_subscription(
        "hyperfleet-limits",
        "limits",
        &SubscriptionConfig::default(),
    )
    .await;
    let (transport, topic, subscription) = (
        emulated.transport.clone(),
        emulated.topic.clone(),
        emulated.subscription.clone(),
    );
    let publisher = TracedPublisher::new(transport.clone(), &topic).encoding(Encoding::Binary);
    let mut oversized = reconcile_event("too-big");
    oversized.set_extension("note", "n".repeat(2000));
    let results = publisher
        .publish_batch(vec![
            reconcile_event("good-1"),
            oversized,
            reconcile_event("good-2"),
        ])
        .await;
    assert!(results[0].is_ok() && results[2].is_ok(), "{results:?}");
    assert!(
        matches!(&results[1], Err(PublishError::Transport(e)) if e.code() == ErrorCode::InvalidArgument),
        "{:?}",
        results[1]
    );
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&seen);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    TracedSubscriber::new(transport, &subscription, &topic)
        .run(
            move |received: Received| {
                record.lock().unwrap().push(received.event.id().to_owned());
                let _ = tx.send(());
                async { Ok::<(), HandlerError>(()) }
            },
            async move {
                for _ in 0..2 {
                    rx.recv().await;
                }
            },
        )
        .await
        .unwrap();
    let mut seen = seen.lock().unwrap().clone();
    seen.sort();
    assert_eq!(seen, ["good-1", "good-2"]);
}
