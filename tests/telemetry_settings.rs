//! `Telemetry::settings`: the settings a component's publishers and subscribers take from its
//! telemetry, with the speed options its sampler allows decided from the configuration.

use hyperfleet_tracing::telemetry::{self, Component, Config};
use hyperfleet_tracing::transport::memory::MemoryTransport;
use hyperfleet_tracing::{PublishOptions, TracedPublisher};
use opentelemetry::Context;
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanProcessor};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Counts the recording spans that end, sampled or not: the spans the SDK made.
#[derive(Debug, Clone, Default)]
struct Ended(Arc<AtomicUsize>);

impl SpanProcessor for Ended {
    fn on_start(&self, _: &mut opentelemetry_sdk::trace::Span, _: &Context) {}
    fn on_end(&self, _: SpanData) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }
    fn shutdown_with_timeout(&self, _: Duration) -> OTelSdkResult {
        Ok(())
    }
}

/// Publishes one event under a valid parent that its root did not sample, with the settings
/// of a telemetry configured by `vars`; the recording spans made (an errors rule records a
/// span the sampler dropped, to keep it if it fails).
async fn recorded_under_an_unsampled_parent(vars: &[(&str, &str)]) -> usize {
    let config = Config::from_lookup("hyperfleet-sentinel", |k| {
        vars.iter()
            .find(|(key, _)| *key == k)
            .map(|(_, v)| v.to_string())
    })
    .unwrap();
    let ended = Ended::default();
    let telemetry = telemetry::builder(Component::Sentinel)
        .config(config)
        .with_span_processor(ended.clone())
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
    assert!(!published.trace_context.is_sampled());
    ended.0.load(Ordering::SeqCst)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parent_based_sampler_without_rules_makes_no_span_under_an_unsampled_parent() {
    let recorded = recorded_under_an_unsampled_parent(&[
        ("OTEL_TRACES_EXPORTER", "none"),
        ("OTEL_METRICS_EXPORTER", "none"),
        ("HYPERFLEET_TRACING_ALWAYS_SAMPLE_ERRORS", "false"),
    ])
    .await;
    assert_eq!(recorded, 0, "no span made under the unsampled parent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_errors_rule_keeps_the_span_that_could_still_fail() {
    // The default configuration: the errors rule records spans the sampler dropped.
    let recorded = recorded_under_an_unsampled_parent(&[
        ("OTEL_TRACES_EXPORTER", "none"),
        ("OTEL_METRICS_EXPORTER", "none"),
    ])
    .await;
    assert_eq!(
        recorded, 1,
        "a publish span of its own, which the rule may keep"
    );
}
