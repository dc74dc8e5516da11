//! Cross-client tests on Google's Pub/Sub emulator with real peers in Python
//! (`tests/interop/peer.py`, packages pinned in `tests/interop/requirements.txt`, installed
//! into `.venv` by `scripts/test`): hyperfleet-broker's wire format, CloudEvents sdk-go's binary
//! mode, Google's own client with OpenTelemetry on, and the CloudEvents Python SDK reading what
//! we publish.

mod support;

use hyperfleet_tracing::Settings;
use hyperfleet_tracing::binding::Encoding;
use hyperfleet_tracing::testing::TestTelemetry;
use hyperfleet_tracing::testing::spans::single;
use hyperfleet_tracing::transport::SubscriptionConfig;
use hyperfleet_tracing::transport::pubsub::{PubSubAdmin, PubSubConfig, PubSubTransport};
use hyperfleet_tracing::{HandlerError, Received};
use hyperfleet_tracing::{PublishOptions, TracedPublisher, TracedSubscriber};
use opentelemetry::Context;
use opentelemetry::trace::{TraceContextExt, Tracer, TracerProvider};
use support::emulator::Emulator;
use support::peer::peer;

const PROJECT: &str = "hyperfleet-interop";

struct Setup {
    emulator: Emulator,
    transport: PubSubTransport,
    admin: PubSubAdmin,
    telemetry: TestTelemetry,
}

async fn setup() -> Setup {
    let emulator = tokio::task::spawn_blocking(Emulator::start).await.unwrap();
    let config = PubSubConfig::new(PROJECT).emulator(&emulator.host);
    Setup {
        transport: PubSubTransport::connect(config.clone()).await.unwrap(),
        admin: PubSubAdmin::connect(config).await.unwrap(),
        telemetry: TestTelemetry::new(),
        emulator,
    }
}

impl Setup {
    /// A topic and subscription (Pub/Sub forbids names starting with `goog`).
    async fn topic(&self, name: &str) -> (String, String) {
        let topic = format!("{name}-{}", std::process::id());
        let subscription = format!("{topic}-sub");
        self.admin.create_topic_if_missing(&topic).await.unwrap();
        self.admin
            .create_subscription_if_missing(&subscription, &topic, &SubscriptionConfig::default())
            .await
            .unwrap();
        (topic, subscription)
    }

    /// Receives one message with our subscriber and returns the receive span.
    async fn receive_one(
        &self,
        topic: &str,
        subscription: &str,
    ) -> opentelemetry_sdk::trace::SpanData {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
        let run = TracedSubscriber::new(self.transport.clone(), subscription, topic)
            .settings(Settings::new().tracer_provider(&self.telemetry.provider))
            .run(
                move |_: Received| {
                    let _ = tx.send(());
                    async { Ok::<(), HandlerError>(()) }
                },
                async move {
                    rx.recv().await;
                },
            );
        tokio::time::timeout(std::time::Duration::from_secs(60), run)
            .await
            .expect("no message arrived")
            .unwrap();
        let spans = self.telemetry.spans();
        single(&spans, &format!("{topic} receive")).unwrap().clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_wire_format_from_python_continues_its_trace() {
    let s = setup().await;
    let (topic, subscription) = s.topic("broker").await;
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    peer(
        &s.emulator.host,
        vec![
            "publish-broker".into(),
            PROJECT.into(),
            topic.clone(),
            traceparent.into(),
        ],
    )
    .await;
    let receive = s.receive_one(&topic, &subscription).await;
    assert_eq!(
        receive.span_context.trace_id().to_string(),
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
    assert_eq!(receive.parent_span_id.to_string(), "00f067aa0ba902b7");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_go_binary_shape_from_python_continues_its_trace() {
    let s = setup().await;
    let (topic, subscription) = s.topic("sdkgo").await;
    // Flags 03: unknown bits must be accepted.
    let traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-03";
    peer(
        &s.emulator.host,
        vec![
            "publish-sdkgo".into(),
            PROJECT.into(),
            topic.clone(),
            traceparent.into(),
        ],
    )
    .await;
    let receive = s.receive_one(&topic, &subscription).await;
    assert_eq!(
        receive.span_context.trace_id().to_string(),
        "0af7651916cd43dd8448eb211c80319c"
    );
    assert_eq!(receive.parent_span_id.to_string(), "b7ad6b7169203331");
    assert!(receive.span_context.is_sampled());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn google_client_tracing_is_continued_from_googclient_traceparent() {
    let s = setup().await;
    let (topic, subscription) = s.topic("gclient").await;
    let out = peer(
        &s.emulator.host,
        vec!["publish-googclient".into(), PROJECT.into(), topic.clone()],
    )
    .await;
    let python_spans = out[0]["spans"]
        .as_array()
        .expect("the Python client exported spans");
    assert!(
        !python_spans.is_empty(),
        "the Python client recorded no spans: {out:?}"
    );
    let trace_id = python_spans[0]["trace_id"].as_str().unwrap().to_owned();
    let span_ids: Vec<&str> = python_spans
        .iter()
        .filter_map(|s| s["span_id"].as_str())
        .collect();
    let receive = s.receive_one(&topic, &subscription).await;
    assert_eq!(
        receive.span_context.trace_id().to_string(),
        trace_id,
        "the Python client's trace was not continued"
    );
    assert!(
        span_ids.contains(&receive.parent_span_id.to_string().as_str()),
        "parent is not a Python client span"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cloudevents_python_sdk_reads_what_we_publish_in_both_encodings() {
    let s = setup().await;
    let (topic, subscription) = s.topic("ours").await;
    let root = Context::new().with_span(s.telemetry.provider.tracer("test").start("sentinel.poll"));
    for (encoding, id) in [
        (Encoding::Structured, "structured-1"),
        (Encoding::Binary, "binary-1"),
    ] {
        TracedPublisher::new(s.transport.clone(), &topic)
            .settings(Settings::new().tracer_provider(&s.telemetry.provider))
            .encoding(encoding)
            .publish_with(
                support::events::reconcile_event(id),
                PublishOptions::new().parent(root.clone()),
            )
            .await
            .unwrap();
    }
    let received = peer(
        &s.emulator.host,
        vec!["receive".into(), PROJECT.into(), subscription, "2".into()],
    )
    .await;
    let spans = s.telemetry.spans();
    let publish_spans: Vec<_> = spans
        .iter()
        .filter(|s| s.name == format!("{topic} publish"))
        .collect();
    assert_eq!(publish_spans.len(), 2);
    for (expected_encoding, id) in [("structured", "structured-1"), ("binary", "binary-1")] {
        let event = received
            .iter()
            .find(|e| e["id"] == id)
            .unwrap_or_else(|| panic!("{id} not received: {received:?}"));
        assert_eq!(event["encoding"], expected_encoding);
        assert_eq!(event["type"], "com.redhat.hyperfleet.cluster.reconcile");
        assert_eq!(event["data"]["kind"], "Cluster");
        let traceparent = event["traceparent"]
            .as_str()
            .expect("traceparent read by the Python SDK");
        let publish = publish_spans
            .iter()
            .find(|p| traceparent[36..52] == p.span_context.span_id().to_string())
            .expect("the traceparent names one of our publish spans");
        assert_eq!(
            traceparent[3..35],
            publish.span_context.trace_id().to_string()
        );
    }
}
