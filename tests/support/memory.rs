//! The in-memory Pub/Sub set up for a test, and a subscriber run for a number of deliveries.

#[cfg(feature = "testing")]
use hyperfleet_tracing::transport::SubscriptionConfig;
#[cfg(feature = "testing")]
use hyperfleet_tracing::transport::memory::MemoryTransport;
use hyperfleet_tracing::{HandlerError, Received, TracedSubscriber, Transport};

/// A memory transport with `topic` and `subscription` on it.
#[cfg(feature = "testing")]
pub fn with_subscription(topic: &str, subscription: &str) -> MemoryTransport {
    let transport = MemoryTransport::new();
    transport.create_topic(topic).unwrap();
    transport
        .create_subscription(subscription, topic, SubscriptionConfig::default())
        .unwrap();
    transport
}

/// Runs `subscriber` until its handler was called `calls` times, each call answered by
/// `result` from the event id; then shuts it down gracefully.
pub async fn handle<T, F>(subscriber: TracedSubscriber<T>, calls: usize, result: F)
where
    T: Transport,
    F: Fn(&str) -> Result<(), HandlerError> + Send + Sync + 'static,
{
    use cloudevents::AttributesReader as _;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    subscriber
        .run(
            move |received: Received| {
                let outcome = result(received.event.id());
                let _ = tx.send(());
                async move { outcome }
            },
            async move {
                for _ in 0..calls {
                    rx.recv().await;
                }
            },
        )
        .await
        .unwrap();
}

/// Takes the next delivery of `subscription` from a new stream, which must come at once (a
/// nacked message, not one back after its ack deadline), and acks it; returns its attempt.
#[cfg(feature = "testing")]
pub async fn ack_redelivered_at_once(
    transport: &MemoryTransport,
    subscription: &str,
) -> Option<u32> {
    let mut stream = transport.subscribe(subscription).await.unwrap();
    let next = futures::StreamExt::next(&mut stream);
    let delivery = tokio::time::timeout(std::time::Duration::from_millis(1), next)
        .await
        .expect("redelivered at once, not after the ack deadline")
        .unwrap()
        .unwrap();
    let attempt = delivery.delivery_attempt;
    delivery.ack().await.unwrap();
    attempt
}
