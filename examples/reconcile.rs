//! A small HyperFleet reconciliation on the embedded defaults: a Sentinel polls, evaluates two
//! clusters and publishes a `com.redhat.hyperfleet.cluster.reconcile` CloudEvent for each to
//! `hyperfleet-clusters` on the in-memory Pub/Sub; a validation and a provisioning adapter each
//! receive both on their own subscription and process them. Then every trace is printed as a tree.
//!
//! Run it with `cargo run --example reconcile`. Telemetry comes from the standard's variables
//! through the crate's bootstrap, so log lines are JSON with `trace_id`/`span_id`, and
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_TRACES_EXPORTER=console`) sends the spans on as well.
//! Without either, spans are only collected in memory for the tree at the end.

use cloudevents::{EventBuilder, EventBuilderV10};
use hyperfleet_tracing::attributes::{
    HYPERFLEET_CLUSTER_ID, HYPERFLEET_DECISION_REASON, HYPERFLEET_RESOURCE_ID,
    HYPERFLEET_RESOURCE_TYPE,
};
use hyperfleet_tracing::subscriber::{HandlerError, Received};
use hyperfleet_tracing::telemetry::{self, Component, Config};
use hyperfleet_tracing::transport::SubscriptionConfig;
use hyperfleet_tracing::transport::memory::MemoryTransport;
use hyperfleet_tracing::{PublishOptions, TracedPublisher, TracedSubscriber};
use opentelemetry::trace::{SpanId, TraceContextExt, Tracer, TracerProvider};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::{
    InMemorySpanExporter, SdkTracerProvider, SimpleSpanProcessor, SpanData,
};
use std::collections::BTreeMap;
use std::time::Duration;

const TOPIC: &str = "hyperfleet-clusters";
const CLUSTERS: [(&str, i64); 2] = [
    ("2f5c7d1e-0000-4000-8000-000000000001", 3),
    ("2f5c7d1e-0000-4000-8000-000000000002", 7),
];

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let exporter = InMemorySpanExporter::default();
    let guard = telemetry::builder(Component::Sentinel)
        .version(env!("CARGO_PKG_VERSION"))
        .config(Config::from_lookup(
            Component::Sentinel.service_name(),
            example_environment,
        )?)
        .with_span_processor(SimpleSpanProcessor::new(exporter.clone()))
        .install()?;
    let provider = guard
        .tracer_provider()
        .ok_or("tracing is disabled: there is no trace to show")?
        .clone();

    let transport = MemoryTransport::new();
    transport.create_topic(TOPIC)?;
    let adapters = ["validation", "provisioning"];
    for adapter in adapters {
        let subscription = format!("hyperfleet-dev-clusters-{adapter}-adapter");
        transport.create_subscription(&subscription, TOPIC, SubscriptionConfig::default())?;
    }

    sentinel_poll(&transport, &provider).await?;

    for adapter in adapters {
        run_adapter(&transport, &provider, adapter).await?;
    }

    provider.force_flush()?;
    print_traces(&exporter.get_finished_spans()?);
    drop(guard);
    Ok(())
}

/// The process environment, except that with no collector configured the OTLP exporter is
/// off: the example runs on embedded defaults.
fn example_environment(key: &str) -> Option<String> {
    let configured = |k: &str| std::env::var_os(k).is_some();
    if key == "OTEL_TRACES_EXPORTER"
        && !configured(key)
        && !configured("OTEL_EXPORTER_OTLP_ENDPOINT")
        && !configured("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    {
        return Some("none".to_owned());
    }
    std::env::var(key).ok()
}

/// `sentinel.poll` → `sentinel.evaluate` per cluster → `hyperfleet-clusters publish`.
async fn sentinel_poll(
    transport: &MemoryTransport,
    provider: &SdkTracerProvider,
) -> Result<(), Box<dyn std::error::Error>> {
    let tracer = provider.tracer("hyperfleet-sentinel");
    let publisher = TracedPublisher::new(transport.clone(), TOPIC).tracer_provider(provider);
    let poll = Context::new().with_span(tracer.start("sentinel.poll"));
    let _attached = poll.clone().attach();
    for (cluster, generation) in CLUSTERS {
        let evaluate = tracer
            .span_builder("sentinel.evaluate")
            .with_attributes([
                KeyValue::new(HYPERFLEET_RESOURCE_TYPE, "clusters"),
                KeyValue::new(HYPERFLEET_RESOURCE_ID, cluster),
                KeyValue::new(HYPERFLEET_CLUSTER_ID, cluster),
                KeyValue::new(HYPERFLEET_DECISION_REASON, "generation_changed"),
            ])
            .start_with_context(&tracer, &poll);
        let evaluate = poll.with_span(evaluate);
        let _in_evaluate = evaluate.clone().attach();
        let event = EventBuilderV10::new()
            .id(format!("0193a1b2-0000-7000-8000-00000000000{generation}"))
            .source("hyperfleet-sentinel")
            .ty("com.redhat.hyperfleet.cluster.reconcile")
            .data(
                "application/json",
                serde_json::json!({
                    "id": cluster,
                    "kind": "Cluster",
                    "href": format!("/api/hyperfleet/v1/clusters/{cluster}"),
                    "generation": generation,
                }),
            )
            .build()?;
        let published = publisher
            .publish_with(event, PublishOptions::new().parent(evaluate.clone()))
            .await?;
        tracing::info!(
            cluster_id = cluster,
            message_id = published.message_id,
            topic = TOPIC,
            "published reconcile event"
        );
        evaluate.span().end();
    }
    poll.span().end();
    Ok(())
}

/// Receives both events on the adapter's subscription, processes each, then shuts down.
async fn run_adapter(
    transport: &MemoryTransport,
    provider: &SdkTracerProvider,
    adapter: &'static str,
) -> Result<(), Box<dyn std::error::Error>> {
    let (done, mut handled) = tokio::sync::mpsc::unbounded_channel::<()>();
    let tracer = provider.tracer(format!("hyperfleet-adapter-{adapter}"));
    let handler = move |received: Received| {
        let done = done.clone();
        let tracer = tracer.clone();
        async move {
            let cx = Context::current();
            // The adapter's own work, a child of adapter.process.
            let span = tracer.start_with_context(format!("{adapter}.check"), &cx);
            tokio::time::sleep(Duration::from_millis(2)).await;
            drop(span);
            tracing::info!(
                adapter,
                generation = generation(&received),
                "reconciled cluster"
            );
            let _ = done.send(());
            Ok::<(), HandlerError>(())
        }
    };
    let shutdown = async move {
        for _ in 0..CLUSTERS.len() {
            handled.recv().await;
        }
    };
    TracedSubscriber::new(
        transport.clone(),
        TOPIC,
        format!("hyperfleet-dev-clusters-{adapter}-adapter"),
    )
    .adapter(adapter)
    .tracer_provider(provider)
    .run(handler, shutdown)
    .await?;
    Ok(())
}

fn generation(received: &Received) -> i64 {
    match received.event.data() {
        Some(cloudevents::Data::Json(data)) => data["generation"].as_i64().unwrap_or_default(),
        _ => 0,
    }
}

/// Prints every trace as a tree: span name, kind and duration, indented by parentage.
fn print_traces(spans: &[SpanData]) {
    let mut traces: BTreeMap<String, Vec<&SpanData>> = BTreeMap::new();
    for span in spans {
        traces
            .entry(span.span_context.trace_id().to_string())
            .or_default()
            .push(span);
    }
    for (trace_id, mut spans) in traces {
        spans.sort_by_key(|s| s.start_time);
        println!("\ntrace {trace_id} ({} spans)", spans.len());
        let ids: Vec<SpanId> = spans.iter().map(|s| s.span_context.span_id()).collect();
        for root in spans.iter().filter(|s| !ids.contains(&s.parent_span_id)) {
            print_subtree(root, &spans, 1);
        }
    }
}

fn print_subtree(span: &SpanData, spans: &[&SpanData], depth: usize) {
    let micros = span
        .end_time
        .duration_since(span.start_time)
        .map(|d| d.as_micros())
        .unwrap_or_default();
    let label = format!("{}{}", "  ".repeat(depth), span.name);
    println!(
        "{label:<56} {:<9} {micros:>7} µs",
        format!("{:?}", span.span_kind)
    );
    for child in spans
        .iter()
        .filter(|s| s.parent_span_id == span.span_context.span_id())
    {
        print_subtree(child, spans, depth + 1);
    }
}
