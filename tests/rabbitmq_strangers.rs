//! RabbitMQ deliveries that are not settled the ordinary way: a delivery dropped unsettled (a
//! run aborted, a panic outside the handler) goes back to the queue at once rather than holding
//! its prefetch slot until the channel closes.

mod support;

use futures::StreamExt;
use hyperfleet_tracing::binding::{self, Encoding};
use hyperfleet_tracing::transport::rabbitmq::{
    QueueKind, RabbitMqAdmin, RabbitMqConfig, RabbitMqTransport,
};
use hyperfleet_tracing::transport::{SubscriptionConfig, Transport};
use std::time::Duration;
use support::rabbitmq::RabbitNode;

const TOPIC: &str = "hyperfleet-clusters";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_dropped_unsettled_is_delivered_again_while_the_consumer_runs() {
    let node = tokio::task::spawn_blocking(RabbitNode::start)
        .await
        .unwrap();
    // One unsettled delivery fills the prefetch: nothing else comes until it is settled.
    let config = RabbitMqConfig::new(&node.url).prefetch(1);
    let transport = RabbitMqTransport::connect(config).await.unwrap();
    let queue = RabbitMqConfig::queue_name(TOPIC, "validation");
    let admin = RabbitMqAdmin::new(&transport);
    admin.create_topic_if_missing(TOPIC).await.unwrap();
    admin
        .create_subscription_if_missing(
            &queue,
            TOPIC,
            QueueKind::Classic,
            &SubscriptionConfig::default(),
        )
        .await
        .unwrap();
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
