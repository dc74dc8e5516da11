//! Log lines carry the trace: the handler's `tracing` spans nest under the process span in the
//! exported trace, and its log lines name that trace, the span and the message.

mod support;

use cloudevents::{AttributesReader, EventBuilder, EventBuilderV10};
use hyperfleet_tracing::Settings;
use hyperfleet_tracing::telemetry::{self, Component, Config};
use hyperfleet_tracing::transport::SubscriptionConfig;
use hyperfleet_tracing::transport::memory::MemoryTransport;
use hyperfleet_tracing::{HandlerError, Received};
use hyperfleet_tracing::{TracedPublisher, TracedSubscriber};
use std::collections::HashMap;
use support::capture::Captured;
use support::otlp_receiver::OtlpReceiver;
use tracing::instrument::WithSubscriber;

fn telemetry(vars: &[(&str, String)], logs: &Captured) -> telemetry::Telemetry {
    let vars: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    let config =
        Config::from_lookup("hyperfleet-adapter-validation", |k| vars.get(k).cloned()).unwrap();
    telemetry::builder(Component::ValidationAdapter)
        .version("v9.9.9")
        .config(config)
        .log_writer(logs.clone())
        .build()
        .unwrap()
}

#[tracing::instrument(name = "validate_cluster", skip_all, fields(cluster_id = %cluster))]
async fn validate(cluster: String) {
    tracing::warn!(resource_type = "clusters", "validated");
}

/// Publishes one event and handles it with a handler that logs and calls `validate`.
async fn publish_and_handle(
    provider: Option<&opentelemetry_sdk::trace::SdkTracerProvider>,
) -> String {
    let transport = MemoryTransport::new();
    transport.create_topic("hyperfleet-clusters").unwrap();
    transport
        .create_subscription(
            "validation-sub",
            "hyperfleet-clusters",
            SubscriptionConfig::default(),
        )
        .unwrap();
    let mut settings = Settings::new().adapter("validation");
    if let Some(provider) = provider {
        settings = settings.tracer_provider(provider);
    }
    let publisher =
        TracedPublisher::new(transport.clone(), "hyperfleet-clusters").settings(settings.clone());
    let subscriber = TracedSubscriber::new(transport, "validation-sub", "hyperfleet-clusters")
        .settings(settings);
    let event = EventBuilderV10::new()
        .id("event-1")
        .source("hyperfleet-sentinel")
        .ty("com.redhat.hyperfleet.cluster.reconcile")
        .data(
            "application/json",
            serde_json::json!({"id": "c1", "kind": "Cluster", "generation": 1}),
        )
        .build()
        .unwrap();
    publisher.publish(event).await.unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    subscriber
        .run(
            move |received: Received| {
                let tx = tx.clone();
                async move {
                    tracing::info!(cluster_id = "c1", "received cluster event");
                    tracing::info!(trace_id = "forged", component = "forged", "forging attempt");
                    tracing::debug!("a debug line");
                    validate(received.event.id().to_owned()).await;
                    let _ = tx.send(());
                    Ok::<(), HandlerError>(())
                }
            },
            async move {
                rx.recv().await;
            },
        )
        .await
        .unwrap();
    "event-1".to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_lines_carry_the_trace_and_tracing_spans_join_it() {
    let receiver = OtlpReceiver::start().await;
    let logs = Captured::default();
    let telemetry = telemetry(
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.grpc_address.clone())],
        &logs,
    );
    let provider = telemetry.tracer_provider().unwrap().clone();
    let (dispatch, mut guard) = telemetry.into_subscriber();
    let event_id = publish_and_handle(Some(&provider))
        .with_subscriber(dispatch)
        .await;
    drop(provider);
    guard.shutdown().unwrap();

    let spans = receiver.spans();
    let process = spans
        .iter()
        .find(|s| s.span.name == "adapter.process")
        .expect("process span");
    let validate = spans
        .iter()
        .find(|s| s.span.name == "validate_cluster")
        .expect("the tracing span is exported");
    assert_eq!(
        validate.parent_span_id(),
        process.span_id(),
        "tracing span nests under the process span"
    );
    assert_eq!(validate.trace_id(), process.trace_id());
    assert_eq!(validate.attribute("cluster_id").as_deref(), Some("event-1"));

    let lines = logs.json_lines();
    let received = lines
        .iter()
        .find(|l| l["message"] == "received cluster event")
        .expect("handler log line");
    assert_eq!(received["level"], "info");
    assert_eq!(received["trace_id"], process.trace_id());
    assert_eq!(received["span_id"], process.span_id());
    assert_eq!(received["event_id"], event_id);
    assert_eq!(received["subscription"], "validation-sub");
    assert_eq!(received["adapter"], "validation");
    assert_eq!(received["cluster_id"], "c1");
    assert_eq!(received["component"], "adapter-validation");
    assert_eq!(received["version"], "v9.9.9");
    assert!(!received["hostname"].as_str().unwrap().is_empty());
    let timestamp = received["timestamp"].as_str().unwrap();
    assert_eq!(
        timestamp.len(),
        24,
        "RFC 3339 UTC with milliseconds: {timestamp}"
    );
    assert!(
        timestamp.ends_with('Z') && timestamp.as_bytes()[19] == b'.',
        "{timestamp}"
    );

    let validated = lines
        .iter()
        .find(|l| l["message"] == "validated")
        .expect("span log line");
    assert_eq!(validated["level"], "warn");
    assert_eq!(
        validated["span_id"],
        validate.span_id(),
        "the line names the tracing span"
    );
    assert_eq!(validated["trace_id"], process.trace_id());
    assert_eq!(validated["resource_type"], "clusters");
    assert!(
        lines.iter().all(|l| l["message"] != "a debug line"),
        "debug written at level info"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_format_and_level_filter() {
    let logs = Captured::default();
    let telemetry = telemetry(
        &[
            ("OTEL_TRACES_EXPORTER", "none".to_owned()),
            ("OTEL_METRICS_EXPORTER", "none".to_owned()),
            ("HYPERFLEET_LOG_FORMAT", "text".to_owned()),
            ("HYPERFLEET_LOG_LEVEL", "warn".to_owned()),
        ],
        &logs,
    );
    let provider = telemetry.tracer_provider().unwrap().clone();
    let (dispatch, _guard) = telemetry.into_subscriber();
    publish_and_handle(Some(&provider))
        .with_subscriber(dispatch)
        .await;
    let lines = logs.lines();
    assert_eq!(lines.len(), 1, "only the warn line passes: {lines:?}");
    let line = &lines[0];
    let (timestamp, rest) = line.split_once(' ').unwrap();
    assert!(timestamp.ends_with('Z'));
    assert!(rest.starts_with("WARN  validated "), "{line}");
    for field in [
        "trace_id=",
        "span_id=",
        "event_id=event-1",
        "subscription=validation-sub",
        "component=adapter-validation",
        "resource_type=clusters",
    ] {
        assert!(line.contains(field), "{field} missing from {line}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_lines_escape_what_could_forge_a_line_or_a_field() {
    let logs = Captured::default();
    let telemetry = telemetry(
        &[
            ("OTEL_TRACES_EXPORTER", "none".to_owned()),
            ("OTEL_METRICS_EXPORTER", "none".to_owned()),
            ("HYPERFLEET_LOG_FORMAT", "text".to_owned()),
        ],
        &logs,
    );
    let (dispatch, _guard) = telemetry.into_subscriber();
    let forged = "e1\n2026-01-01T00:00:00.000Z ERROR forged line level=error\r\u{1b}[2J";
    tracing::dispatcher::with_default(&dispatch, || {
        tracing::info!(
            event_id = forged,
            note = "a b=c \"q\"",
            "handled\nERROR forged"
        );
        // A message is the application's text, which may quote what an event held.
        tracing::info!("got x event_id=forged adapter=evil");
    });
    let lines = logs.lines();
    assert_eq!(lines.len(), 2, "one event, one line: {lines:?}");
    assert!(
        !outside_quotes(&lines[1]).contains("adapter="),
        "a message forged a field: {}",
        lines[1]
    );
    let line = &lines[0];
    assert!(!line.contains('\r') && !line.contains('\u{1b}'), "{line:?}");
    assert!(line.contains(r"handled\nERROR forged"), "{line}");
    assert!(
        line.contains(
            r#"event_id="e1\n2026-01-01T00:00:00.000Z ERROR forged line level=error\r\u{1b}[2J""#
        ),
        "{line}"
    );
    assert!(line.contains(r#"note="a b=c \"q\"""#), "{line}");
    assert!(
        !outside_quotes(line).contains(" level="),
        "a value forged a field: {line}"
    );
}

/// The parts of a logfmt line that are not inside a quoted value.
fn outside_quotes(line: &str) -> String {
    let (mut out, mut quoted, mut escaped) = (String::new(), false, false);
    for c in line.chars() {
        match (quoted, escaped, c) {
            (true, true, _) => escaped = false,
            (true, false, '\\') => escaped = true,
            (_, _, '"') => quoted = !quoted,
            (false, _, c) => out.push(c),
            _ => {}
        }
    }
    out
}
