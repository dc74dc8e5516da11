//! Metrics configured only through the OpenTelemetry variables: `/metrics` for Prometheus
//! with exemplars, OTLP to a real receiver (flushed by the guard), clear errors, bounded
//! shutdown.

mod support;

use hyperfleet_tracing::Settings;
use hyperfleet_tracing::telemetry::{self, Component, Config, Telemetry, TelemetryError};
use hyperfleet_tracing::{TracedPublisher, TracedSubscriber};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SimpleSpanProcessor};
use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};
use support::otlp_receiver::OtlpReceiver;

const TOPIC: &str = "hyperfleet-clusters";

fn telemetry(
    vars: &[(&str, &str)],
    spans: Option<InMemorySpanExporter>,
) -> Result<Telemetry, TelemetryError> {
    let vars: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let config = Config::from_lookup("hyperfleet-adapter-validation", |k| vars.get(k).cloned())?;
    let mut builder = telemetry::builder(Component::ValidationAdapter)
        .version("0.4.2")
        .config(config)
        .log_writer(std::io::sink)
        .shutdown_timeout(Duration::from_secs(2));
    if let Some(exporter) = spans {
        builder = builder.with_span_processor(SimpleSpanProcessor::new(exporter));
    }
    builder.build()
}

/// Publishes `n` events and handles them, with the telemetry's tracer provider and metrics.
async fn flow(telemetry: &Telemetry, n: usize) {
    let transport = support::memory::with_subscription(TOPIC, "validation");
    let provider = telemetry.tracer_provider().unwrap();
    let publisher = TracedPublisher::new(transport.clone(), TOPIC).settings(
        Settings::new()
            .tracer_provider(provider)
            .metrics(telemetry.metrics()),
    );
    for i in 0..n {
        publisher
            .publish(support::events::reconcile_event(&format!("c{i}")))
            .await
            .unwrap();
    }
    let subscriber = TracedSubscriber::new(transport, "validation", TOPIC).settings(
        Settings::new()
            .tracer_provider(provider)
            .metrics(telemetry.metrics()),
    );
    support::memory::handle(subscriber, n, |_| Ok(())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_serves_both_families_with_exemplars_until_shutdown() {
    let spans = InMemorySpanExporter::default();
    let telemetry = telemetry(
        &[
            ("OTEL_METRICS_EXPORTER", "prometheus"),
            ("OTEL_EXPORTER_PROMETHEUS_HOST", "127.0.0.1"),
            ("OTEL_EXPORTER_PROMETHEUS_PORT", "0"),
            ("OTEL_TRACES_EXPORTER", "none"),
        ],
        Some(spans.clone()),
    )
    .unwrap();
    let address = telemetry.metrics_address().expect("serving /metrics");
    assert!(
        telemetry.meter_provider().is_none(),
        "no periodic reader was asked for"
    );
    flow(&telemetry, 3).await;

    let m = support::metrics::scrape(address).await;
    let labels = [
        ("component", "adapter-validation"),
        ("version", "0.4.2"),
        ("topic", TOPIC),
    ];
    assert_eq!(
        m.value("hyperfleet_broker_messages_published_total", &labels),
        3.0
    );
    assert_eq!(
        m.value("hyperfleet_broker_messages_consumed_total", &labels),
        3.0
    );
    assert_eq!(m.value("messaging_client_sent_messages_total", &[]), 3.0);
    assert_eq!(
        m.value("messaging_client_consumed_messages_total", &[]),
        3.0
    );
    let exported: BTreeSet<String> = spans
        .get_finished_spans()
        .unwrap()
        .iter()
        .map(|s| s.span_context.trace_id().to_string())
        .collect();
    let exemplars = m.exemplars("hyperfleet_broker_message_duration_seconds");
    assert!(!exemplars.is_empty(), "no exemplar:\n{}", m.text);
    for exemplar in m.exemplars("") {
        assert!(exported.contains(&exemplar["trace_id"]), "{exemplar:?}");
    }

    let (_dispatch, mut guard) = telemetry.into_subscriber();
    assert_eq!(guard.metrics_address(), Some(address));
    guard.shutdown().unwrap();
    assert!(
        tokio::net::TcpStream::connect(address).await.is_err(),
        "/metrics still served after shutdown"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_metrics_reach_a_real_receiver_when_the_guard_flushes() {
    for protocol in ["grpc", "http/protobuf"] {
        let receiver = OtlpReceiver::start().await;
        let endpoint = match protocol {
            "grpc" => format!("http://{}", receiver.grpc_address),
            _ => format!("http://{}", receiver.http_address),
        };
        let telemetry = telemetry(
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol),
                // Far longer than the test: only the guard's flush can export.
                ("OTEL_METRIC_EXPORT_INTERVAL", "600000"),
                (
                    "OTEL_EXPORTER_OTLP_HEADERS",
                    "authorization=Bearer%20s3cret, x-tenant=all",
                ),
                ("OTEL_EXPORTER_OTLP_METRICS_HEADERS", "x-tenant=metrics"),
            ],
            None,
        )
        .unwrap();
        assert!(telemetry.metrics_address().is_none());
        flow(&telemetry, 4).await;
        let (_dispatch, mut guard) = telemetry.into_subscriber();
        guard.shutdown().unwrap();

        let published = receiver.metric("hyperfleet_broker_messages_published_total");
        assert_eq!(
            published.iter().map(|p| p.value).sum::<f64>(),
            4.0,
            "{protocol}"
        );
        let point = &published[0];
        assert_eq!(
            point.resource["service.name"],
            "hyperfleet-adapter-validation"
        );
        assert_eq!(point.attributes["component"], "adapter-validation");
        assert_eq!(point.attributes["version"], "0.4.2");
        assert_eq!(point.attributes["topic"], TOPIC);
        let consumed = receiver.metric("messaging.client.consumed.messages");
        assert_eq!(consumed.iter().map(|p| p.value).sum::<f64>(), 4.0);
        assert_eq!(
            consumed[0].attributes["messaging.destination.subscription.name"],
            "validation"
        );
        let duration = receiver.metric("hyperfleet_broker_message_duration_seconds");
        assert_eq!(duration.iter().map(|p| p.value).sum::<f64>(), 4.0);
        assert_eq!(
            duration[0].bounds,
            [0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0]
        );
        let process = receiver.metric("messaging.process.duration");
        assert_eq!(process.iter().map(|p| p.value).sum::<f64>(), 4.0);

        for headers in receiver.metrics_headers() {
            assert_eq!(headers["authorization"], "Bearer s3cret", "{protocol}");
            assert_eq!(headers["x-tenant"], "metrics", "{protocol}");
        }
        // Each duration histogram's exemplars are spans the receiver got: the process span
        // for the handler's time, the publish span for the publish call's, the receive span
        // for the ack's (the HyperFleet conventions have no settle spans).
        let spans = receiver.spans();
        let exported = |trace_id: &str, span_id: &str| {
            spans
                .iter()
                .find(|s| s.trace_id() == trace_id && s.span_id() == span_id)
                .map(|s| s.span.name.clone())
        };
        let measuring_span = |operation: Option<&str>| match operation {
            Some("publish") => "hyperfleet-clusters publish",
            Some("ack") => "hyperfleet-clusters receive",
            _ => "adapter.process",
        };
        for metric in [
            "hyperfleet_broker_message_duration_seconds",
            "messaging.process.duration",
            "messaging.client.operation.duration",
        ] {
            let points = receiver.metric(metric);
            assert!(
                points.iter().all(|p| !p.exemplars.is_empty()),
                "{protocol}: a {metric} series has no exemplar: {points:?}"
            );
            for point in points {
                let operation = point.attributes.get("messaging.operation.name");
                let expected = measuring_span(operation.map(String::as_str));
                for exemplar in &point.exemplars {
                    assert_eq!(
                        exported(&exemplar.trace_id, &exemplar.span_id).as_deref(),
                        Some(expected),
                        "{protocol}: {metric} {operation:?} {exemplar:?}"
                    );
                    assert!(exemplar.value >= 0.0);
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_exemplars_name_sampled_spans_only() {
    let receiver = OtlpReceiver::start().await;
    let telemetry = telemetry(
        &[
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                &format!("http://{}", receiver.grpc_address),
            ),
            ("OTEL_TRACES_SAMPLER", "always_off"),
            ("OTEL_METRIC_EXPORT_INTERVAL", "600000"),
        ],
        None,
    )
    .unwrap();
    flow(&telemetry, 3).await;
    let (_dispatch, mut guard) = telemetry.into_subscriber();
    guard.shutdown().unwrap();
    let duration = receiver.metric("messaging.process.duration");
    assert_eq!(duration.iter().map(|p| p.value).sum::<f64>(), 3.0);
    assert!(
        duration.iter().all(|p| p.exemplars.is_empty()),
        "{duration:?}"
    );
}

#[test]
fn otlp_grpc_metrics_outside_a_runtime_are_an_error_not_a_panic() {
    let built = telemetry(
        &[
            ("OTEL_TRACES_EXPORTER", "none"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317"),
        ],
        None,
    );
    let Err(error) = built else {
        panic!("built without a runtime to run the gRPC channel on");
    };
    assert!(
        matches!(error, TelemetryError::MetricsExporter { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("Tokio runtime"), "{error}");
}

#[test]
fn otlp_headers_that_cannot_be_sent_are_an_error_naming_the_variable_not_the_value() {
    let vars = [(
        "OTEL_EXPORTER_OTLP_METRICS_HEADERS",
        "authorization=Bearer\u{7f}s3cret",
    )];
    let vars: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let error = Config::from_lookup("svc", |k| vars.get(k).cloned()).unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("OTEL_EXPORTER_OTLP_METRICS_HEADERS"),
        "{message}"
    );
    assert!(message.contains("authorization"), "{message}");
    assert!(!message.contains("s3cret"), "{message}");
    // Without `=`, or the tail of a value whose comma was not percent-encoded: the entry is
    // named by its position, since its text may be the secret.
    for raw in ["Authorization: Bearer s3cret", "x-api-key=abc,s3cret"] {
        let error = Config::from_lookup("svc", |k| {
            (k == "OTEL_EXPORTER_OTLP_HEADERS").then(|| raw.to_owned())
        })
        .unwrap_err();
        let message = error.to_string();
        assert!(message.contains("entry"), "{message}");
        assert!(!message.to_lowercase().contains("s3cret"), "{message}");
    }
    let config = Config::from_lookup("svc", |k| {
        (k == "OTEL_EXPORTER_OTLP_HEADERS").then(|| "authorization=Bearer s3cret".to_owned())
    })
    .unwrap();
    let debug = format!("{config:?}");
    assert!(debug.contains("authorization"), "{debug}");
    assert!(!debug.contains("s3cret"), "{debug}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_already_taken_is_an_error_naming_the_address() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let error = telemetry(
        &[
            ("OTEL_METRICS_EXPORTER", "prometheus"),
            ("OTEL_EXPORTER_PROMETHEUS_HOST", "127.0.0.1"),
            ("OTEL_EXPORTER_PROMETHEUS_PORT", &port),
        ],
        None,
    )
    .unwrap_err();
    assert!(
        matches!(error, TelemetryError::MetricsServer { .. }),
        "{error:?}"
    );
    assert!(
        error.to_string().contains(&format!("127.0.0.1:{port}")),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn none_and_sdk_disabled_record_no_metrics_but_tracing_enabled_false_keeps_them() {
    for vars in [
        &[("OTEL_METRICS_EXPORTER", "none")][..],
        &[
            ("OTEL_SDK_DISABLED", "true"),
            ("OTEL_METRICS_EXPORTER", "prometheus"),
        ][..],
    ] {
        let telemetry = telemetry(vars, None).unwrap();
        assert!(!telemetry.metrics().is_enabled(), "{vars:?}");
        assert!(telemetry.metrics_address().is_none());
    }
    let telemetry = telemetry(
        &[
            ("TRACING_ENABLED", "false"),
            ("OTEL_METRICS_EXPORTER", "prometheus"),
            ("OTEL_EXPORTER_PROMETHEUS_HOST", "127.0.0.1"),
            ("OTEL_EXPORTER_PROMETHEUS_PORT", "0"),
        ],
        None,
    )
    .unwrap();
    assert!(telemetry.tracer_provider().is_none());
    assert!(telemetry.metrics().is_enabled());
    assert!(telemetry.metrics_address().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_is_bounded_when_the_metrics_collector_never_answers() {
    for protocol in ["grpc", "http/protobuf"] {
        // Accepts connections and never answers.
        let stalled = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = stalled.local_addr().unwrap();
        let hold = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = stalled.accept().await {
                held.push(socket);
            }
        });
        let endpoint = format!("http://{address}");
        let telemetry = telemetry(
            &[
                ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", &endpoint),
                ("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", protocol),
                ("OTEL_EXPORTER_OTLP_TIMEOUT", "60000"),
                ("OTEL_TRACES_EXPORTER", "none"),
            ],
            None,
        )
        .unwrap();
        flow(&telemetry, 2).await;
        let (_dispatch, mut guard) = telemetry.into_subscriber();
        let started = Instant::now();
        let result = guard.shutdown();
        let took = started.elapsed();
        assert!(
            took < Duration::from_secs(4),
            "{protocol}: shutdown took {took:?}"
        );
        assert!(
            result.is_err(),
            "{protocol}: a flush that did not happen must not pass for one"
        );
        hold.abort();
    }
}
