//! The CloudEvent extension carrier: what is written, what is read, what is skipped.

use cloudevents::event::ExtensionValue;
use cloudevents::{Event, EventBuilder, EventBuilderV10};
use hyperfleet_tracing::{EventExtractor, EventInjector, extract, inject};
use opentelemetry::Context;
use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use std::str::FromStr;

const VALID: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

fn event() -> Event {
    EventBuilderV10::new()
        .id("1")
        .source("hyperfleet-sentinel")
        .ty("com.redhat.hyperfleet.cluster.reconcile")
        .build()
        .expect("valid event")
}

fn remote(trace_state: &str, flags: TraceFlags) -> Context {
    Context::new().with_remote_span_context(SpanContext::new(
        TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap(),
        SpanId::from_hex("00f067aa0ba902b7").unwrap(),
        flags,
        true,
        TraceState::from_str(trace_state).unwrap(),
    ))
}

fn string_extension(event: &Event, name: &str) -> Option<String> {
    match event.extension(name) {
        Some(ExtensionValue::String(s)) => Some(s.clone()),
        Some(other) => panic!("{name} is not a string: {other:?}"),
        None => None,
    }
}

#[test]
fn inject_writes_traceparent_and_drops_empty_tracestate() {
    let mut event = event();
    inject(&remote("", TraceFlags::SAMPLED), &mut event);
    assert_eq!(
        string_extension(&event, "traceparent").as_deref(),
        Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
    );
    assert_eq!(event.extension("tracestate"), None);
}

#[test]
fn inject_writes_tracestate_and_removes_a_stale_one() {
    let mut event = event();
    inject(&remote("vendor=abc", TraceFlags::SAMPLED), &mut event);
    assert_eq!(
        string_extension(&event, "tracestate").as_deref(),
        Some("vendor=abc")
    );
    inject(&remote("", TraceFlags::default()), &mut event);
    assert_eq!(event.extension("tracestate"), None, "stale tracestate kept");
    assert!(
        string_extension(&event, "traceparent")
            .unwrap()
            .ends_with("-00")
    );
}

#[test]
fn inject_without_a_span_writes_nothing() {
    let mut event = event();
    inject(&Context::new(), &mut event);
    assert_eq!(event.iter_extensions().count(), 0);
}

#[test]
fn injector_skips_names_cloudevents_forbids() {
    let mut event = event();
    let mut injector = EventInjector(&mut event);
    injector.set("X-B3-TraceId", "abc".into());
    injector.set("uber-trace-id", "abc".into());
    injector.set("averyveryverylongextensionname", "abc".into());
    injector.set("Baggage", "k=v".into());
    let names: Vec<_> = event.iter_extensions().map(|(k, _)| k.to_owned()).collect();
    assert_eq!(names, vec!["baggage".to_owned()]);
}

#[test]
fn extract_reads_the_reference_vectors() {
    for (traceparent, sampled) in [
        (
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            true,
        ),
        (
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            true,
        ),
        (
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00",
            false,
        ),
        (
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03",
            true,
        ),
    ] {
        let mut event = event();
        event.set_extension("traceparent", traceparent);
        let cx = extract(&event);
        let span = cx.span();
        let sc = span.span_context();
        assert!(sc.is_valid() && sc.is_remote(), "{traceparent} not read");
        assert_eq!(sc.trace_id().to_string(), traceparent[3..35]);
        assert_eq!(sc.span_id().to_string(), traceparent[36..52]);
        assert_eq!(sc.is_sampled(), sampled, "{traceparent}");
    }
}

#[test]
fn extract_reads_a_higher_version_by_its_first_four_fields() {
    let mut event = event();
    event.set_extension(
        "traceparent",
        "cc-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-future",
    );
    let cx = extract(&event);
    assert_eq!(
        cx.span().span_context().trace_id().to_string(),
        "0af7651916cd43dd8448eb211c80319c"
    );
}

#[test]
fn invalid_values_mean_no_parent() {
    let invalid: Vec<ExtensionValue> = [
        "",
        "0000-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "00-0af7651916cd43dd8448eb211c80319c00-b7ad6b7169203331-01",
        "00-0af7651916cd43dd8448eb211c80319c-00ad6b716920333100-01",
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-0100",
        "00-0af7651916cd43dd8448eb211c80319g-b7ad6b7169203331-01",
        "00-0AF7651916CD43DD8448EB211C80319C-B7AD6B7169203331-01",
        "00-00000000000000000000000000000000-b7ad6b7169203331-01",
        "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-",
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",
        "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-",
        "\n00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    ]
    .into_iter()
    .map(|s| ExtensionValue::String(s.to_owned()))
    .chain([ExtensionValue::Integer(1), ExtensionValue::Boolean(true)])
    .chain([ExtensionValue::String("é".repeat(60))])
    .collect();
    for value in invalid {
        let mut event = event();
        event.set_extension("traceparent", value.clone());
        let cx = extract(&event);
        assert!(
            !cx.span().span_context().is_valid(),
            "{value:?} gave a parent"
        );
    }
}

#[test]
fn whitespace_around_traceparent_is_ignored() {
    for padded in [format!(" {VALID}"), format!("\t{VALID} \t")] {
        let mut event = event();
        event.set_extension("traceparent", padded.as_str());
        let cx = extract(&event);
        assert_eq!(
            cx.span().span_context().span_id().to_string(),
            "b7ad6b7169203331",
            "{padded:?}"
        );
    }
}

#[test]
fn oversized_tracestate_is_dropped_but_the_parent_kept() {
    let members: Vec<String> = (0..33).map(|i| format!("k{i}=v")).collect();
    for tracestate in [members.join(","), format!("k={}", "v".repeat(600))] {
        let mut event = event();
        event.set_extension("traceparent", VALID);
        event.set_extension("tracestate", tracestate);
        let cx = extract(&event);
        let span = cx.span();
        assert!(span.span_context().is_valid());
        assert_eq!(span.span_context().trace_state().header(), "");
    }
    let mut event = event();
    event.set_extension("traceparent", VALID);
    event.set_extension("tracestate", members[..32].join(","));
    assert_eq!(
        extract(&event).span().span_context().trace_state().header(),
        members[..32].join(",")
    );
}

#[test]
fn extractor_keys_list_only_present_string_extensions() {
    let mut event = event();
    event.set_extension("traceparent", VALID);
    event.set_extension("tracestate", "");
    event.set_extension("count", 3i64);
    let extractor = EventExtractor(&event);
    assert_eq!(extractor.keys(), vec!["traceparent"]);
    assert_eq!(extractor.get("TRACEPARENT"), Some(VALID));
    assert_eq!(extractor.get("tracestate"), None);
    assert_eq!(extractor.get("count"), None);
}

#[test]
fn baggage_that_could_not_be_sent_on_over_pubsub_is_ignored() {
    use opentelemetry::baggage::BaggageExt;
    let propagator = opentelemetry_sdk::propagation::BaggagePropagator::new();
    let mut event = event();
    event.set_extension("baggage", format!("k={}", "v".repeat(1100)));
    let cx = hyperfleet_tracing::carrier::extract_with(&propagator, &event);
    assert_eq!(
        cx.baggage().len(),
        0,
        "baggage over 1024 bytes was accepted"
    );
    event.set_extension("baggage", format!("k={}", "v".repeat(1000)));
    let cx = hyperfleet_tracing::carrier::extract_with(&propagator, &event);
    assert_eq!(cx.baggage().len(), 1);
}
