//! A component configured only through the standard's variables exports the standard's spans
//! to a real OTLP receiver, over gRPC and over HTTP/protobuf, and shutdown flushes them all.

mod support;

use cloudevents::Event;
use hyperfleet_tracing::Settings;
use hyperfleet_tracing::telemetry::{self, Component, Config};
use hyperfleet_tracing::transport::SubscriptionConfig;
use hyperfleet_tracing::transport::memory::MemoryTransport;
use hyperfleet_tracing::{HandlerError, Received};
use hyperfleet_tracing::{PublishOptions, TracedPublisher, TracedSubscriber};
use opentelemetry::Context;
use opentelemetry::trace::{TraceContextExt, Tracer, TracerProvider};
use std::collections::HashMap;
use support::otlp_receiver::{OtlpReceiver, ReceivedSpan};

// OTLP span kinds.
const INTERNAL: i32 = 1;
const CLIENT: i32 = 3;
const PRODUCER: i32 = 4;
const CONSUMER: i32 = 5;

fn event(id: &str) -> Event {
    support::events::reconcile_event(id)
}

/// Runs a Sentinel → memory Pub/Sub → adapter flow with telemetry from `vars`, shuts the
/// telemetry down, and returns what the receiver holds at that moment.
async fn run_flow(vars: &[(&str, String)], shutdown_by_drop: bool) {
    let vars: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    let config = Config::from_lookup("hyperfleet-sentinel", |k| vars.get(k).cloned()).unwrap();
    let telemetry = telemetry::builder(Component::Sentinel)
        .config(config)
        .log_writer(std::io::sink)
        .build()
        .unwrap();
    let provider = telemetry
        .tracer_provider()
        .expect("tracing enabled")
        .clone();
    let (_dispatch, mut guard) = telemetry.into_subscriber();

    let transport = MemoryTransport::new();
    transport.create_topic("hyperfleet-clusters").unwrap();
    transport
        .create_subscription(
            "validation",
            "hyperfleet-clusters",
            SubscriptionConfig::default(),
        )
        .unwrap();
    let publisher = TracedPublisher::new(transport.clone(), "hyperfleet-clusters")
        .settings(Settings::new().tracer_provider(&provider));
    let poll = Context::new().with_span(provider.tracer("sentinel").start("sentinel.poll"));
    publisher
        .publish_with(event("c1"), PublishOptions::new().parent(poll.clone()))
        .await
        .unwrap();
    for result in publisher
        .publish_batch_with(vec![event("c2"), event("c3")], &poll)
        .await
    {
        result.unwrap();
    }
    poll.span().end();

    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    TracedSubscriber::new(transport, "validation", "hyperfleet-clusters")
        .settings(
            Settings::new()
                .tracer_provider(&provider)
                .adapter("validation"),
        )
        .run(
            move |_: Received| {
                let _ = tx.send(());
                async { Ok::<(), HandlerError>(()) }
            },
            async move {
                for _ in 0..3 {
                    rx.recv().await;
                }
            },
        )
        .await
        .unwrap();
    drop(provider);
    if shutdown_by_drop {
        drop(guard);
    } else {
        guard.shutdown().unwrap();
    }
}

fn find<'a>(spans: &'a [ReceivedSpan], name: &str) -> Vec<&'a ReceivedSpan> {
    spans.iter().filter(|s| s.span.name == name).collect()
}

fn check_flow(spans: &[ReceivedSpan]) {
    assert_eq!(
        spans.len(),
        11,
        "every finished span is flushed at shutdown: {:?}",
        spans
            .iter()
            .map(|s| s.span.name.as_str())
            .collect::<Vec<_>>()
    );
    let poll = find(spans, "sentinel.poll")[0];
    let trace_id = poll.trace_id();
    assert!(spans.iter().all(|s| s.trace_id() == trace_id), "one trace");

    let resource = &poll.resource;
    assert_eq!(resource["service.name"], "hyperfleet-sentinel");
    assert_eq!(resource["service.version"], "v1.2.3");
    assert_eq!(resource["deployment.environment"], "production");
    assert_eq!(
        resource["k8s.namespace.name"], "hyper fleet",
        "percent-decoded"
    );
    assert!(!resource["host.name"].is_empty());
    assert_eq!(resource["telemetry.sdk.language"], "rust");

    let publish: Vec<_> = find(spans, "hyperfleet-clusters publish");
    let single = publish
        .iter()
        .find(|s| s.span.kind == PRODUCER)
        .expect("producer publish span");
    assert_eq!(single.parent_span_id(), poll.span_id());
    assert_eq!(
        single.attribute("messaging.operation.type").as_deref(),
        Some("publish")
    );
    let send = publish
        .iter()
        .find(|s| s.span.kind == CLIENT)
        .expect("batch send span");
    let creates = find(spans, "hyperfleet-clusters create");
    assert_eq!(creates.len(), 2);
    let mut linked: Vec<String> = send
        .span
        .links
        .iter()
        .map(|l| support::otlp_receiver::hex(&l.span_id))
        .collect();
    let mut create_ids: Vec<String> = creates.iter().map(|c| c.span_id()).collect();
    linked.sort();
    create_ids.sort();
    assert_eq!(
        linked, create_ids,
        "the send span links to each create span"
    );

    let producers: Vec<String> = creates
        .iter()
        .map(|c| c.span_id())
        .chain([single.span_id()])
        .collect();
    let receives = find(spans, "hyperfleet-clusters receive");
    assert_eq!(receives.len(), 3);
    for receive in &receives {
        assert_eq!(receive.span.kind, CONSUMER);
        assert!(
            producers.contains(&receive.parent_span_id()),
            "receive span not under a producer span"
        );
    }
    let processes = find(spans, "adapter.process");
    assert_eq!(processes.len(), 3);
    for process in &processes {
        assert_eq!(process.span.kind, INTERNAL);
        assert_eq!(
            process.attribute("hyperfleet.adapter").as_deref(),
            Some("validation")
        );
        assert!(
            receives
                .iter()
                .any(|r| r.span_id() == process.parent_span_id())
        );
    }
}

fn vars(endpoint: String, protocol: &str) -> Vec<(&'static str, String)> {
    vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol.to_owned()),
        (
            "OTEL_RESOURCE_ATTRIBUTES",
            "service.version=v1.2.3,deployment.environment=production,k8s.namespace.name=hyper%20fleet".to_owned(),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_over_otlp_grpc_and_flushes_on_shutdown() {
    let receiver = OtlpReceiver::start().await;
    // host:port without a scheme, as the standard's default is written.
    run_flow(&vars(receiver.grpc_address.clone(), "grpc"), false).await;
    check_flow(&receiver.spans());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_over_otlp_http_protobuf_and_flushes_when_the_guard_drops() {
    let receiver = OtlpReceiver::start().await;
    run_flow(
        &vars(format!("http://{}", receiver.http_address), "http/protobuf"),
        true,
    )
    .await;
    check_flow(&receiver.spans());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_collector_does_not_block_the_message_path() {
    // A port nothing listens on: exports fail in the background; publishing and handling go on,
    // and shutdown returns within its timeout.
    let unused = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut vars = vars(unused.to_string(), "grpc");
    vars.push(("OTEL_EXPORTER_OTLP_TIMEOUT", "500".to_owned()));
    let started = std::time::Instant::now();
    run_flow(&vars, false).await;
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "shutdown did not respect its timeout"
    );
}
