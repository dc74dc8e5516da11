//! Ordering keys around publish failures on Pub/Sub (Google's emulator): after a failed
//! publish with an ordering key, later publishes with that key fail until the application
//! resumes the key, so a key's messages are never published out of order.

mod support;

use hyperfleet_tracing::transport::ErrorCode;
use hyperfleet_tracing::transport::pubsub::{PubSubAdmin, PubSubConfig, PubSubTransport};
use hyperfleet_tracing::{PublishError, PublishOptions, TracedPublisher};
use support::emulator::Emulator;
use support::events::reconcile_event;

fn keyed(key: &str) -> PublishOptions {
    PublishOptions::new().ordering_key(key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_whose_publish_failed_stays_paused_until_it_is_resumed() {
    let emulator = tokio::task::spawn_blocking(Emulator::start).await.unwrap();
    let config = PubSubConfig::new("hyperfleet-ordering").emulator(&emulator.host);
    let admin = PubSubAdmin::connect(config.clone()).await.unwrap();
    let transport = PubSubTransport::connect(config).await.unwrap();
    let topic = format!("ordering-{}", std::process::id());
    let publisher = TracedPublisher::new(transport.clone(), &topic);

    // The topic does not exist yet: the first message of key k fails.
    let failed = publisher
        .publish_with(reconcile_event("m1"), keyed("k"))
        .await
        .unwrap_err();
    assert!(
        matches!(&failed, PublishError::Transport(e) if e.code() == ErrorCode::NotFound),
        "{failed}"
    );
    admin.create_topic_if_missing(&topic).await.unwrap();

    // m2 of the same key must not overtake m1: the key is paused.
    let paused = publisher
        .publish_with(reconcile_event("m2"), keyed("k"))
        .await
        .unwrap_err();
    assert!(
        matches!(&paused, PublishError::Transport(e) if e.code() == ErrorCode::FailedPrecondition),
        "a later message of a failed key was published: {paused}"
    );
    // Other keys, and messages without a key, are not held up.
    publisher
        .publish_with(reconcile_event("o1"), keyed("other"))
        .await
        .unwrap();
    publisher.publish(reconcile_event("n1")).await.unwrap();

    // The application decides what to resend, then resumes the key.
    transport.resume_publish(&topic, "k");
    publisher
        .publish_with(reconcile_event("m1"), keyed("k"))
        .await
        .unwrap();
    publisher
        .publish_with(reconcile_event("m2"), keyed("k"))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keys_messages_are_handled_in_publish_order_around_a_handler_failure() {
    use cloudevents::AttributesReader;
    use hyperfleet_tracing::transport::SubscriptionConfig;
    use hyperfleet_tracing::{HandlerError, Received, TracedSubscriber};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};

    let emulated = support::emulator::with_subscription(
        "hyperfleet-ordering",
        "ordered",
        &SubscriptionConfig::default().message_ordering(true),
    )
    .await;
    let (transport, topic, subscription) = (
        emulated.transport.clone(),
        emulated.topic.clone(),
        emulated.subscription.clone(),
    );
    let publisher = TracedPublisher::new(transport.clone(), &topic);
    let ids: Vec<String> = (0..6).map(|i| format!("k-{i}")).collect();
    for id in &ids {
        publisher
            .publish_with(reconcile_event(id), keyed("k"))
            .await
            .unwrap();
    }
    let handled = Arc::new(Mutex::new(Vec::new()));
    let failed = Arc::new(AtomicBool::new(false));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let record = Arc::clone(&handled);
    let handler = move |received: Received| {
        let id = received.event.id().to_owned();
        // The second message fails once.
        let fail = id == "k-1" && !failed.swap(true, Ordering::SeqCst);
        if !fail {
            record.lock().unwrap().push(id);
            let _ = tx.send(());
        }
        async move {
            if fail {
                return Err::<(), HandlerError>("fails once".into());
            }
            Ok(())
        }
    };
    let count = ids.len();
    tokio::time::timeout(
        std::time::Duration::from_secs(120),
        TracedSubscriber::new(transport, &subscription, &topic)
            .concurrency(8)
            .run(handler, async move {
                for _ in 0..count {
                    rx.recv().await;
                }
            }),
    )
    .await
    .expect("the key's messages were not all handled")
    .unwrap();
    // Each successful handling, in publish order; a redelivery may repeat a message (at
    // least once), never reorder them.
    let mut handled = handled.lock().unwrap().clone();
    handled.dedup();
    assert_eq!(handled, ids, "out of order around the failure");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_keys_messages_are_handled_in_order_over_several_streams() {
    use cloudevents::AttributesReader;
    use hyperfleet_tracing::transport::SubscriptionConfig;
    use hyperfleet_tracing::transport::pubsub::DEFAULT_STREAMS;
    use hyperfleet_tracing::{HandlerError, Received, TracedSubscriber};
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};

    const KEYS: usize = 12;
    const PER_KEY: usize = 40;
    const { assert!(DEFAULT_STREAMS > 1, "the default opens several streams") };
    let emulated = support::emulator::with_subscription(
        "hyperfleet-ordering",
        "ordered-streams",
        &SubscriptionConfig::default().message_ordering(true),
    )
    .await;
    let (transport, topic, subscription) = (
        emulated.transport.clone(),
        emulated.topic.clone(),
        emulated.subscription.clone(),
    );
    // Every key published before the subscriber starts, so every stream has messages waiting
    // for it: the keys at once, each key's messages one after another.
    let publisher = TracedPublisher::new(transport.clone(), &topic);
    futures::future::join_all((0..KEYS).map(|k| {
        let publisher = &publisher;
        async move {
            for n in 0..PER_KEY {
                let event = reconcile_event(&format!("k{k}-{n}"));
                let options = keyed(&format!("k{k}"));
                publisher.publish_with(event, options).await.unwrap();
            }
        }
    }))
    .await;

    let handled: Arc<Mutex<BTreeMap<String, Vec<usize>>>> = Arc::default();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let record = Arc::clone(&handled);
    let handler = move |received: Received| {
        let id = received.event.id().to_owned();
        let (key, n) = id.split_once('-').unwrap();
        let n: usize = n.parse().unwrap();
        record
            .lock()
            .unwrap()
            .entry(key.to_owned())
            .or_default()
            .push(n);
        let _ = tx.send(());
        async { Ok::<(), HandlerError>(()) }
    };
    tokio::time::timeout(
        std::time::Duration::from_secs(120),
        TracedSubscriber::new(transport, &subscription, &topic)
            .concurrency(16)
            .run(handler, async move {
                for _ in 0..KEYS * PER_KEY {
                    rx.recv().await;
                }
            }),
    )
    .await
    .expect("the keys' messages were not all handled")
    .unwrap();
    let handled = handled.lock().unwrap().clone();
    assert_eq!(handled.len(), KEYS);
    for (key, order) in handled {
        // At least once: a redelivery may repeat messages; each is first handled in order.
        let mut first = Vec::new();
        for n in order {
            if !first.contains(&n) {
                first.push(n);
            }
        }
        assert_eq!(
            first,
            (0..PER_KEY).collect::<Vec<_>>(),
            "{key} out of order"
        );
    }
}
