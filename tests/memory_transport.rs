//! The in-memory transport behaves like Pub/Sub: fan-out, competing consumers, leases and
//! redelivery, ordering keys, dead-lettering, typed errors.
//! Time is paused, so ack deadlines and leases pass without real waiting.

use futures::{FutureExt, StreamExt};
use hyperfleet_tracing::transport::memory::{
    DEAD_LETTER_SOURCE_DELIVERY_COUNT, DEAD_LETTER_SOURCE_SUBSCRIPTION, MemoryTransport,
};
use hyperfleet_tracing::transport::{
    DeadLetterPolicy, Delivery, DeliveryStream, ErrorCode, Message, SubscriptionConfig, Transport,
};
use std::collections::HashSet;
use std::time::Duration;

fn transport_with(subscriptions: &[(&str, SubscriptionConfig)]) -> MemoryTransport {
    on(MemoryTransport::new(), subscriptions)
}

fn on(transport: MemoryTransport, subscriptions: &[(&str, SubscriptionConfig)]) -> MemoryTransport {
    transport.create_topic("t").unwrap();
    for (name, config) in subscriptions {
        transport
            .create_subscription(name, "t", config.clone())
            .unwrap();
    }
    transport
}

async fn next(stream: &mut DeliveryStream) -> Delivery {
    stream
        .next()
        .await
        .expect("stream ended")
        .expect("delivery error")
}

fn body(delivery: &hyperfleet_tracing::transport::Delivery) -> String {
    String::from_utf8(delivery.message.data.to_vec()).unwrap()
}

#[tokio::test(start_paused = true)]
async fn every_subscription_gets_every_message_and_consumers_compete() {
    let transport = transport_with(&[
        ("a", SubscriptionConfig::default()),
        ("b", SubscriptionConfig::default()),
    ]);
    let mut ids = Vec::new();
    for i in 0..10 {
        ids.push(
            transport
                .publish(
                    "t",
                    Message::new(format!("m{i}")).with_attribute("Key", "V"),
                )
                .await
                .unwrap(),
        );
    }
    assert_eq!(
        ids.iter().collect::<HashSet<_>>().len(),
        10,
        "ids must be unique"
    );

    let mut first = transport.subscribe("a").await.unwrap();
    let mut second = transport.subscribe("a").await.unwrap();
    let mut seen = Vec::new();
    for i in 0..10 {
        let delivery = if i % 2 == 0 {
            next(&mut first).await
        } else {
            next(&mut second).await
        };
        assert_eq!(
            delivery.message.attributes["Key"], "V",
            "attribute key case kept"
        );
        seen.push(delivery.message.id.clone().unwrap());
        delivery.ack().await.unwrap();
    }
    seen.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(
        seen, expected,
        "each message once across competing consumers"
    );
    assert_eq!(transport.backlog("a").unwrap(), 0);
    assert!(
        first.next().now_or_never().is_none(),
        "nothing left to deliver"
    );

    assert_eq!(
        transport.backlog("b").unwrap(),
        10,
        "the other subscription has its own copy"
    );
}

#[tokio::test(start_paused = true)]
async fn a_subscription_gets_only_messages_published_after_it() {
    let transport = transport_with(&[]);
    transport.publish("t", Message::new("early")).await.unwrap();
    transport
        .create_subscription("late", "t", SubscriptionConfig::default())
        .unwrap();
    transport.publish("t", Message::new("later")).await.unwrap();
    let mut stream = transport.subscribe("late").await.unwrap();
    assert_eq!(body(&next(&mut stream).await), "later");
}

#[tokio::test(start_paused = true)]
async fn nack_and_drop_redeliver_with_the_attempt_counted() {
    let transport = transport_with(&[("a", SubscriptionConfig::default())]);
    transport.publish("t", Message::new("m")).await.unwrap();
    let mut stream = transport.subscribe("a").await.unwrap();
    let first = next(&mut stream).await;
    assert_eq!(first.delivery_attempt, Some(1));
    first.nack().await.unwrap();
    let second = next(&mut stream).await;
    assert_eq!(second.delivery_attempt, Some(2));
    drop(second);
    let third = next(&mut stream).await;
    assert_eq!(third.delivery_attempt, Some(3));
    third.ack().await.unwrap();
    assert_eq!(transport.backlog("a").unwrap(), 0);
}

const ACK_DEADLINE: Duration = Duration::from_secs(10);

/// A transport with `max_lease` and a subscription `a` with a 10 s ack deadline, one message
/// taken and held: the transport, the held delivery, its redelivery, and the time until it.
async fn held_until_redelivered(
    max_lease: Duration,
) -> (MemoryTransport, Delivery, Delivery, Duration) {
    let config = SubscriptionConfig::default().ack_deadline(ACK_DEADLINE);
    let transport = on(MemoryTransport::with_max_lease(max_lease), &[("a", config)]);
    transport.publish("t", Message::new("m")).await.unwrap();
    let mut stream = transport.subscribe("a").await.unwrap();
    let held = next(&mut stream).await;
    let started = tokio::time::Instant::now();
    // The clock is paused: waiting for the next delivery advances it to the lease's end.
    let again = next(&mut stream).await;
    assert_eq!(again.delivery_attempt, Some(2));
    assert_eq!(again.message.id, held.message.id);
    (transport, held, again, started.elapsed())
}

#[tokio::test(start_paused = true)]
async fn a_max_lease_shorter_than_the_ack_deadline_counts_as_the_deadline() {
    let (_, _held, _, waited) = held_until_redelivered(Duration::ZERO).await;
    assert!(
        waited >= ACK_DEADLINE,
        "redelivered after {waited:?}, before the ack deadline"
    );
}

#[tokio::test(start_paused = true)]
async fn a_held_lease_outlives_the_ack_deadline_until_the_max_lease_then_its_late_ack_is_ignored() {
    let max_lease = Duration::from_secs(60);
    let (transport, slow, again, waited) = held_until_redelivered(max_lease).await;
    assert!(
        waited >= max_lease,
        "redelivered after {waited:?}, before the maximum lease"
    );
    slow.ack().await.unwrap();
    assert_eq!(
        transport.backlog("a").unwrap(),
        1,
        "the stale ack settled the new lease"
    );
    again.ack().await.unwrap();
    assert_eq!(transport.backlog("a").unwrap(), 0);
}

#[tokio::test(start_paused = true)]
async fn ordering_keys_are_delivered_one_at_a_time_in_order() {
    let transport = transport_with(&[("a", SubscriptionConfig::default().message_ordering(true))]);
    for body in ["k1-a", "k1-b", "k1-c"] {
        transport
            .publish("t", Message::new(body).with_ordering_key("k1"))
            .await
            .unwrap();
    }
    transport
        .publish("t", Message::new("k2-a").with_ordering_key("k2"))
        .await
        .unwrap();
    let mut stream = transport.subscribe("a").await.unwrap();
    let a = next(&mut stream).await;
    assert_eq!(body(&a), "k1-a");
    let other_key = next(&mut stream).await;
    assert_eq!(body(&other_key), "k2-a", "another key is not blocked");
    assert!(
        stream.next().now_or_never().is_none(),
        "k1-b delivered while k1-a is leased"
    );
    a.nack().await.unwrap();
    let redelivered = next(&mut stream).await;
    assert_eq!(
        body(&redelivered),
        "k1-a",
        "a nacked message keeps its place"
    );
    redelivered.ack().await.unwrap();
    let b = next(&mut stream).await;
    assert_eq!(body(&b), "k1-b");
    b.ack().await.unwrap();
    assert_eq!(body(&next(&mut stream).await), "k1-c");
}

#[tokio::test(start_paused = true)]
async fn without_ordering_keys_do_not_block() {
    let transport = transport_with(&[("a", SubscriptionConfig::default())]);
    for body in ["1", "2"] {
        transport
            .publish("t", Message::new(body).with_ordering_key("k"))
            .await
            .unwrap();
    }
    let mut stream = transport.subscribe("a").await.unwrap();
    let _first = next(&mut stream).await;
    assert_eq!(body(&next(&mut stream).await), "2");
}

#[tokio::test(start_paused = true)]
async fn dead_letters_after_the_last_attempt() {
    let policy = DeadLetterPolicy::for_subscription("a");
    assert_eq!(policy.topic, "a-dlq");
    let transport = transport_with(&[("a", SubscriptionConfig::default().dead_letter(policy))]);
    transport.create_topic("a-dlq").unwrap();
    transport
        .create_subscription("dlq", "a-dlq", SubscriptionConfig::default())
        .unwrap();
    transport
        .publish("t", Message::new("poison").with_attribute("k", "v"))
        .await
        .unwrap();
    let mut stream = transport.subscribe("a").await.unwrap();
    for attempt in 1..=5 {
        let delivery = next(&mut stream).await;
        assert_eq!(delivery.delivery_attempt, Some(attempt));
        delivery.nack().await.unwrap();
    }
    assert_eq!(transport.backlog("a").unwrap(), 0);
    let mut dead = transport.subscribe("dlq").await.unwrap();
    let letter = next(&mut dead).await;
    assert_eq!(body(&letter), "poison");
    assert_eq!(letter.message.attributes["k"], "v");
    assert_eq!(
        letter.message.attributes[DEAD_LETTER_SOURCE_SUBSCRIPTION],
        "a"
    );
    assert_eq!(
        letter.message.attributes[DEAD_LETTER_SOURCE_DELIVERY_COUNT],
        "5"
    );
}

#[tokio::test(start_paused = true)]
async fn a_missing_dead_letter_topic_keeps_the_message() {
    let policy = DeadLetterPolicy::new("missing", 5);
    let transport = transport_with(&[("a", SubscriptionConfig::default().dead_letter(policy))]);
    transport.publish("t", Message::new("m")).await.unwrap();
    let mut stream = transport.subscribe("a").await.unwrap();
    for _ in 1..=5 {
        next(&mut stream).await.nack().await.unwrap();
    }
    assert_eq!(transport.backlog("a").unwrap(), 1, "the message was lost");
    assert_eq!(next(&mut stream).await.delivery_attempt, Some(6));
}

#[tokio::test]
async fn errors_are_typed() {
    let transport = transport_with(&[("a", SubscriptionConfig::default())]);
    let code = |r: Result<(), hyperfleet_tracing::transport::TransportError>| r.unwrap_err().code();
    assert_eq!(code(transport.create_topic("t")), ErrorCode::AlreadyExists);
    assert_eq!(
        code(transport.create_subscription("a", "t", SubscriptionConfig::default())),
        ErrorCode::AlreadyExists
    );
    assert_eq!(
        code(transport.create_subscription("b", "nope", SubscriptionConfig::default())),
        ErrorCode::NotFound
    );
    let error = transport
        .publish("nope", Message::new("m"))
        .await
        .unwrap_err();
    assert_eq!(error.code(), ErrorCode::NotFound);
    assert_eq!(error.code().as_str(), "NOT_FOUND");
    assert!(error.to_string().contains("nope"));
    assert_eq!(
        transport.subscribe("nope").await.err().map(|e| e.code()),
        Some(ErrorCode::NotFound)
    );
}

#[tokio::test(start_paused = true)]
async fn a_nacked_message_does_not_starve_the_others() {
    let transport = transport_with(&[("a", SubscriptionConfig::default())]);
    transport
        .publish("t", Message::new("poison"))
        .await
        .unwrap();
    transport.publish("t", Message::new("fine")).await.unwrap();
    let mut stream = transport.subscribe("a").await.unwrap();
    let poison = next(&mut stream).await;
    assert_eq!(body(&poison), "poison");
    poison.nack().await.unwrap();
    assert_eq!(body(&next(&mut stream).await), "fine");
}

#[tokio::test]
async fn subscription_settings_outside_pubsubs_limits_are_refused() {
    let transport = transport_with(&[]);
    for config in [
        SubscriptionConfig::default().ack_deadline(Duration::ZERO),
        SubscriptionConfig::default().ack_deadline(Duration::from_secs(601)),
        SubscriptionConfig::default().ack_deadline(Duration::MAX),
        SubscriptionConfig::default().dead_letter(DeadLetterPolicy::new("d", 4)),
        SubscriptionConfig::default().dead_letter(DeadLetterPolicy::new("d", 101)),
    ] {
        let error = transport
            .create_subscription("s", "t", config.clone())
            .unwrap_err();
        assert_eq!(error.code(), ErrorCode::InvalidArgument, "{config:?}");
    }
}
