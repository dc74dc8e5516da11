//! Dead letters are never lost: with the recommended set-up a message that is no CloudEvent
//! ends up readable on the `{subscription}-dlq` subscription (on Google's emulator), and the
//! memory transport keeps a dead letter whose topic has no subscription.

mod support;

use futures::StreamExt;
use hyperfleet_tracing::transport::memory::MemoryTransport;
use hyperfleet_tracing::transport::pubsub::{PubSubAdmin, PubSubConfig, PubSubTransport};
use hyperfleet_tracing::transport::{DeadLetterPolicy, Message, SubscriptionConfig, Transport};
use hyperfleet_tracing::{Received, TracedSubscriber};
use std::time::Duration;
use support::emulator::Emulator;

const BODY: &str = "this is not a CloudEvent";

/// Runs a subscriber on `subscription` until a message can be read from `dead_letters`, and
/// returns that message.
async fn dead_lettered<T: Transport + Clone>(
    transport: &T,
    subscription: &str,
    topic: &str,
    dead_letters: &str,
) -> Message {
    let mut stream = transport.subscribe(dead_letters).await.unwrap();
    let (found, got) = tokio::sync::oneshot::channel();
    let arrived = async move {
        if let Some(Ok(delivery)) = stream.next().await {
            let message = delivery.message.clone();
            delivery.ack().await.unwrap();
            let _ = found.send(message);
        }
    };
    let run = TracedSubscriber::new(transport.clone(), subscription, topic)
        .run(|_: Received| async { Ok(()) }, arrived);
    tokio::time::timeout(Duration::from_secs(180), run)
        .await
        .expect("the message never reached the dead-letter subscription")
        .unwrap();
    got.await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_helper_creates_a_dead_letter_subscription_that_receives_poison_messages() {
    let emulator = tokio::task::spawn_blocking(Emulator::start).await.unwrap();
    let config = PubSubConfig::new("hyperfleet-dead-letters").emulator(&emulator.host);
    let admin = PubSubAdmin::connect(config.clone()).await.unwrap();
    let transport = PubSubTransport::connect(config).await.unwrap();
    let topic = format!("dlq-topic-{}", std::process::id());
    let subscription = format!("{topic}-validation");
    admin.create_topic_if_missing(&topic).await.unwrap();
    // The set-up the README recommends.
    let policy = DeadLetterPolicy::for_subscription(&subscription);
    admin
        .create_subscription_if_missing(
            &subscription,
            &topic,
            &SubscriptionConfig::default().dead_letter(policy.clone()),
        )
        .await
        .unwrap();
    transport.publish(&topic, Message::new(BODY)).await.unwrap();
    let dead_letters = format!("{subscription}-dlq");
    assert_eq!(policy.topic, dead_letters);
    let message = dead_lettered(&transport, &subscription, &topic, &dead_letters).await;
    assert_eq!(&message.data[..], BODY.as_bytes());
}

#[tokio::test]
async fn the_memory_transport_keeps_a_dead_letter_whose_topic_has_no_subscription() {
    let transport = MemoryTransport::new();
    transport.create_topic("t").unwrap();
    transport.create_topic("t-dlq").unwrap();
    transport
        .create_subscription(
            "s",
            "t",
            SubscriptionConfig::default().dead_letter(DeadLetterPolicy::new("t-dlq", 5)),
        )
        .unwrap();
    transport.publish("t", Message::new(BODY)).await.unwrap();
    // Nack it past its attempts while no one listens on the dead-letter topic.
    let mut stream = transport.subscribe("s").await.unwrap();
    for _ in 0..5 {
        let delivery = stream.next().await.unwrap().unwrap();
        delivery.nack().await.unwrap();
    }
    assert_eq!(
        transport.backlog("s").unwrap(),
        1,
        "the dead letter went to a topic without subscriptions and was lost"
    );
    // Once a subscription exists there, the next failure dead-letters it for real.
    transport
        .create_subscription("t-dlq", "t-dlq", SubscriptionConfig::default())
        .unwrap();
    drop(stream);
    let message = dead_lettered(&transport, "s", "t", "t-dlq").await;
    assert_eq!(&message.data[..], BODY.as_bytes());
    assert_eq!(transport.backlog("s").unwrap(), 0);
}
