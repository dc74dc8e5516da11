//! The spans of a run held against the messaging conventions' own model (semantic-conventions
//! v1.44.0, derived into `tests/data/semconv/` by `scripts/semconv-table`), under
//! `Conventions::Messaging`: single and batch publish, a handled message, a failed one, an
//! undecodable one, their settlement; on the memory transport, the Pub/Sub emulator and a
//! private RabbitMQ node, and through the push endpoint; every span and every messaging
//! metric data point. The checker's own
//! test shows it fails on a wrong kind
//! and on an attribute outside the registry.

mod support;

use hyperfleet_tracing::settings::Conventions;
use hyperfleet_tracing::testing::TestMetrics;
use hyperfleet_tracing::testing::TestTelemetry;
use hyperfleet_tracing::transport::{Message, Transport};
use hyperfleet_tracing::{HandlerError, Settings, TracedPublisher, TracedSubscriber};
use opentelemetry::KeyValue;
use opentelemetry::trace::SpanKind;
use support::semconv::{MetricPoints, exported, metric_violations, span_violations, table};

const TOPIC: &str = "hyperfleet-clusters";
const SUBSCRIPTION: &str = "validation";
/// What the memory transport does not have: a server.
const NO_SERVER: &[&str] = &["server.address", "server.port"];

/// Every way a message goes through the memory transport, traced under `Conventions::Messaging`.
async fn memory_run() -> Run {
    let transport = support::memory::with_subscription(TOPIC, SUBSCRIPTION);
    run(transport, TOPIC, SUBSCRIPTION).await
}

/// Spans and metrics recorded in memory, and settings under `Conventions::Messaging` that
/// record into them.
#[cfg(feature = "push")]
fn recorded() -> (TestTelemetry, TestMetrics, Settings) {
    recorded_under(Conventions::Messaging)
}

fn recorded_under(conventions: Conventions) -> (TestTelemetry, TestMetrics, Settings) {
    let telemetry = TestTelemetry::new();
    let metrics = TestMetrics::new();
    let settings = Settings::new()
        .tracer_provider(&telemetry.provider)
        .metrics(metrics.metrics.clone())
        .conventions(conventions);
    (telemetry, metrics, settings)
}

/// Every way a message goes through `transport` from `topic` to `subscription`, traced under
/// `Conventions::Messaging`.
async fn run<T: Transport + Clone + 'static>(transport: T, topic: &str, subscription: &str) -> Run {
    run_under(Conventions::Messaging, transport, topic, subscription).await
}

async fn run_under<T: Transport + Clone + 'static>(
    conventions: Conventions,
    transport: T,
    topic: &str,
    subscription: &str,
) -> Run {
    let (telemetry, metrics, settings) = recorded_under(conventions);
    let publisher = TracedPublisher::new(transport.clone(), topic).settings(settings.clone());
    publisher
        .publish(support::events::reconcile_event("ok"))
        .await
        .unwrap();
    publisher
        .publish(support::events::reconcile_event("fails"))
        .await
        .unwrap();
    let batch = vec![
        support::events::reconcile_event("batch-1"),
        support::events::reconcile_event("batch-2"),
    ];
    for published in publisher.publish_batch(batch).await {
        published.unwrap();
    }
    // With the id hyperfleet-broker gives every message (RabbitMQ assigns none of its own).
    let undecodable = Message {
        data: b"not a cloudevent".to_vec().into(),
        attributes: [(
            "_watermill_message_uuid".to_owned(),
            "undecodable-1".to_owned(),
        )]
        .into(),
        ..Message::default()
    };
    transport.publish(topic, undecodable).await.unwrap();
    let subscriber =
        TracedSubscriber::new(transport.clone(), subscription, topic).settings(settings);
    // Four handler calls: the failure is nacked and comes back; the undecodable message is
    // dead on arrival (no handler call).
    support::memory::handle(subscriber, 5, |id| match id {
        "fails" => Err(HandlerError::from("the cluster API said no")),
        _ => Ok(()),
    })
    .await;
    let metrics = exported(&metrics);
    assert!(
        metrics
            .iter()
            .any(|m| m.name == "messaging.client.sent.messages"),
        "the run recorded no messaging.client.sent.messages"
    );
    Run {
        spans: telemetry.spans(),
        metrics,
    }
}

/// What a run left: its spans, and its metrics' data points.
struct Run {
    spans: Vec<opentelemetry_sdk::trace::SpanData>,
    metrics: Vec<MetricPoints>,
}

impl Run {
    /// Every violation of its spans and metrics for `system`.
    fn violations(&self, system: &str, unavailable: &[&str]) -> std::collections::BTreeSet<String> {
        let table = table();
        let mut found = span_violations(&table, system, &self.spans, unavailable);
        found.extend(metric_violations(
            &table,
            system,
            &self.metrics,
            unavailable,
        ));
        for consumer_side in [
            "messaging.client.consumed.messages",
            "messaging.process.duration",
            "messaging.client.operation.duration",
        ] {
            assert!(
                self.metrics.iter().any(|m| m.name == consumer_side),
                "the run recorded no {consumer_side}"
            );
        }
        found
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_transport_spans_against_the_model() {
    let run = memory_run().await;
    let kinds: std::collections::BTreeSet<_> = run
        .spans
        .iter()
        .map(|s| format!("{:?}", s.span_kind))
        .collect();
    assert_eq!(
        kinds.len(),
        3,
        "producer, client and consumer spans: {kinds:?}"
    );
    let violations = run.violations("gcp_pubsub", NO_SERVER);
    assert!(violations.is_empty(), "{violations:#?}");
}

/// Under `messaging/dup` the spans carry the standard's names beside the current ones (the
/// checker allows the standard's), and the messaging metrics are the same as under
/// `messaging`, beside the standard's own metrics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_transport_under_dup_against_the_model() {
    let transport = support::memory::with_subscription(TOPIC, SUBSCRIPTION);
    let run = run_under(Conventions::MessagingDup, transport, TOPIC, SUBSCRIPTION).await;
    let names: std::collections::BTreeSet<_> =
        run.metrics.iter().map(|m| m.name.as_str()).collect();
    for standard in [
        "hyperfleet_broker_messages_published_total",
        "hyperfleet_broker_messages_consumed_total",
        "hyperfleet_broker_errors_total",
        "hyperfleet_broker_message_duration_seconds",
    ] {
        assert!(names.contains(standard), "{standard} missing: {names:?}");
    }
    let violations = run.violations("gcp_pubsub", NO_SERVER);
    assert!(violations.is_empty(), "{violations:#?}");
}

#[cfg(feature = "pubsub")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pubsub_emulator_spans_against_the_model() {
    use hyperfleet_tracing::transport::SubscriptionConfig;
    let emulated = support::emulator::with_subscription(
        "hyperfleet-semconv",
        "semconv",
        &SubscriptionConfig::default(),
    )
    .await;
    let run = run(
        emulated.transport.clone(),
        &emulated.topic,
        &emulated.subscription,
    )
    .await;
    let violations = run.violations("gcp_pubsub", &[]);
    assert!(violations.is_empty(), "{violations:#?}");
}

#[cfg(feature = "rabbitmq")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_spans_against_the_model() {
    use hyperfleet_tracing::transport::rabbitmq::{RabbitMqConfig, RabbitMqTransport};
    let node = tokio::task::spawn_blocking(support::rabbitmq::RabbitNode::start)
        .await
        .unwrap();
    let transport = RabbitMqTransport::connect(RabbitMqConfig::new(&node.url))
        .await
        .unwrap();
    let queue = RabbitMqConfig::queue_name(TOPIC, SUBSCRIPTION);
    support::rabbitmq::declare_classic(&transport, TOPIC, &queue).await;
    let run = run(transport, TOPIC, &queue).await;
    let violations = run.violations("rabbitmq", &[]);
    assert!(violations.is_empty(), "{violations:#?}");
    // RabbitMQ's own destination names (the model's notes): `{exchange}:{routing key}` on
    // send, `{exchange}:{routing key}:{queue}` on the consumer side, empty parts left out.
    for span in &run.spans {
        let name =
            hyperfleet_tracing::testing::spans::attribute_str(span, "messaging.destination.name");
        let expected = match span.span_kind {
            SpanKind::Producer => TOPIC.to_owned(),
            _ if span.name.starts_with("send") => TOPIC.to_owned(),
            _ => format!("{TOPIC}:{queue}"),
        };
        assert_eq!(name.as_deref(), Some(expected.as_str()), "{}", span.name);
        assert!(
            span.name.ends_with(&format!(" {expected}")),
            "{} is not named after its destination",
            span.name
        );
    }
}

/// The push way in: a handled delivery, a failed one and an undecodable one, posted as Pub/Sub
/// push requests; the endpoint has no server of its own to name.
#[cfg(feature = "push")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_spans_against_the_model() {
    use cloudevents::AttributesReader;
    use hyperfleet_tracing::Received;
    use hyperfleet_tracing::push::PushEndpoint;
    use support::push::{json_headers, post, serve, wrapped_body};
    let (telemetry, metrics, settings) = recorded();
    let endpoint = PushEndpoint::new("validation-push", TOPIC).settings(settings);
    let handler = |received: Received| async move {
        match received.event.id() {
            "fails" => Err(HandlerError::from("the cluster API said no")),
            _ => Ok(()),
        }
    };
    let served = serve(endpoint, handler).await;
    let body = |data: &[u8]| wrapped_body(data, serde_json::json!({}), serde_json::json!({}));
    let event = |id: &str| serde_json::to_vec(&support::events::reconcile_event(id)).unwrap();
    for (data, status) in [
        (event("ok"), 204),
        (event("fails"), 500),
        (b"not a cloudevent".to_vec(), 500),
    ] {
        assert_eq!(
            post(&served.url, &json_headers(), body(&data)).await.0,
            status
        );
    }
    served.stop().await;
    let run = Run {
        spans: telemetry.spans(),
        metrics: exported(&metrics),
    };
    assert!(
        run.spans.iter().any(|s| s.name.starts_with("nack ")),
        "the failures were settled with nack spans"
    );
    let violations = run.violations("gcp_pubsub", NO_SERVER);
    assert!(violations.is_empty(), "{violations:#?}");
}

/// Each deliberate mistake in an otherwise conforming run is reported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_checker_reports_a_wrong_kind_name_type_or_attribute() {
    let table = table();
    let run = memory_run().await;
    let metric_mutated = |mutate: &dyn Fn(&mut MetricPoints)| {
        let mut metrics: Vec<MetricPoints> = run
            .metrics
            .iter()
            .map(|m| MetricPoints {
                name: m.name.clone(),
                unit: m.unit.clone(),
                instrument: m.instrument,
                points: m.points.clone(),
            })
            .collect();
        let consumed = metrics
            .iter_mut()
            .find(|m| m.name == "messaging.client.consumed.messages")
            .expect("the consumed counter");
        mutate(consumed);
        metric_violations(&table, "gcp_pubsub", &metrics, NO_SERVER)
    };
    let unit = metric_mutated(&|m| m.unit = "messages".to_owned());
    assert_reports(&unit, "the conventions say", "the mutation");
    let no_system = metric_mutated(&|m| {
        for point in &mut m.points {
            point.retain(|kv| kv.key.as_str() != "messaging.system");
        }
    });
    assert_reports(&no_system, "messaging.system missing", "the mutation");
    let foreign = metric_mutated(&|m| {
        for point in &mut m.points {
            point.push(KeyValue::new("messaging.message.id", "1"));
        }
    });
    assert_reports(
        &foreign,
        "messaging.message.id is not an attribute of this metric",
        "a per-message attribute on a metric",
    );
    let spans = run.spans;
    let process = spans
        .iter()
        .position(|s| s.span_kind == SpanKind::Consumer)
        .expect("a process span");
    let mutated = |mutate: &dyn Fn(&mut opentelemetry_sdk::trace::SpanData)| {
        let mut spans = spans.clone();
        mutate(&mut spans[process]);
        span_violations(&table, "gcp_pubsub", &spans, NO_SERVER)
    };
    let wrong_kind = mutated(&|span| span.span_kind = SpanKind::Internal);
    assert_reports(&wrong_kind, "no process.internal span", "the mutation");
    let outside = mutated(&|span| {
        span.attributes
            .push(KeyValue::new("messaging.destination.kind", "topic"))
    });
    assert_reports(
        &outside,
        "messaging.destination.kind is outside the registry",
        "the mutation",
    );
    let missing = mutated(&|span| {
        span.attributes
            .retain(|kv| kv.key.as_str() != "messaging.operation.name")
    });
    assert_reports(
        &missing,
        "required messaging.operation.name missing",
        "the mutation",
    );
    let mistyped = mutated(&|span| {
        for kv in &mut span.attributes {
            if kv.key.as_str() == "messaging.operation.type" {
                kv.value = "publish".into();
            }
        }
    });
    assert_reports(
        &mistyped,
        "no publish.consumer span",
        "a deprecated operation type",
    );
    let wrong_value = mutated(&|span| {
        span.attributes.push(KeyValue::new(
            "messaging.gcp_pubsub.message.delivery_attempt",
            "2",
        ))
    });
    assert!(
        wrong_value
            .iter()
            .any(|v| v.contains("delivery_attempt") && v.contains("is not a")),
        "a string where the model says int: {wrong_value:?}"
    );
    let no_id = mutated(&|span| {
        span.attributes
            .retain(|kv| kv.key.as_str() != "messaging.message.id")
    });
    assert_reports(
        &no_id,
        "messaging.message.id missing, though the crate has it",
        "a recommended attribute the crate has, left out",
    );
    let settle = spans
        .iter()
        .position(|s| s.name.starts_with("ack "))
        .expect("an ack span");
    let mut unlinked = spans.clone();
    unlinked[settle].links = Default::default();
    let unlinked = span_violations(&table, "gcp_pubsub", &unlinked, NO_SERVER);
    assert_reports(
        &unlinked,
        "links no receive span",
        "a settle span without its link",
    );
    let receive = spans
        .iter()
        .position(|s| {
            s.name.starts_with("receive ")
                && s.parent_span_id != opentelemetry::trace::SpanId::INVALID
        })
        .expect("a receive span under its creation context");
    let mut unlinked = spans.clone();
    unlinked[receive].links = Default::default();
    let unlinked = span_violations(&table, "gcp_pubsub", &unlinked, NO_SERVER);
    assert_reports(
        &unlinked,
        "does not link its message's creation context",
        "a receive span without its creation link",
    );
    let no_event = mutated(&|span| {
        span.status = opentelemetry::trace::Status::error("failed");
        span.attributes.push(KeyValue::new("error.type", "_OTHER"));
        span.events = Default::default();
    });
    assert_reports(
        &no_event,
        "failed without a messaging.process.exception event",
        "a failed span without its exception event",
    );
    let failed_silently = mutated(&|span| {
        span.status = opentelemetry::trace::Status::error("failed");
        span.attributes.retain(|kv| kv.key.as_str() != "error.type");
    });
    assert_reports(
        &failed_silently,
        "error.type missing",
        "a failed span without error.type",
    );
}

/// The README's table of the opt-in, row by row, against the model: each span it names under
/// `messaging` (operation name first, then its kind) is a span of that operation type and kind
/// in the conventions of both systems.
#[test]
fn the_readme_mapping_agrees_with_the_model() {
    let table = table();
    let readme = include_str!("../README.md");
    // Row, the span names the row's `messaging` column gives, and each one's operation type.
    let rows = [
        ("publish", vec![("send", "send")]),
        ("batch", vec![("create", "create"), ("send", "send")]),
        ("receive", vec![("receive", "receive")]),
        ("process", vec![("subscribe", "process")]),
        ("settle", vec![("ack", "settle"), ("nack", "settle")]),
    ];
    for (row, spans) in rows {
        let line = readme
            .lines()
            .find(|line| line.starts_with(&format!("| {row} |")))
            .unwrap_or_else(|| panic!("the README's mapping has no {row} row"));
        let current = line.split('|').nth(3).expect("a `messaging` column").trim();
        for (name, operation) in spans {
            // The kind the README gives after the span's name: the first one following it.
            let from_name = current
                .find(&format!("`{name} "))
                .unwrap_or_else(|| panic!("{row}: the README names no `{name} …` span: {current}"));
            let kind = ["PRODUCER", "CLIENT", "CONSUMER"]
                .into_iter()
                .filter_map(|kind| current[from_name..].find(kind).map(|at| (at, kind)))
                .min()
                .map(|(_, kind)| kind.to_lowercase())
                .unwrap_or_else(|| panic!("{row}: no kind after `{name}`: {current}"));
            for system in ["gcp_pubsub", "rabbitmq"] {
                let span = format!("{operation}.{kind}");
                assert!(
                    table["spans"][system].get(&span).is_some(),
                    "the README's {row} row says `{name}` is {kind}, which {system}'s conventions \
                     have no {span} span for"
                );
            }
        }
    }
}

/// Asserts that the checker reported a violation containing `needle`; `what` names the
/// mistake made.
fn assert_reports(found: &std::collections::BTreeSet<String>, needle: &str, what: &str) {
    assert!(
        found.iter().any(|v| v.contains(needle)),
        "{what}: no violation mentions {needle:?} in {found:#?}"
    );
}
