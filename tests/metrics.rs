//! Metrics recorded where the spans are: both families count what the spans show, the
//! duration samples point at the spans that measured them, and label values stay bounded.

mod support;

use hyperfleet_tracing::Settings;
use hyperfleet_tracing::metrics::Metrics;
use hyperfleet_tracing::settings::AckPolicy;
use hyperfleet_tracing::testing::{TestMetrics, TestTelemetry};
use hyperfleet_tracing::transport::memory::MemoryTransport;
use hyperfleet_tracing::transport::{Message, Transport};
use hyperfleet_tracing::{HandlerError, TracedPublisher, TracedSubscriber};
use opentelemetry::trace::SpanKind;
use opentelemetry_sdk::trace::Sampler;
use prometheus_client::registry::Registry;
use std::collections::BTreeSet;
use support::metrics::Exposition;

const TOPIC: &str = "hyperfleet-clusters";
const SUBSCRIPTION: &str = "validation";

struct Fixture {
    transport: MemoryTransport,
    telemetry: TestTelemetry,
    sdk: TestMetrics,
    registry: Registry,
    metrics: Metrics,
}

impl Fixture {
    fn new(sampler: Sampler) -> Self {
        let transport = support::memory::with_subscription(TOPIC, SUBSCRIPTION);
        let sdk = TestMetrics::new();
        let mut registry = Registry::default();
        let metrics = Metrics::builder()
            .component("adapter-validation")
            .version("1.2.3")
            .meter_provider(&sdk.provider)
            .prometheus(&mut registry)
            .build();
        Self {
            transport,
            telemetry: TestTelemetry::with_sampler(sampler),
            sdk,
            registry,
            metrics,
        }
    }

    fn publisher(&self) -> TracedPublisher<MemoryTransport> {
        TracedPublisher::new(self.transport.clone(), TOPIC).settings(
            Settings::new()
                .tracer_provider(&self.telemetry.provider)
                .metrics(self.metrics.clone()),
        )
    }

    fn subscriber(&self) -> TracedSubscriber<MemoryTransport> {
        TracedSubscriber::new(self.transport.clone(), SUBSCRIPTION, TOPIC)
            .settings(
                Settings::new()
                    .tracer_provider(&self.telemetry.provider)
                    .metrics(self.metrics.clone())
                    .ack_policy(AckPolicy::AlwaysAck),
            )
            .concurrency(8)
    }

    /// Publishes `n` events, then handles exactly `n` deliveries; the handler fails for every
    /// event whose index is a multiple of `fail_every`.
    async fn run(&self, n: usize, fail_every: usize) {
        let publisher = self.publisher();
        for i in 0..n {
            publisher
                .publish(support::events::reconcile_event(&format!("c{i}")))
                .await
                .unwrap();
        }
        support::memory::handle(self.subscriber(), n, move |id| {
            let index: usize = id[1..].parse().unwrap();
            if index.is_multiple_of(fail_every) {
                Err(HandlerError::from("cluster not ready"))
            } else {
                Ok(())
            }
        })
        .await;
    }

    fn exposition(&self) -> Exposition {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry).unwrap();
        Exposition::parse(&text)
    }
}

fn count_spans(telemetry: &TestTelemetry, name: &str, kind: SpanKind) -> usize {
    telemetry
        .spans()
        .iter()
        .filter(|s| s.name == name && s.span_kind == kind)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_families_count_what_the_spans_show() {
    let fixture = Fixture::new(Sampler::AlwaysOn);
    fixture.run(40, 4).await;
    let t = &fixture.telemetry;
    let published = count_spans(t, "hyperfleet-clusters publish", SpanKind::Producer);
    let received = count_spans(t, "hyperfleet-clusters receive", SpanKind::Consumer);
    let processed = count_spans(t, "adapter.process", SpanKind::Internal);
    assert_eq!((published, received, processed), (40, 40, 40));
    let failed = 10.0;

    let m = fixture.exposition();
    let broker = [
        ("topic", TOPIC),
        ("component", "adapter-validation"),
        ("version", "1.2.3"),
    ];
    assert_eq!(
        m.value("hyperfleet_broker_messages_published_total", &broker),
        40.0
    );
    assert_eq!(
        m.value("hyperfleet_broker_messages_consumed_total", &broker),
        40.0
    );
    assert_eq!(
        m.value(
            "hyperfleet_broker_errors_total",
            &[("error_type", "handler")]
        ),
        failed
    );
    assert_eq!(
        m.value(
            "hyperfleet_broker_errors_total",
            &[("error_type", "publish")]
        ),
        0.0
    );
    assert_eq!(
        m.value("hyperfleet_broker_message_duration_seconds_count", &broker),
        40.0
    );
    let buckets: Vec<String> = m
        .matching("hyperfleet_broker_message_duration_seconds_bucket", &broker)
        .map(|s| s.labels["le"].clone())
        .collect();
    assert_eq!(
        buckets,
        [
            "0.1", "0.5", "1.0", "2.0", "5.0", "10.0", "30.0", "60.0", "120.0", "+Inf"
        ]
    );

    let sent = [
        ("messaging_system", "hyperfleet_memory"),
        ("messaging_destination_name", TOPIC),
        ("messaging_operation_name", "publish"),
        ("component", "adapter-validation"),
    ];
    assert_eq!(
        m.value("messaging_client_sent_messages_total", &sent),
        40.0,
        "{}",
        m.text
    );
    let consumed = [
        ("messaging_destination_subscription_name", SUBSCRIPTION),
        ("messaging_operation_name", "receive"),
    ];
    assert_eq!(
        m.value("messaging_client_consumed_messages_total", &consumed),
        40.0
    );
    let process = [("messaging_operation_name", "process")];
    assert_eq!(
        m.value("messaging_process_duration_seconds_count", &process),
        40.0
    );
    assert_eq!(
        m.value(
            "messaging_process_duration_seconds_count",
            &[("error_type", "_OTHER")]
        ),
        failed
    );
    let acks = [("messaging_operation_name", "ack")];
    assert_eq!(
        m.value("messaging_client_operation_duration_seconds_count", &acks),
        40.0
    );
    let publishes = [("messaging_operation_name", "publish")];
    assert_eq!(
        m.value(
            "messaging_client_operation_duration_seconds_count",
            &publishes
        ),
        40.0
    );

    // The same through the OpenTelemetry SDK.
    let sdk = &fixture.sdk;
    let broker_attrs = [("topic", TOPIC), ("component", "adapter-validation")];
    assert_eq!(
        sdk.counter("hyperfleet_broker_messages_published_total", &broker_attrs),
        40
    );
    assert_eq!(
        sdk.counter("hyperfleet_broker_messages_consumed_total", &broker_attrs),
        40
    );
    assert_eq!(
        sdk.counter(
            "hyperfleet_broker_errors_total",
            &[("error_type", "handler")]
        ),
        10
    );
    assert_eq!(
        sdk.counter(
            "messaging.client.sent.messages",
            &[("messaging.destination.name", TOPIC)]
        ),
        40
    );
    assert_eq!(
        sdk.counter(
            "messaging.client.consumed.messages",
            &[("messaging.destination.subscription.name", SUBSCRIPTION)]
        ),
        40
    );
    let (count, bounds) =
        sdk.histogram_count("hyperfleet_broker_message_duration_seconds", &broker_attrs);
    assert_eq!(count, 40);
    assert_eq!(bounds, [0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0]);
    let (count, _) = sdk.histogram_count("messaging.process.duration", &[("error.type", "_OTHER")]);
    assert_eq!(count, 10);
    let (count, bounds) = sdk.histogram_count(
        "messaging.client.operation.duration",
        &[("messaging.operation.name", "ack")],
    );
    assert_eq!(count, 40);
    assert_eq!(bounds.first(), Some(&0.005));
}

#[tokio::test]
async fn every_exemplar_names_the_span_that_measured_it() {
    let fixture = Fixture::new(Sampler::AlwaysOn);
    fixture.run(12, 3).await;
    let spans = fixture.telemetry.spans();
    let m = fixture.exposition();
    let exemplars = m.exemplars("hyperfleet_broker_message_duration_seconds_bucket");
    assert!(!exemplars.is_empty(), "no exemplar:\n{}", m.text);
    let process: BTreeSet<(String, String)> = spans
        .iter()
        .filter(|s| s.name == "adapter.process")
        .map(|s| {
            (
                s.span_context.trace_id().to_string(),
                s.span_context.span_id().to_string(),
            )
        })
        .collect();
    let publish: BTreeSet<(String, String)> = spans
        .iter()
        .filter(|s| s.name == "hyperfleet-clusters publish")
        .map(|s| {
            (
                s.span_context.trace_id().to_string(),
                s.span_context.span_id().to_string(),
            )
        })
        .collect();
    let ids = |e: &std::collections::BTreeMap<String, String>| {
        (e["trace_id"].clone(), e["span_id"].clone())
    };
    for exemplar in exemplars
        .iter()
        .chain(&m.exemplars("messaging_process_duration_seconds_bucket"))
    {
        assert!(
            process.contains(&ids(exemplar)),
            "{exemplar:?} is no process span"
        );
    }
    let operations: Vec<_> = m
        .matching(
            "messaging_client_operation_duration_seconds_bucket",
            &[("messaging_operation_name", "publish")],
        )
        .filter_map(|s| s.exemplar.clone())
        .collect();
    assert!(!operations.is_empty());
    for exemplar in &operations {
        assert!(
            publish.contains(&ids(exemplar)),
            "{exemplar:?} is no publish span"
        );
    }
}

#[tokio::test]
async fn unsampled_spans_leave_counts_but_no_exemplar() {
    let fixture = Fixture::new(Sampler::AlwaysOff);
    fixture.run(5, 100).await;
    let m = fixture.exposition();
    assert_eq!(
        m.value("hyperfleet_broker_messages_consumed_total", &[]),
        5.0
    );
    assert_eq!(
        m.value("hyperfleet_broker_message_duration_seconds_count", &[]),
        5.0
    );
    assert!(
        m.samples.iter().all(|s| s.exemplar.is_none()),
        "an unsampled trace cannot be opened:\n{}",
        m.text
    );
}

#[tokio::test]
async fn failed_publishes_are_counted_by_kind_and_error_type() {
    let fixture = Fixture::new(Sampler::AlwaysOn);
    let publisher = TracedPublisher::new(fixture.transport.clone(), "no-such-topic").settings(
        Settings::new()
            .tracer_provider(&fixture.telemetry.provider)
            .metrics(fixture.metrics.clone()),
    );
    let error = publisher
        .publish(support::events::reconcile_event("c1"))
        .await
        .unwrap_err();
    let m = fixture.exposition();
    let topic = [("topic", "no-such-topic")];
    assert_eq!(
        m.value("hyperfleet_broker_messages_published_total", &topic),
        0.0
    );
    assert_eq!(
        m.value(
            "hyperfleet_broker_errors_total",
            &[("topic", "no-such-topic"), ("error_type", "publish")]
        ),
        1.0
    );
    let failed = [
        ("messaging_destination_name", "no-such-topic"),
        ("error_type", error.error_type()),
    ];
    assert_eq!(
        m.value("messaging_client_sent_messages_total", &failed),
        1.0
    );
    assert_eq!(
        m.value("messaging_client_operation_duration_seconds_count", &failed),
        1.0
    );
}

#[tokio::test]
async fn undecodable_deliveries_count_as_conversion_errors_one_per_receive_span() {
    let fixture = Fixture::new(Sampler::AlwaysOn);
    fixture
        .transport
        .publish(TOPIC, Message::new("garbage"))
        .await
        .unwrap();
    fixture
        .publisher()
        .publish(support::events::reconcile_event("c1"))
        .await
        .unwrap();
    support::memory::handle(fixture.subscriber().concurrency(1), 1, |_| Ok(())).await;
    let undecodable = fixture
        .telemetry
        .spans()
        .iter()
        .filter(|s| {
            s.attributes.iter().any(|kv| {
                kv.key.as_str() == "error.type" && kv.value.as_str() == "not_a_cloudevent"
            })
        })
        .count();
    assert!(undecodable >= 1);
    let m = fixture.exposition();
    assert_eq!(
        m.value(
            "hyperfleet_broker_errors_total",
            &[("error_type", "conversion")]
        ),
        undecodable as f64
    );
    // Every delivery is consumed, decodable or not.
    assert_eq!(
        m.value("hyperfleet_broker_messages_consumed_total", &[]),
        undecodable as f64 + 1.0
    );
    let nacks = [("messaging_operation_name", "nack")];
    assert_eq!(
        m.value("messaging_client_operation_duration_seconds_count", &nacks),
        undecodable as f64
    );
}

#[tokio::test]
async fn disabled_metrics_record_nothing_and_messages_still_flow() {
    let fixture = Fixture::new(Sampler::AlwaysOn);
    let publisher = TracedPublisher::new(fixture.transport.clone(), TOPIC).settings(
        Settings::new()
            .tracer_provider(&fixture.telemetry.provider)
            .metrics(Metrics::disabled()),
    );
    publisher
        .publish(support::events::reconcile_event("c1"))
        .await
        .unwrap();
    assert!(!Metrics::disabled().is_enabled());
    assert_eq!(
        fixture
            .exposition()
            .value("hyperfleet_broker_messages_published_total", &[]),
        0.0
    );
    assert_eq!(fixture.transport.backlog(SUBSCRIPTION).unwrap(), 1);
}
