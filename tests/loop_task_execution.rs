//! Handlers run on the subscriber loop's own task (`Execution::LoopTask`): concurrently up to
//! the bound, in order per ordering key, and with every settlement promise of the default,
//! through panics, failures and a shutdown that gives up on a hung handler; and where the
//! default (`Execution::Auto`) runs them on each kind of runtime.

mod support;

use cloudevents::AttributesReader;
use hyperfleet_tracing::Settings;
use hyperfleet_tracing::settings::Execution;
use hyperfleet_tracing::testing::TestTelemetry;
use hyperfleet_tracing::testing::spans::named;
use hyperfleet_tracing::transport::SubscriptionConfig;
use hyperfleet_tracing::transport::memory::MemoryTransport;
use hyperfleet_tracing::{HandlerError, PublishOptions, Received};
use hyperfleet_tracing::{TracedPublisher, TracedSubscriber};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

const TOPIC: &str = "hyperfleet-clusters";
const SUBSCRIPTION: &str = "validation";
const ACK_DEADLINE: Duration = Duration::from_secs(10);

fn setup() -> (MemoryTransport, TestTelemetry) {
    let config = SubscriptionConfig::default().ack_deadline(ACK_DEADLINE);
    let transport =
        support::memory::subscribed(MemoryTransport::new(), TOPIC, SUBSCRIPTION, config);
    (transport, TestTelemetry::new())
}

/// Publishes `c0` … `c{n-1}`, with `key` as their ordering key when there is one.
async fn publish(transport: &MemoryTransport, telemetry: &TestTelemetry, n: usize, key: &str) {
    let publisher = TracedPublisher::new(transport.clone(), TOPIC)
        .settings(Settings::new().tracer_provider(&telemetry.provider));
    for i in 0..n {
        let options = match key {
            "" => PublishOptions::new(),
            key => PublishOptions::new().ordering_key(key),
        };
        let event = support::events::reconcile_event(&format!("c{i}"));
        publisher.publish_with(event, options).await.unwrap();
    }
}

fn subscriber(
    transport: &MemoryTransport,
    telemetry: &TestTelemetry,
) -> TracedSubscriber<MemoryTransport> {
    TracedSubscriber::new(transport.clone(), SUBSCRIPTION, TOPIC)
        .settings(Settings::new().tracer_provider(&telemetry.provider))
        .execution(Execution::LoopTask)
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handlers_run_on_the_loops_task_concurrently_up_to_the_bound() {
    let (transport, telemetry) = setup();
    publish(&transport, &telemetry, 6, "").await;
    let subscriber = subscriber(&transport, &telemetry);
    let support::memory::Gated {
        peak,
        tasks,
        loop_task,
    } = support::memory::gated_run(subscriber, 6, 2).await;
    assert_eq!(peak, 2, "peak concurrency");
    assert_eq!(tasks.len(), 6);
    assert!(
        tasks.iter().all(|task| *task == Some(loop_task)),
        "a handler ran outside the loop's task: {tasks:?}, loop {loop_task:?}"
    );
    assert_eq!(transport.backlog(SUBSCRIPTION).unwrap(), 0);
}

/// The default subscriber, which leaves `Execution` alone.
fn default_subscriber(
    transport: &MemoryTransport,
    telemetry: &TestTelemetry,
) -> TracedSubscriber<MemoryTransport> {
    TracedSubscriber::new(transport.clone(), SUBSCRIPTION, TOPIC)
        .settings(Settings::new().tracer_provider(&telemetry.provider))
}

#[tokio::test(flavor = "current_thread")]
async fn by_default_handlers_run_on_the_loops_task_on_a_current_thread_runtime() {
    let (transport, telemetry) = setup();
    publish(&transport, &telemetry, 4, "").await;
    let gated = support::memory::gated_run(default_subscriber(&transport, &telemetry), 4, 2).await;
    assert_eq!(gated.peak, 2, "peak concurrency");
    assert!(
        gated
            .tasks
            .iter()
            .all(|task| *task == Some(gated.loop_task)),
        "a handler ran outside the loop's task: {:?}, loop {:?}",
        gated.tasks,
        gated.loop_task
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_default_each_handler_has_a_task_of_its_own_on_a_multi_threaded_runtime() {
    let (transport, telemetry) = setup();
    publish(&transport, &telemetry, 4, "").await;
    let gated = support::memory::gated_run(default_subscriber(&transport, &telemetry), 4, 2).await;
    assert_eq!(gated.peak, 2, "peak concurrency");
    let distinct: std::collections::HashSet<_> = gated.tasks.iter().collect();
    assert_eq!(distinct.len(), 4, "one task per handler: {:?}", gated.tasks);
    assert!(!gated.tasks.contains(&Some(gated.loop_task)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ordering_keys_deliveries_run_one_after_another_and_go_back_behind_a_failure() {
    // Without ordering on the subscription all five are handed out at once.
    let (transport, telemetry) = setup();
    publish(&transport, &telemetry, 5, "cluster-1").await;
    let calls = Arc::new(Mutex::new(Vec::new()));
    let running = Arc::new(AtomicUsize::new(0));
    let overlapped = Arc::new(AtomicUsize::new(0));
    // c0 fails once, so c1 … c4 go back behind it: 1 + 5 calls.
    let (tx, shutdown) = after(6);
    let leases = transport.clone();
    let handler = {
        let (calls, running, overlapped) = (calls.clone(), running.clone(), overlapped.clone());
        move |received: Received| {
            let first = {
                let mut calls = calls.lock().unwrap();
                calls.push((received.event.id().to_owned(), received.delivery_attempt));
                calls.len() == 1
            };
            let (running, overlapped, tx, leases) = (
                running.clone(),
                overlapped.clone(),
                tx.clone(),
                leases.clone(),
            );
            async move {
                if running.fetch_add(1, Ordering::SeqCst) > 0 {
                    overlapped.fetch_add(1, Ordering::SeqCst);
                }
                if first {
                    // Fail once the rest of the key waits behind this delivery.
                    while leases.outstanding(SUBSCRIPTION).unwrap() < 5 {
                        tokio::task::yield_now().await;
                    }
                }
                tokio::task::yield_now().await;
                running.fetch_sub(1, Ordering::SeqCst);
                let _ = tx.send(());
                match first {
                    true => Err::<(), HandlerError>("first attempt fails".into()),
                    false => Ok(()),
                }
            }
        }
    };
    subscriber(&transport, &telemetry)
        .concurrency(4)
        .run(handler, shutdown)
        .await
        .unwrap();
    let calls = calls.lock().unwrap().clone();
    let mut expected = vec![("c0".to_owned(), Some(1))];
    expected.extend((0..5).map(|i| (format!("c{i}"), Some(2))));
    assert_eq!(calls, expected, "the key's order after the failure");
    assert_eq!(
        overlapped.load(Ordering::SeqCst),
        0,
        "two handlers of one key overlapped"
    );
    assert_eq!(transport.backlog(SUBSCRIPTION).unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_handler_is_recorded_and_nacked_and_the_others_go_on() {
    let (transport, telemetry) = setup();
    publish(&transport, &telemetry, 4, "").await;
    let attempts = Arc::new(Mutex::new(HashMap::<String, Vec<Option<u32>>>::new()));
    // c1 panics while it is called, c2 inside its future; both come back once: 4 + 2 calls.
    let (tx, shutdown) = after(6);
    let handler = {
        let attempts = attempts.clone();
        move |received: Received| {
            let id = received.event.id().to_owned();
            let attempt = received.delivery_attempt;
            attempts
                .lock()
                .unwrap()
                .entry(id.clone())
                .or_default()
                .push(attempt);
            let _ = tx.send(());
            if id == "c1" && attempt == Some(1) {
                panic!("handler panics when called");
            }
            async move {
                tokio::task::yield_now().await;
                if id == "c2" && attempt == Some(1) {
                    panic!("handler panics while it runs");
                }
                Ok::<(), HandlerError>(())
            }
        }
    };
    subscriber(&transport, &telemetry)
        .concurrency(4)
        .run(handler, shutdown)
        .await
        .unwrap();
    let attempts = attempts.lock().unwrap().clone();
    for (id, expected) in [
        ("c0", vec![Some(1)]),
        ("c1", vec![Some(1), Some(2)]),
        ("c2", vec![Some(1), Some(2)]),
        ("c3", vec![Some(1)]),
    ] {
        assert_eq!(attempts.get(id), Some(&expected), "attempts of {id}");
    }
    assert_eq!(transport.backlog(SUBSCRIPTION).unwrap(), 0);
    let failed = named(&telemetry.spans(), "adapter.process")
        .into_iter()
        .filter(|span| matches!(span.status, opentelemetry::trace::Status::Error { .. }))
        .count();
    assert_eq!(failed, 2, "process spans recorded as failed");
}

#[tokio::test(start_paused = true)]
async fn shutdown_drops_a_hung_handler_at_its_timeout_and_its_message_comes_back_at_once() {
    let (transport, telemetry) = setup();
    publish(&transport, &telemetry, 2, "").await;
    let (tx, shutdown) = after(2);
    let timeout = Duration::from_secs(5);
    let started = tokio::time::Instant::now();
    subscriber(&transport, &telemetry)
        .concurrency(2)
        .shutdown_timeout(timeout)
        .run(
            move |received: Received| {
                let _ = tx.send(());
                let hangs = received.event.id() == "c0";
                async move {
                    if hangs {
                        std::future::pending::<()>().await;
                    }
                    Ok::<(), HandlerError>(())
                }
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
    // c1 was acked; c0 was nacked, not lost: the next subscriber gets it at once.
    assert_eq!(transport.backlog(SUBSCRIPTION).unwrap(), 1);
    let attempt = support::memory::ack_redelivered_at_once(&transport, SUBSCRIPTION).await;
    assert_eq!(attempt, Some(2));
    assert_eq!(transport.backlog(SUBSCRIPTION).unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_message_of_a_burst_is_handled_and_acked() {
    let (transport, telemetry) = setup();
    let n = 300;
    publish(&transport, &telemetry, n, "").await;
    let seen = Arc::new(Mutex::new(HashMap::<String, usize>::new()));
    let (tx, shutdown) = after(n);
    let handler = {
        let seen = seen.clone();
        move |received: Received| {
            *seen
                .lock()
                .unwrap()
                .entry(received.event.id().to_owned())
                .or_default() += 1;
            let tx = tx.clone();
            async move {
                tokio::task::yield_now().await;
                let _ = tx.send(());
                Ok::<(), HandlerError>(())
            }
        }
    };
    subscriber(&transport, &telemetry)
        .concurrency(16)
        .run(handler, shutdown)
        .await
        .unwrap();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), n, "distinct messages handled");
    assert!(
        seen.values().all(|&calls| calls == 1),
        "a message was handled twice"
    );
    assert_eq!(transport.backlog(SUBSCRIPTION).unwrap(), 0);
}
