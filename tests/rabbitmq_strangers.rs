//! RabbitMQ deliveries that are not settled the ordinary way: a delivery dropped unsettled (a
//! run aborted, a panic outside the handler) goes back to the queue at once rather than holding
//! its prefetch slot until the channel closes.

mod support;

use futures::StreamExt;
use hyperfleet_tracing::binding::{self, Encoding};
use hyperfleet_tracing::transport::Transport;
use hyperfleet_tracing::transport::rabbitmq::{RabbitMqConfig, RabbitMqTransport};
use std::time::Duration;
use support::rabbitmq::RabbitNode;

const TOPIC: &str = "hyperfleet-clusters";

/// A private node, a transport on it with `config`, and hyperfleet-broker's topology: the
/// topic's exchange and the classic queue of `subscription`, whose name is returned.
async fn classic_queue(
    config: impl FnOnce(RabbitMqConfig) -> RabbitMqConfig,
    subscription: &str,
) -> (RabbitNode, RabbitMqTransport, String) {
    let node = tokio::task::spawn_blocking(RabbitNode::start)
        .await
        .unwrap();
    let transport = RabbitMqTransport::connect(config(RabbitMqConfig::new(&node.url)))
        .await
        .unwrap();
    let queue = RabbitMqConfig::queue_name(TOPIC, subscription);
    support::rabbitmq::declare_classic(&transport, TOPIC, &queue).await;
    (node, transport, queue)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_dropped_unsettled_is_delivered_again_while_the_consumer_runs() {
    // One unsettled delivery fills the prefetch: nothing else comes until it is settled.
    let (node, transport, queue) = classic_queue(|c| c.prefetch(1), "validation").await;
    let event = hyperfleet_tracing::testing::reconcile_event("dropped", "c-1").unwrap();
    let message = binding::encode(&event, Encoding::Structured).unwrap();
    transport.publish(TOPIC, message).await.unwrap();

    let mut deliveries = transport.subscribe(&queue).await.unwrap();
    let first = tokio::time::timeout(Duration::from_secs(30), deliveries.next())
        .await
        .expect("the message is delivered")
        .unwrap()
        .unwrap();
    assert_eq!(first.delivery_attempt, Some(1));
    drop(first);

    // The same consumer, the same channel: the drop sent it back.
    let again = tokio::time::timeout(Duration::from_secs(10), deliveries.next())
        .await
        .expect("a delivery dropped unsettled comes back while the consumer runs")
        .unwrap()
        .unwrap();
    assert_eq!(
        binding::decode(&again.message).unwrap(),
        event,
        "the same message"
    );
    again.ack().await.unwrap();
    deliveries.close().await;
    drop(node);
}

/// A subscriber's run aborted while its handler holds a delivery (a task cancelled, a deploy):
/// the delivery goes back to the queue at once, and another consumer of the queue handles it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_aborted_mid_handler_hands_its_delivery_to_another_consumer_at_once() {
    use cloudevents::AttributesReader;
    use hyperfleet_tracing::{HandlerError, Received, TracedPublisher, TracedSubscriber};
    use tokio::sync::mpsc;
    let (node, transport, queue) = classic_queue(|c| c, "aborted").await;
    let publisher = TracedPublisher::new(transport.clone(), TOPIC);
    let event = hyperfleet_tracing::testing::reconcile_event("held", "c-1").unwrap();
    publisher.publish(event).await.unwrap();

    // The first subscriber's handler never returns.
    let (started_tx, mut started) = mpsc::unbounded_channel::<String>();
    let first = tokio::spawn(TracedSubscriber::new(transport.clone(), &queue, TOPIC).run(
        move |received: Received| {
            let _ = started_tx.send(received.event.id().to_owned());
            std::future::pending::<Result<(), HandlerError>>()
        },
        std::future::pending::<()>(),
    ));
    let held = tokio::time::timeout(Duration::from_secs(30), started.recv())
        .await
        .expect("the first subscriber got the message");
    assert_eq!(held.as_deref(), Some("held"));

    // A second subscriber on the same queue, then the first one's run aborted mid-handler.
    let (handled_tx, mut handled) = mpsc::unbounded_channel::<String>();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let second = tokio::spawn(TracedSubscriber::new(transport.clone(), &queue, TOPIC).run(
        move |received: Received| {
            let _ = handled_tx.send(received.event.id().to_owned());
            async { Ok::<(), HandlerError>(()) }
        },
        async move {
            let _ = stopped.await;
        },
    ));
    first.abort();
    let aborted_at = std::time::Instant::now();
    let again = tokio::time::timeout(Duration::from_secs(10), handled.recv())
        .await
        .expect("the aborted run's delivery reached the other consumer");
    assert_eq!(again.as_deref(), Some("held"));
    println!(
        "the aborted run's delivery was handled by the other consumer {:?} after the abort",
        aborted_at.elapsed()
    );
    let _ = stop.send(());
    second.await.unwrap().unwrap();
    drop(node);
}

/// A message its handler always fails, on a classic queue (hyperfleet-broker's default), with
/// retries on: the configured attempts, each after its delay, then the dead-letter queue with
/// the message and its trace context intact, whose consumer continues the trace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_message_is_retried_with_growing_delays_then_dead_lettered_whole() {
    use hyperfleet_tracing::testing::TestTelemetry;
    use hyperfleet_tracing::transport::rabbitmq::Retry;
    use hyperfleet_tracing::{HandlerError, Received, Settings, TracedPublisher, TracedSubscriber};
    use std::sync::{Arc, Mutex};
    use std::time::Instant;

    let retry = Retry::new(3).delays(Duration::from_millis(300), Duration::from_secs(5));
    let (node, transport, queue) = classic_queue(|c| c.retry(retry), "poisoned").await;
    let telemetry = TestTelemetry::new();
    let settings = Settings::new().tracer_provider(&telemetry.provider);
    let event = hyperfleet_tracing::testing::reconcile_event("poison", "c-1").unwrap();
    let published = TracedPublisher::new(transport.clone(), TOPIC)
        .settings(settings.clone())
        .publish(event.clone())
        .await
        .unwrap();

    // Every delivery fails; each is recorded with its attempt and when it came.
    let calls = Arc::new(Mutex::new(Vec::<(Option<u32>, Instant)>::new()));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let record = Arc::clone(&calls);
    let failing = move |received: Received| {
        record
            .lock()
            .unwrap()
            .push((received.delivery_attempt, Instant::now()));
        let _ = tx.send(());
        async { Err::<(), HandlerError>("poison".into()) }
    };
    let three = async move {
        for _ in 0..3 {
            rx.recv().await;
        }
    };
    tokio::time::timeout(
        Duration::from_secs(60),
        TracedSubscriber::new(transport.clone(), &queue, TOPIC)
            .settings(settings.clone())
            .run(failing, three),
    )
    .await
    .expect("three deliveries within a minute")
    .unwrap();
    let calls = calls.lock().unwrap().clone();
    let attempts: Vec<_> = calls.iter().map(|(attempt, _)| *attempt).collect();
    assert_eq!(attempts, [Some(1), Some(2), Some(3)]);
    let gaps: Vec<Duration> = calls.windows(2).map(|w| w[1].1 - w[0].1).collect();
    assert!(gaps[0] >= Duration::from_millis(300), "{gaps:?}");
    assert!(gaps[1] >= Duration::from_millis(600), "{gaps:?}");
    let span = calls[2].1 - calls[0].1;
    eprintln!(
        "poison message: 3 deliveries in {span:?} ({:.1} per second), gaps {gaps:?}",
        3.0 / span.as_secs_f64()
    );

    // Nothing more on the queue: the last failure went to the dead-letter queue.
    let mut rest = transport.subscribe(&queue).await.unwrap();
    assert!(
        tokio::time::timeout(Duration::from_secs(2), rest.next())
            .await
            .is_err(),
        "the poison message came again after its last attempt"
    );
    rest.close().await;

    // In the dead-letter queue, whole: its consumer continues the publisher's trace.
    let dead = Retry::dead_letter_queue(&queue);
    let seen = Arc::new(Mutex::new(None));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let keep = Arc::clone(&seen);
    let handler = move |received: Received| {
        *keep.lock().unwrap() = Some(received);
        let _ = tx.send(());
        async { Ok::<(), HandlerError>(()) }
    };
    tokio::time::timeout(
        Duration::from_secs(30),
        TracedSubscriber::new(transport.clone(), &dead, TOPIC)
            .settings(settings)
            .run(handler, async move {
                rx.recv().await;
            }),
    )
    .await
    .expect("the message is in the dead-letter queue")
    .unwrap();
    let received = seen.lock().unwrap().take().unwrap();
    // The event as published: the same attributes and data, and the publish span's context.
    let mut expected = event.clone();
    expected.set_extension(
        "traceparent",
        format!(
            "00-{}-{}-01",
            published.trace_context.trace_id(),
            published.trace_context.span_id()
        ),
    );
    assert_eq!(received.event, expected, "body and attributes intact");
    assert_eq!(received.delivery_attempt, Some(4), "it failed three times");
    use opentelemetry::trace::TraceContextExt as _;
    assert_eq!(
        received.context.span().span_context().trace_id(),
        published.trace_context.trace_id(),
        "the dead letter's consumer continues the trace"
    );
    drop(node);
}

/// Without retries (the default, hyperfleet-broker's behaviour, which Go consumers of the same
/// queue rely on) a failed delivery is requeued at once: the figure the retries are measured
/// against.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_retries_a_failed_delivery_is_requeued_at_once() {
    use hyperfleet_tracing::{HandlerError, Received, TracedPublisher, TracedSubscriber};
    use std::time::Instant;

    let (node, transport, queue) = classic_queue(|c| c, "looping").await;
    let event = hyperfleet_tracing::testing::reconcile_event("looping", "c-1").unwrap();
    TracedPublisher::new(transport.clone(), TOPIC)
        .publish(event)
        .await
        .unwrap();
    let deliveries = 50;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let failing = move |_: Received| {
        let _ = tx.send(());
        async { Err::<(), HandlerError>("poison".into()) }
    };
    let started = Instant::now();
    tokio::time::timeout(
        Duration::from_secs(60),
        TracedSubscriber::new(transport.clone(), &queue, TOPIC).run(failing, async move {
            for _ in 0..deliveries {
                rx.recv().await;
            }
        }),
    )
    .await
    .expect("the failed delivery keeps coming back")
    .unwrap();
    let elapsed = started.elapsed();
    eprintln!(
        "without retries: {deliveries} deliveries of one poison message in {elapsed:?} ({:.0} per second)",
        f64::from(deliveries) / elapsed.as_secs_f64()
    );
    drop(node);
}
