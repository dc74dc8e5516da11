//! RabbitMQ interop with a Python peer (`pika`) speaking exactly hyperfleet-broker's wire, on
//! a private node the test starts: its events continue their trace in our subscriber; what we
//! publish is read the way the Go broker reads it; an unroutable message is an error unless
//! accepted.

mod support;

use cloudevents::AttributesReader;
use hyperfleet_tracing::Settings;
use hyperfleet_tracing::testing::TestTelemetry;
use hyperfleet_tracing::testing::spans::{attribute, attribute_str, single};
use hyperfleet_tracing::transport::ErrorCode;
use hyperfleet_tracing::transport::rabbitmq::{
    ExchangeType, RabbitMqAdmin, RabbitMqConfig, RabbitMqTransport, Unroutable,
};
use hyperfleet_tracing::{HandlerError, PublishError, Received, TracedPublisher, TracedSubscriber};
use opentelemetry::Value;
use support::peer::peer;
use support::rabbitmq::RabbitNode;

const TOPIC: &str = "hyperfleet-clusters";

async fn node_with_queue(queue: &str) -> (RabbitNode, RabbitMqTransport) {
    let node = tokio::task::spawn_blocking(RabbitNode::start)
        .await
        .unwrap();
    let transport = RabbitMqTransport::connect(RabbitMqConfig::new(&node.url))
        .await
        .unwrap();
    support::rabbitmq::declare_classic(&transport, TOPIC, queue).await;
    (node, transport)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_go_brokers_wire_from_pika_continues_its_trace() {
    let queue = RabbitMqConfig::queue_name(TOPIC, "validation");
    let (node, transport) = node_with_queue(&queue).await;
    let telemetry = TestTelemetry::new();
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    peer(
        "",
        vec![
            "rabbit-publish-broker".into(),
            node.url.clone(),
            TOPIC.into(),
            traceparent.into(),
        ],
    )
    .await;

    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    TracedSubscriber::new(transport, &queue, TOPIC)
        .settings(Settings::new().tracer_provider(&telemetry.provider))
        .run(
            move |received: Received| {
                let _ = tx.send(received.event.id().to_owned());
                async { Ok::<(), HandlerError>(()) }
            },
            async move {
                let _ = rx.recv().await;
            },
        )
        .await
        .unwrap();
    let spans = telemetry.spans();
    let receive = single(&spans, "hyperfleet-clusters receive").unwrap();
    assert_eq!(
        receive.span_context.trace_id().to_string(),
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
    assert_eq!(receive.parent_span_id.to_string(), "00f067aa0ba902b7");
    assert_eq!(
        attribute_str(receive, "messaging.system").as_deref(),
        Some("rabbitmq")
    );
    assert_eq!(
        attribute_str(receive, "server.address").as_deref(),
        Some("127.0.0.1")
    );
    assert_eq!(
        attribute_str(receive, "messaging.message.id").as_deref(),
        Some("00000000-0000-0000-0000-000000000000"),
        "the id is the watermill uuid"
    );
    assert!(matches!(
        attribute(receive, "messaging.rabbitmq.message.delivery_tag"),
        Some(Value::I64(tag)) if *tag >= 1
    ));
    assert_eq!(
        attribute(receive, "messaging.rabbitmq.destination.routing_key"),
        None,
        "an empty routing key is not recorded"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_we_publish_reads_as_the_go_broker_reads_it() {
    let queue = RabbitMqConfig::queue_name(TOPIC, "go-adapter");
    let (node, transport) = node_with_queue(&queue).await;
    let telemetry = TestTelemetry::new();
    let publisher = TracedPublisher::new(transport, TOPIC)
        .settings(Settings::new().tracer_provider(&telemetry.provider));
    let event = hyperfleet_tracing::testing::reconcile_event("e-rabbit", "c-1").unwrap();
    let published = publisher.publish(event).await.unwrap();
    assert_eq!(
        published.message_id, "e-rabbit",
        "the returned id is the event's"
    );

    let out = peer(
        "",
        vec!["rabbit-receive".into(), node.url.clone(), queue, "1".into()],
    )
    .await;
    let read = &out[0];
    assert_eq!(read["id"], "e-rabbit");
    assert_eq!(read["delivery_mode"], 2, "persistent");
    let headers = read["headers"].as_object().unwrap();
    for (name, value) in headers {
        assert_eq!(value[0], "str", "header {name} is not a string: {value}");
    }
    assert_eq!(headers["_watermill_message_uuid"][1], "e-rabbit");
    let spans = telemetry.spans();
    let publish = single(&spans, "hyperfleet-clusters publish").unwrap();
    let expected = format!(
        "00-{}-{}-01",
        publish.span_context.trace_id(),
        publish.span_context.span_id()
    );
    assert_eq!(
        read["traceparent"],
        expected.as_str(),
        "the carried traceparent is our publish span's"
    );
    assert_eq!(
        attribute_str(publish, "messaging.system").as_deref(),
        Some("rabbitmq")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unroutable_message_is_an_error_unless_accepted() {
    let node = tokio::task::spawn_blocking(RabbitNode::start)
        .await
        .unwrap();
    let strict = RabbitMqTransport::connect(RabbitMqConfig::new(&node.url))
        .await
        .unwrap();
    RabbitMqAdmin::new(&strict)
        .create_topic_if_missing("nobody-listens")
        .await
        .unwrap();
    let event = || hyperfleet_tracing::testing::reconcile_event("lost", "c-1").unwrap();
    let refused = TracedPublisher::new(strict, "nobody-listens")
        .publish(event())
        .await;
    match refused {
        Err(PublishError::Transport(error)) => {
            assert_eq!(error.code(), ErrorCode::FailedPrecondition)
        }
        other => panic!("an unroutable message was not refused: {other:?}"),
    }
    let lenient =
        RabbitMqTransport::connect(RabbitMqConfig::new(&node.url).unroutable(Unroutable::Accept))
            .await
            .unwrap();
    TracedPublisher::new(lenient, "nobody-listens")
        .publish(event())
        .await
        .expect("accepted, as Pub/Sub accepts a topic without subscriptions");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_deletes_what_it_declared_and_a_missing_one_is_no_error() {
    let queue = RabbitMqConfig::queue_name(TOPIC, "deleted");
    let (node, transport) = node_with_queue(&queue).await;
    let admin = RabbitMqAdmin::new(&transport);
    let publisher = TracedPublisher::new(transport.clone(), TOPIC);
    let event = || hyperfleet_tracing::testing::reconcile_event("e-1", "c-1").unwrap();
    publisher
        .publish(event())
        .await
        .expect("routed to the queue");

    admin.delete_subscription(&queue).await.unwrap();
    admin.delete_subscription(&queue).await.unwrap();
    match publisher.publish(event()).await {
        Err(PublishError::Transport(error)) => {
            assert_eq!(error.code(), ErrorCode::FailedPrecondition, "{error}")
        }
        other => panic!("the queue is still bound after its deletion: {other:?}"),
    }

    admin.delete_topic(TOPIC).await.unwrap();
    admin.delete_topic(TOPIC).await.unwrap();
    // Declaring the exchange with another type fails while the fanout one exists.
    let topic_exchange = RabbitMqConfig::new(&node.url).exchange_type(ExchangeType::Topic);
    let other = RabbitMqTransport::connect(topic_exchange).await.unwrap();
    RabbitMqAdmin::new(&other)
        .create_topic_if_missing(TOPIC)
        .await
        .expect("the fanout exchange is gone, so a topic exchange of its name can be declared");
}
