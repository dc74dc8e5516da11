//! Always-sample rules: listed resources, errors and slow spans survive a head sampler that
//! drops everything; the rest does not.

use hyperfleet_tracing::telemetry::sampling::{AlwaysSampleRules, TailRulesProcessor};
use opentelemetry::KeyValue;
use opentelemetry::trace::{Span, Status, Tracer, TracerProvider};
use opentelemetry_sdk::trace::{
    InMemorySpanExporter, Sampler, SdkTracerProvider, SimpleSpanProcessor,
};
use std::time::{Duration, SystemTime};

fn provider(errors: bool, slow: Option<Duration>) -> (SdkTracerProvider, InMemorySpanExporter) {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_sampler(AlwaysSampleRules::new(
            Sampler::AlwaysOff,
            ["c-keep".to_owned()],
            errors || slow.is_some(),
        ))
        .with_span_processor(TailRulesProcessor::new(
            SimpleSpanProcessor::new(exporter.clone()),
            errors,
            slow,
        ))
        .build();
    (provider, exporter)
}

fn names(exporter: &InMemorySpanExporter) -> Vec<String> {
    let mut names: Vec<String> = exporter
        .get_finished_spans()
        .unwrap()
        .into_iter()
        .map(|s| s.name.into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn kept_and_dropped() {
    let (provider, exporter) = provider(true, Some(Duration::from_millis(100)));
    let tracer = provider.tracer("test");

    tracer.start("ordinary").end();
    tracer
        .span_builder("listed cluster")
        .with_attributes([KeyValue::new("hyperfleet.cluster_id", "c-keep")])
        .start(&tracer)
        .end();
    tracer
        .span_builder("other cluster")
        .with_attributes([KeyValue::new("hyperfleet.resource_id", "c-other")])
        .start(&tracer)
        .end();
    let mut failed = tracer.start("failed");
    failed.set_status(Status::error("boom"));
    failed.end();
    let mut server_error = tracer.start("GET 503");
    server_error.set_attribute(KeyValue::new("http.response.status_code", 503));
    server_error.end();
    let mut not_found = tracer.start("GET 404");
    not_found.set_attribute(KeyValue::new("http.response.status_code", 404));
    not_found.end();
    // Slow without waiting: the span says it started a second ago.
    tracer
        .span_builder("slow")
        .with_start_time(SystemTime::now() - Duration::from_secs(1))
        .start(&tracer)
        .end();

    assert_eq!(
        names(&exporter),
        vec!["GET 503", "failed", "listed cluster", "slow"]
    );
    let spans = exporter.get_finished_spans().unwrap();
    assert!(
        spans.iter().all(|s| s.span_context.is_sampled()),
        "kept spans are exported as sampled"
    );
}

#[test]
fn rules_off_drop_errors_too() {
    let (provider, exporter) = provider(false, None);
    let tracer = provider.tracer("test");
    let mut failed = tracer.start("failed");
    assert!(
        !failed.is_recording(),
        "with no tail rule, dropped spans are not even recorded"
    );
    failed.set_status(Status::error("boom"));
    failed.end();
    tracer
        .span_builder("listed cluster")
        .with_attributes([KeyValue::new("hyperfleet.cluster_id", "c-keep")])
        .start(&tracer)
        .end();
    assert_eq!(names(&exporter), vec!["listed cluster"]);
}
