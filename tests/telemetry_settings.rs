//! `Telemetry::settings`: the settings a component's publishers and subscribers take from its
//! telemetry, with the speed options its sampler allows decided from the configuration.

use hyperfleet_tracing::telemetry::{self, Component, Config};
use hyperfleet_tracing::transport::memory::MemoryTransport;
use hyperfleet_tracing::{PublishOptions, TracedPublisher};
use opentelemetry::Context;
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SimpleSpanProcessor};

/// Publishes one event under a valid parent that its root did not sample, with the settings
/// of a telemetry configured by `vars`; the span id the event carries, and the spans exported.
async fn publish_under_an_unsampled_parent(vars: &[(&str, &str)]) -> (SpanId, usize) {
    let config = Config::from_lookup("hyperfleet-sentinel", |k| {
        vars.iter()
            .find(|(key, _)| *key == k)
            .map(|(_, v)| v.to_string())
    })
    .unwrap();
    let exported = InMemorySpanExporter::default();
    let telemetry = telemetry::builder(Component::Sentinel)
        .config(config)
        .with_span_processor(SimpleSpanProcessor::new(exported.clone()))
        .build()
        .unwrap();
    let transport = MemoryTransport::new();
    transport.create_topic("hyperfleet-clusters").unwrap();
    let publisher =
        TracedPublisher::new(transport, "hyperfleet-clusters").settings(telemetry.settings());
    let upstream = SpanContext::new(
        TraceId::from(0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736),
        SpanId::from(0x00f0_67aa_0ba9_02b7),
        TraceFlags::default(),
        true,
        Default::default(),
    );
    let parent = Context::new().with_remote_span_context(upstream);
    let event = hyperfleet_tracing::testing::reconcile_event("e-1", "c-1").unwrap();
    let published = publisher
        .publish_with(event, PublishOptions::new().parent(parent))
        .await
        .unwrap();
    let spans = exported.get_finished_spans().unwrap().len();
    (published.trace_context.span_id(), spans)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parent_based_sampler_without_rules_makes_no_span_under_an_unsampled_parent() {
    let (carried, exported) = publish_under_an_unsampled_parent(&[
        ("OTEL_TRACES_EXPORTER", "none"),
        ("OTEL_METRICS_EXPORTER", "none"),
        ("HYPERFLEET_TRACING_ALWAYS_SAMPLE_ERRORS", "false"),
    ])
    .await;
    // No span: the event carries the upstream context as it came.
    assert_eq!(carried, SpanId::from(0x00f0_67aa_0ba9_02b7));
    assert_eq!(exported, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_errors_rule_keeps_the_span_that_could_still_fail() {
    // The default configuration: the errors rule records spans the sampler dropped.
    let (carried, _) = publish_under_an_unsampled_parent(&[
        ("OTEL_TRACES_EXPORTER", "none"),
        ("OTEL_METRICS_EXPORTER", "none"),
    ])
    .await;
    assert_ne!(
        carried,
        SpanId::from(0x00f0_67aa_0ba9_02b7),
        "a publish span of its own, which the rule may keep"
    );
}
