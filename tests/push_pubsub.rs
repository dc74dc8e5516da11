//! Push deliveries from Google's Pub/Sub emulator (it really `POST`s to loopback) to the push
//! endpoint: wrapped and unwrapped subscriptions, events from our publisher (structured and
//! binary) and from the Python peers (hyperfleet-broker's wire, sdk-go's binary shape,
//! Google's client with OpenTelemetry on); a failing handler is delivered again and then
//! dead-lettered.

mod support;

use cloudevents::AttributesReader;
use hyperfleet_tracing::Settings;
use hyperfleet_tracing::binding::Encoding;
use hyperfleet_tracing::push::PushEndpoint;
use hyperfleet_tracing::testing::TestTelemetry;
use hyperfleet_tracing::testing::spans::attribute_str;
use hyperfleet_tracing::transport::pubsub::{
    PubSubAdmin, PubSubConfig, PubSubTransport, PushSubscription,
};
use hyperfleet_tracing::transport::{DeadLetterPolicy, SubscriptionConfig, Transport};
use hyperfleet_tracing::{HandlerError, PublishOptions, Received, TracedPublisher};
use opentelemetry::Context;
use opentelemetry::trace::{Status, TraceContextExt, Tracer, TracerProvider};
use std::collections::BTreeMap;
use std::time::Duration;
use support::emulator::Emulator;
use support::peer::peer;
use support::push::serve;
use tokio::sync::mpsc;

const PROJECT: &str = "hyperfleet-push";

struct Setup {
    emulator: Emulator,
    admin: PubSubAdmin,
    transport: PubSubTransport,
    telemetry: TestTelemetry,
}

async fn setup() -> Setup {
    let emulator = tokio::task::spawn_blocking(Emulator::start).await.unwrap();
    let config = PubSubConfig::new(PROJECT).emulator(&emulator.host);
    Setup {
        admin: PubSubAdmin::connect(config.clone()).await.unwrap(),
        transport: PubSubTransport::connect(config).await.unwrap(),
        emulator,
        telemetry: TestTelemetry::new(),
    }
}

/// Waits for `n` reports, a minute at most.
async fn wait_for<T>(rx: &mut mpsc::UnboundedReceiver<T>, n: usize) -> Vec<T> {
    let mut got = Vec::new();
    while got.len() < n {
        let next = tokio::time::timeout(Duration::from_secs(60), rx.recv()).await;
        got.push(
            next.unwrap_or_else(|_| panic!("{} of {n} deliveries arrived", got.len()))
                .unwrap(),
        );
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_deliveries_from_every_producer_continue_their_trace() {
    let s = setup().await;
    let topic = format!("push-{}", std::process::id());
    let (tx, mut handled) = mpsc::unbounded_channel();
    let handler = move |received: Received| {
        let _ = tx.send(received.subscription.clone());
        std::future::ready(Ok::<(), HandlerError>(()))
    };
    let endpoint = PushEndpoint::new("unnamed", &topic)
        .settings(Settings::new().tracer_provider(&s.telemetry.provider));
    let served = serve(endpoint, handler).await;
    s.admin.create_topic_if_missing(&topic).await.unwrap();
    for (subscription, push) in [
        (
            format!("{topic}-wrapped"),
            PushSubscription::wrapped(&served.url),
        ),
        (
            format!("{topic}-unwrapped"),
            PushSubscription::unwrapped(&served.url),
        ),
    ] {
        s.admin
            .create_push_subscription_if_missing(
                &subscription,
                &topic,
                &push,
                &SubscriptionConfig::default(),
            )
            .await
            .unwrap();
    }

    // Expected parent (trace id, span id) of each producer's receive spans.
    let mut expected: BTreeMap<String, String> = BTreeMap::new();
    let tracer = s.telemetry.provider.tracer("sentinel");
    for (encoding, id) in [
        (Encoding::Structured, "ours-structured"),
        (Encoding::Binary, "ours-binary"),
    ] {
        let root = Context::new().with_span(tracer.start("sentinel.poll"));
        let publisher = TracedPublisher::new(s.transport.clone(), &topic)
            .settings(Settings::new().tracer_provider(&s.telemetry.provider))
            .encoding(encoding);
        let event = hyperfleet_tracing::testing::reconcile_event(id, id).unwrap();
        let published = publisher
            .publish_with(event, PublishOptions::new().parent(root.clone()))
            .await
            .unwrap();
        expected.insert(
            root.span().span_context().trace_id().to_string(),
            published.trace_context.span_id().to_string(),
        );
    }
    for (command, traceparent) in [
        (
            "publish-broker",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ),
        (
            "publish-sdkgo",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        ),
    ] {
        peer(
            &s.emulator.host,
            vec![
                command.into(),
                PROJECT.into(),
                topic.clone(),
                traceparent.into(),
            ],
        )
        .await;
        expected.insert(
            traceparent[3..35].to_owned(),
            traceparent[36..52].to_owned(),
        );
    }
    let out = peer(
        &s.emulator.host,
        vec!["publish-googclient".into(), PROJECT.into(), topic.clone()],
    )
    .await;
    let python_spans = out[0]["spans"]
        .as_array()
        .expect("the Python client's spans")
        .clone();
    let google_trace = python_spans[0]["trace_id"].as_str().unwrap().to_owned();

    let subscriptions = wait_for(&mut handled, 10).await;
    served.stop().await;
    for kind in ["wrapped", "unwrapped"] {
        let n = subscriptions
            .iter()
            .filter(|s| **s == format!("{topic}-{kind}"))
            .count();
        assert_eq!(n, 5, "{kind} deliveries handled: {subscriptions:?}");
    }

    let spans = s.telemetry.spans();
    let receives: Vec<_> = spans
        .iter()
        .filter(|s| s.name == format!("{topic} receive"))
        .collect();
    assert_eq!(receives.len(), 10);
    for receive in receives {
        let trace_id = receive.span_context.trace_id().to_string();
        let subscription =
            attribute_str(receive, "messaging.destination.subscription.name").unwrap();
        assert!(
            attribute_str(receive, "messaging.message.id").is_some(),
            "no message id"
        );
        if trace_id == google_trace {
            let parent = receive.parent_span_id.to_string();
            assert!(
                python_spans
                    .iter()
                    .any(|s| s["span_id"].as_str() == Some(parent.as_str())),
                "{subscription}: parent is not a Python client span"
            );
            continue;
        }
        assert_eq!(
            expected.get(&trace_id),
            Some(&receive.parent_span_id.to_string()),
            "{subscription}: trace {trace_id} not continued from its producer"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_handler_is_delivered_again_then_dead_lettered() {
    let s = setup().await;
    let topic = format!("push-dlq-{}", std::process::id());
    let subscription = format!("{topic}-push");
    let (tx, mut calls) = mpsc::unbounded_channel();
    let handler = move |received: Received| {
        let _ = tx.send(received.delivery_attempt);
        std::future::ready(Err::<(), HandlerError>("the adapter cannot take it".into()))
    };
    let endpoint = PushEndpoint::new("unnamed", &topic)
        .settings(Settings::new().tracer_provider(&s.telemetry.provider));
    let served = serve(endpoint, handler).await;
    s.admin.create_topic_if_missing(&topic).await.unwrap();
    let policy = DeadLetterPolicy::for_subscription(&subscription);
    let dead_letters = policy.topic.clone();
    let config = SubscriptionConfig::default().dead_letter(policy);
    s.admin
        .create_push_subscription_if_missing(
            &subscription,
            &topic,
            &PushSubscription::wrapped(&served.url),
            &config,
        )
        .await
        .unwrap();
    let publisher = TracedPublisher::new(s.transport.clone(), &topic)
        .settings(Settings::new().tracer_provider(&s.telemetry.provider));
    publisher
        .publish(hyperfleet_tracing::testing::reconcile_event("doomed", "c-1").unwrap())
        .await
        .unwrap();

    let attempts = wait_for(&mut calls, 5).await;
    // The emulator's push bodies carry no `deliveryAttempt`; Pub/Sub's do (read when present,
    // tests/push_endpoint.rs).
    assert!(
        attempts
            .iter()
            .all(|a| a.is_none() || a.is_some_and(|n| n >= 1)),
        "{attempts:?}"
    );

    // After five failed attempts, the message is in the dead-letter topic's subscription.
    let mut letters = s.transport.subscribe(&dead_letters).await.unwrap();
    let letter = tokio::time::timeout(
        Duration::from_secs(60),
        futures::StreamExt::next(&mut letters),
    )
    .await
    .expect("dead-lettered within a minute")
    .unwrap()
    .unwrap();
    assert_eq!(
        letter
            .message
            .attributes
            .get("CloudPubSubDeadLetterSourceDeliveryCount")
            .map(String::as_str),
        Some("5")
    );
    assert_eq!(
        hyperfleet_tracing::binding::decode(&letter.message)
            .unwrap()
            .id(),
        "doomed"
    );
    letter.ack().await.unwrap();
    letters.close().await;
    served.stop().await;
    assert!(
        calls.try_recv().is_err(),
        "no delivery after the dead letter"
    );

    let spans = s.telemetry.spans();
    let failed = spans
        .iter()
        .filter(|s| {
            s.name == format!("{topic} receive") && matches!(s.status, Status::Error { .. })
        })
        .count();
    assert_eq!(failed, 5, "each attempt's receive span records the failure");
}
