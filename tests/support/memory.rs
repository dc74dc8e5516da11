//! The in-memory Pub/Sub set up for a test, and a subscriber run for a number of deliveries.

#[cfg(feature = "testing")]
use hyperfleet_tracing::transport::SubscriptionConfig;
use hyperfleet_tracing::transport::Transport;
#[cfg(feature = "testing")]
use hyperfleet_tracing::transport::memory::MemoryTransport;
use hyperfleet_tracing::{HandlerError, Received, TracedSubscriber};

/// A memory transport with `topic` and `subscription` on it.
#[cfg(feature = "testing")]
pub fn with_subscription(topic: &str, subscription: &str) -> MemoryTransport {
    let config = SubscriptionConfig::default();
    subscribed(MemoryTransport::new(), topic, subscription, config)
}

/// `transport` with `topic` and `subscription` on it, configured by `config`.
#[cfg(feature = "testing")]
pub fn subscribed(
    transport: MemoryTransport,
    topic: &str,
    subscription: &str,
    config: SubscriptionConfig,
) -> MemoryTransport {
    transport.create_topic(topic).unwrap();
    transport
        .create_subscription(subscription, topic, config)
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

/// What [`gated_run`] saw.
pub struct Gated {
    /// Most handlers in flight at once.
    pub peak: usize,
    /// The task each handler ran on.
    pub tasks: Vec<Option<tokio::task::Id>>,
    /// The task the subscriber loop ran on.
    pub loop_task: tokio::task::Id,
}

/// Runs `subscriber` at concurrency `limit` over `n` waiting messages, each handler held at a
/// gate: once `limit` are in, one is let through at a time, and each time the next must get in.
pub async fn gated_run<T: Transport + 'static>(
    subscriber: TracedSubscriber<T>,
    n: usize,
    limit: usize,
) -> Gated {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use tokio::sync::{Semaphore, mpsc};
    let running = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let tasks = Arc::new(Mutex::new(Vec::new()));
    let gate = Arc::new(Semaphore::new(0));
    let (done_tx, mut done) = mpsc::unbounded_channel::<()>();
    let (entered_tx, mut entered) = mpsc::unbounded_channel::<()>();
    let handler = {
        let (running, peak, tasks, gate) =
            (running.clone(), peak.clone(), tasks.clone(), gate.clone());
        move |_: Received| {
            let (running, peak, tasks, gate) =
                (running.clone(), peak.clone(), tasks.clone(), gate.clone());
            let (done, entered) = (done_tx.clone(), entered_tx.clone());
            async move {
                tasks.lock().unwrap().push(tokio::task::try_id());
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                let _ = entered.send(());
                let _permit = gate.acquire().await;
                running.fetch_sub(1, Ordering::SeqCst);
                let _ = done.send(());
                Ok::<(), HandlerError>(())
            }
        }
    };
    let shutdown = async move {
        for _ in 0..n {
            done.recv().await;
        }
    };
    let run = tokio::spawn(subscriber.concurrency(limit).run(handler, shutdown));
    for _ in 0..limit {
        entered.recv().await.unwrap();
    }
    for _ in limit..n {
        gate.add_permits(1);
        entered.recv().await.unwrap();
    }
    gate.add_permits(limit);
    let loop_task = run.id();
    run.await.unwrap().unwrap();
    let tasks = tasks.lock().unwrap().clone();
    Gated {
        peak: peak.load(Ordering::SeqCst),
        tasks,
        loop_task,
    }
}
