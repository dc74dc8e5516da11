//! What happens to a message whose handler hangs: past the ack deadline and its maximum lease,
//! and at shutdown.
//! (A handler that panics or fails is covered by the conformance suite's
//! `handler_panic_is_caught` and `handler_error_nacks_and_redelivers`.)

mod support;

use cloudevents::AttributesReader;
use hyperfleet_tracing::Settings;
use hyperfleet_tracing::testing::TestTelemetry;
use hyperfleet_tracing::testing::spans::named;
use hyperfleet_tracing::transport::SubscriptionConfig;
use hyperfleet_tracing::transport::memory::MemoryTransport;
use hyperfleet_tracing::{HandlerError, Received};
use hyperfleet_tracing::{TracedPublisher, TracedSubscriber};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;

const TOPIC: &str = "hyperfleet-clusters";
const SUBSCRIPTION: &str = "validation";
const ACK_DEADLINE: Duration = Duration::from_secs(10);
const MAX_LEASE: Duration = Duration::from_secs(120);

async fn setup() -> (MemoryTransport, TestTelemetry) {
    let config = SubscriptionConfig::default().ack_deadline(ACK_DEADLINE);
    let leased = MemoryTransport::with_max_lease(MAX_LEASE);
    let transport = support::memory::subscribed(leased, TOPIC, SUBSCRIPTION, config);
    let telemetry = TestTelemetry::new();
    TracedPublisher::new(transport.clone(), TOPIC)
        .settings(Settings::new().tracer_provider(&telemetry.provider))
        .publish(support::events::reconcile_event("c1"))
        .await
        .unwrap();
    (transport, telemetry)
}

/// A signal that completes after `n` sends.
fn after(n: usize) -> (mpsc::UnboundedSender<()>, impl Future<Output = ()>) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    (tx, async move {
        for _ in 0..n {
            rx.recv().await;
        }
    })
}

#[tokio::test(start_paused = true)]
async fn a_handler_past_its_maximum_lease_sees_its_message_again_and_its_late_ack_is_ignored() {
    let (transport, telemetry) = setup().await;
    let calls = Arc::new(Mutex::new(Vec::new()));
    let release = Arc::new(Notify::new());
    let (tx, shutdown) = after(2);
    let (seen, gate) = (Arc::clone(&calls), Arc::clone(&release));
    let started = Instant::now();
    TracedSubscriber::new(transport.clone(), SUBSCRIPTION, TOPIC)
        .settings(Settings::new().tracer_provider(&telemetry.provider))
        .run(
            move |received: Received| {
                let attempt = received.delivery_attempt;
                seen.lock().unwrap().push((
                    received.event.id().to_owned(),
                    attempt,
                    started.elapsed(),
                ));
                let (gate, tx) = (Arc::clone(&gate), tx.clone());
                async move {
                    if attempt == Some(1) {
                        // Hang until the redelivery has been handled.
                        gate.notified().await;
                    } else {
                        gate.notify_one();
                    }
                    let _ = tx.send(());
                    Ok::<(), HandlerError>(())
                }
            },
            shutdown,
        )
        .await
        .unwrap();

    let calls = calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_eq!((calls[0].0.as_str(), calls[0].1), ("c1", Some(1)));
    assert_eq!((calls[1].0.as_str(), calls[1].1), ("c1", Some(2)));
    // The lease was extended past the ack deadline while the handler held the message.
    assert!(
        calls[1].2 >= MAX_LEASE,
        "redelivered after {:?}, before the maximum lease",
        calls[1].2
    );
    // The redelivery's ack settled the message; the hung handler's late ack changed nothing.
    assert_eq!(transport.backlog(SUBSCRIPTION).unwrap(), 0);
    assert_eq!(
        named(&telemetry.spans(), "hyperfleet-clusters receive").len(),
        2
    );
}

#[tokio::test(start_paused = true)]
async fn shutdown_drops_a_hung_handler_after_its_timeout_and_the_message_comes_back() {
    let (transport, telemetry) = setup().await;
    let (tx, shutdown) = after(1);
    let timeout = Duration::from_secs(5);
    let started = Instant::now();
    TracedSubscriber::new(transport.clone(), SUBSCRIPTION, TOPIC)
        .settings(Settings::new().tracer_provider(&telemetry.provider))
        .shutdown_timeout(timeout)
        .run(
            move |_: Received| {
                let _ = tx.send(());
                // Never finishes.
                std::future::pending::<Result<(), HandlerError>>()
            },
            shutdown,
        )
        .await
        .unwrap();
    let waited = started.elapsed();
    assert!(
        waited >= timeout && waited < ACK_DEADLINE,
        "shutdown took {waited:?}"
    );

    // Nacked, not lost: the next subscriber gets it at once, as a second attempt.
    let attempt = support::memory::ack_redelivered_at_once(&transport, SUBSCRIPTION).await;
    assert_eq!(attempt, Some(2));
    assert_eq!(transport.backlog(SUBSCRIPTION).unwrap(), 0);
}

#[tokio::test(start_paused = true)]
async fn shutdown_waits_for_a_slow_handler_within_its_timeout() {
    let (transport, telemetry) = setup().await;
    let (tx, shutdown) = after(1);
    let work = Duration::from_secs(3);
    TracedSubscriber::new(transport.clone(), SUBSCRIPTION, TOPIC)
        .settings(Settings::new().tracer_provider(&telemetry.provider))
        .shutdown_timeout(Duration::from_secs(5))
        .run(
            move |_: Received| {
                let _ = tx.send(());
                async move {
                    tokio::time::sleep(work).await;
                    Ok::<(), HandlerError>(())
                }
            },
            shutdown,
        )
        .await
        .unwrap();
    assert_eq!(
        transport.backlog(SUBSCRIPTION).unwrap(),
        0,
        "the slow handler finished and acked during shutdown"
    );
}
