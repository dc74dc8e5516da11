//! RabbitMQ stopped and restarted under a running subscriber and publisher: no message lost,
//! none acked before its handler finished, publishing fails while the broker is down, and
//! both recover after.

mod support;

use cloudevents::AttributesReader;
use hyperfleet_tracing::Settings;
use hyperfleet_tracing::testing::TestTelemetry;
use hyperfleet_tracing::transport::rabbitmq::{RabbitMqConfig, RabbitMqTransport};
use hyperfleet_tracing::{HandlerError, Received, TracedPublisher, TracedSubscriber};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::rabbitmq::RabbitNode;
use tokio::sync::{Notify, mpsc};

const TOPIC: &str = "hyperfleet-clusters";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restart_loses_nothing_and_both_sides_recover() {
    let mut node = tokio::task::spawn_blocking(RabbitNode::start)
        .await
        .unwrap();
    let config = RabbitMqConfig::new(&node.url).publish_timeout(Duration::from_secs(3));
    let transport = RabbitMqTransport::connect(config).await.unwrap();
    let queue = RabbitMqConfig::queue_name(TOPIC, "validation");
    support::rabbitmq::declare_classic(&transport, TOPIC, &queue).await;
    let telemetry = TestTelemetry::new();
    let publisher = TracedPublisher::new(transport.clone(), TOPIC)
        .settings(Settings::new().tracer_provider(&telemetry.provider));
    let event = |id: &str| hyperfleet_tracing::testing::reconcile_event(id, "c-1").unwrap();
    for id in ["a", "b", "c"] {
        publisher.publish(event(id)).await.unwrap();
    }

    // The handler of `b` is held while the broker goes down; every finished handler is
    // recorded before it returns (and so before its ack).
    let finished = Arc::new(Mutex::new(Vec::<String>::new()));
    let (started_tx, mut started) = mpsc::unbounded_channel::<String>();
    let release = Arc::new(Notify::new());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let handler = {
        let (finished, release) = (Arc::clone(&finished), Arc::clone(&release));
        move |received: Received| {
            let (finished, release, started_tx) = (
                Arc::clone(&finished),
                Arc::clone(&release),
                started_tx.clone(),
            );
            async move {
                let id = received.event.id().to_owned();
                let _ = started_tx.send(id.clone());
                if id == "b" && !finished.lock().unwrap().contains(&"b-held".to_owned()) {
                    finished.lock().unwrap().push("b-held".to_owned());
                    release.notified().await;
                    return Err::<(), HandlerError>("held through the restart".into());
                }
                finished.lock().unwrap().push(id);
                Ok(())
            }
        }
    };
    let subscriber = tokio::spawn(
        TracedSubscriber::new(transport.clone(), &queue, TOPIC)
            .settings(Settings::new().tracer_provider(&telemetry.provider))
            .concurrency(1)
            .run(handler, async move {
                let _ = stopped.await;
            }),
    );
    // `a` handled, `b` held.
    while started.recv().await.as_deref() != Some("b") {}

    tokio::task::block_in_place(|| node.stop());
    let down = tokio::time::timeout(
        Duration::from_secs(30),
        publisher.publish(event("while-down")),
    )
    .await
    .expect("publishing while the broker is down fails promptly");
    assert!(
        down.is_err(),
        "publishing while the broker is down must fail"
    );
    release.notify_one();

    tokio::task::block_in_place(|| node.start_again());

    // Publishing recovers (the connection reconnects by itself).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        match publisher.publish(event("after")).await {
            Ok(_) => break,
            Err(error) if tokio::time::Instant::now() < deadline => {
                let _ = error;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(error) => panic!("publishing did not recover: {error}"),
        }
    }
    // Everything published while up is handled: `b` again (its first handling never
    // acked), `c`, and `after`.
    let mut seen = BTreeSet::new();
    while !["b", "c", "after"].iter().all(|id| seen.contains(*id)) {
        let id = tokio::time::timeout(Duration::from_secs(60), started.recv())
            .await
            .expect("the subscriber recovered")
            .unwrap();
        seen.insert(id);
    }
    let _ = stop.send(());
    subscriber.await.unwrap().unwrap();
    let finished = finished.lock().unwrap().clone();
    for id in ["a", "b", "c", "after"] {
        assert!(
            finished.contains(&id.to_owned()),
            "{id} was not handled: {finished:?}"
        );
    }
    drop(node);
}

/// The broker cancels the consumer when its queue is deleted: the subscriber consumes again
/// (with backoff) once the queue is back, instead of stopping.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_consumer_consumes_again_once_its_queue_is_back() {
    let node = tokio::task::spawn_blocking(RabbitNode::start)
        .await
        .unwrap();
    let transport = RabbitMqTransport::connect(RabbitMqConfig::new(&node.url))
        .await
        .unwrap();
    let queue = RabbitMqConfig::queue_name(TOPIC, "cancelled");
    let declare = || support::rabbitmq::declare_classic(&transport, TOPIC, &queue);
    declare().await;
    let (subscriber, mut handled, stop) = subscribe_recording(&transport, &queue);
    let publisher = TracedPublisher::new(transport.clone(), TOPIC);
    let event = |id: &str| hyperfleet_tracing::testing::reconcile_event(id, "c-1").unwrap();
    publisher.publish(event("before")).await.unwrap();
    assert_eq!(handled.recv().await.as_deref(), Some("before"));

    let raw = lapin::Connection::connect(&node.url, lapin::ConnectionProperties::default())
        .await
        .unwrap();
    let channel = raw.create_channel().await.unwrap();
    channel
        .queue_delete(
            queue.as_str().into(),
            lapin::options::QueueDeleteOptions::default(),
        )
        .await
        .unwrap();
    declare().await;
    publisher.publish(event("after")).await.unwrap();
    let next = tokio::time::timeout(Duration::from_secs(60), handled.recv())
        .await
        .expect("the subscriber consumed the queue again");
    assert_eq!(next.as_deref(), Some("after"));
    assert!(!subscriber.is_finished(), "the subscriber kept running");
    let _ = stop.send(());
    subscriber.await.unwrap().unwrap();
}

/// A broker that comes back without its definitions (a node restarted on empty storage, as a
/// pod without a volume does): the transport declares again what its admin declared, so
/// publishing routes again and the subscriber consumes again, with nobody declaring by hand.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_back_without_its_definitions_gets_them_declared_again() {
    const WAIT: Duration = Duration::from_secs(60);
    let mut node = tokio::task::spawn_blocking(RabbitNode::start)
        .await
        .unwrap();
    let config = RabbitMqConfig::new(&node.url).publish_timeout(Duration::from_secs(3));
    let transport = RabbitMqTransport::connect(config).await.unwrap();
    let queue = RabbitMqConfig::queue_name(TOPIC, "wiped");
    support::rabbitmq::declare_classic(&transport, TOPIC, &queue).await;
    let (subscriber, mut handled, stop) = subscribe_recording(&transport, &queue);
    let publisher = TracedPublisher::new(transport.clone(), TOPIC);
    let event = |id: &str| hyperfleet_tracing::testing::reconcile_event(id, "c-1").unwrap();
    publisher.publish(event("before")).await.unwrap();
    assert_eq!(handled.recv().await.as_deref(), Some("before"));

    let mut node = tokio::task::spawn_blocking(move || {
        node.kill();
        node.wipe();
        node.start_again();
        node
    })
    .await
    .unwrap();
    // Publishing fails (typed) until the connection is back and the exchange and its queue
    // are declared again; then a publish is confirmed as routed.
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut attempts = tokio::time::interval(Duration::from_millis(200));
    let mut failures = Vec::new();
    let routed = loop {
        attempts.tick().await;
        let id = format!("after-{}", failures.len());
        match publisher.publish(event(&id)).await {
            Ok(_) => break id,
            Err(error) => failures.push(error.to_string()),
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no publish routed within {WAIT:?} of the restart: {failures:#?}"
        );
    };
    let next = tokio::time::timeout(WAIT, handled.recv())
        .await
        .expect("the subscriber consumes the queue declared again");
    assert_eq!(next.as_deref(), Some(routed.as_str()));
    println!(
        "routed again after {} failed publishes; handled",
        failures.len()
    );
    let _ = stop.send(());
    subscriber.await.unwrap().unwrap();
    tokio::task::spawn_blocking(move || node.stop())
        .await
        .unwrap();
}

/// A subscriber on `queue`, running until the sender is used, that sends each handled event's
/// id.
fn subscribe_recording(
    transport: &RabbitMqTransport,
    queue: &str,
) -> (
    tokio::task::JoinHandle<Result<(), hyperfleet_tracing::SubscribeError>>,
    mpsc::UnboundedReceiver<String>,
    tokio::sync::oneshot::Sender<()>,
) {
    let (handled_tx, handled) = mpsc::unbounded_channel::<String>();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let subscriber = tokio::spawn(TracedSubscriber::new(transport.clone(), queue, TOPIC).run(
        move |received: Received| {
            let _ = handled_tx.send(received.event.id().to_owned());
            async { Ok::<(), HandlerError>(()) }
        },
        async move {
            let _ = stopped.await;
        },
    ));
    (subscriber, handled, stop)
}
