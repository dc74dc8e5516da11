//! With a global propagator configured (here tracecontext + baggage), the carrier uses it.
//! Its own test binary: the global propagator is process-wide.

use cloudevents::event::ExtensionValue;
use cloudevents::{EventBuilder, EventBuilderV10};
use opentelemetry::baggage::BaggageExt;
use opentelemetry::propagation::TextMapCompositePropagator;
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use opentelemetry::{Context, KeyValue, global};
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};

#[test]
fn baggage_travels_when_the_baggage_propagator_is_configured() {
    global::set_text_map_propagator(TextMapCompositePropagator::new(vec![
        Box::new(TraceContextPropagator::new()),
        Box::new(BaggagePropagator::new()),
    ]));
    let cx = Context::new()
        .with_remote_span_context(SpanContext::new(
            TraceId::from(1),
            SpanId::from(2),
            TraceFlags::SAMPLED,
            true,
            TraceState::default(),
        ))
        .with_baggage(vec![KeyValue::new("cluster", "c1")]);
    let mut event = EventBuilderV10::new()
        .id("1")
        .source("s")
        .ty("t")
        .build()
        .unwrap();
    hyperfleet_tracing::carrier::inject(&cx, &mut event);
    assert_eq!(
        event.extension("baggage"),
        Some(&ExtensionValue::String("cluster=c1".into()))
    );
    let extracted = hyperfleet_tracing::carrier::extract(&event);
    assert_eq!(
        extracted.baggage().get("cluster").map(|v| v.to_string()),
        Some("c1".to_owned())
    );
    assert_eq!(extracted.span().span_context().trace_id(), TraceId::from(1));
}
