//! The CloudEvent extension carrier: what is written, what is read, what is skipped.

use cloudevents::event::ExtensionValue;
use cloudevents::{Event, EventBuilder, EventBuilderV10};
use hyperfleet_tracing::carrier::EventExtractor;
use hyperfleet_tracing::carrier::EventInjector;
use hyperfleet_tracing::carrier::extract;
use hyperfleet_tracing::carrier::inject;
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

/// A context that updates a received list: its member moves to the front, the received order
/// of the rest is kept, members the API cannot hold stay, and at most 32 are written.
#[test]
fn an_updated_tracestate_moves_its_member_to_the_front_and_keeps_32() {
    use hyperfleet_tracing::carrier::W3cTraceContext;
    use opentelemetry::propagation::TextMapPropagator;
    use std::collections::HashMap;

    let mut members = vec!["foo@@bar=1".to_owned()];
    members.extend((1..32).map(|i| format!("k{i:02}=v")));
    let received = HashMap::from([
        ("traceparent".to_owned(), VALID.to_owned()),
        ("tracestate".to_owned(), members.join(",")),
    ]);
    let cx = W3cTraceContext.extract(&received);
    let sc = cx.span().span_context().clone();
    assert_eq!(
        sc.trace_state().get("foo@@bar"),
        None,
        "the API cannot hold it"
    );
    let rewritten = |state: TraceState| {
        let updated = SpanContext::new(sc.trace_id(), sc.span_id(), sc.trace_flags(), true, state);
        let mut out = HashMap::new();
        W3cTraceContext.inject_context(&cx.with_remote_span_context(updated), &mut out);
        out["tracestate"].clone()
    };

    let unchanged = rewritten(sc.trace_state().clone());
    assert_eq!(unchanged, members.join(","));

    let updated = rewritten(sc.trace_state().insert("k05", "new").unwrap());
    let mut expected = vec!["k05=new".to_owned()];
    expected.extend(members.iter().filter(|m| !m.starts_with("k05=")).cloned());
    assert_eq!(updated, expected.join(","));

    let added = rewritten(sc.trace_state().insert("added", "1").unwrap());
    let mut expected = vec!["added=1".to_owned()];
    expected.extend(members[..31].iter().cloned());
    assert_eq!(added, expected.join(","), "the right-most member goes");

    let deleted = rewritten(sc.trace_state().delete("k01").unwrap());
    let expected: Vec<&str> = members
        .iter()
        .map(String::as_str)
        .filter(|m| !m.starts_with("k01="))
        .collect();
    assert_eq!(deleted, expected.join(","));
}

/// A new trace does not carry the received list or the random flag.
#[test]
fn a_new_trace_drops_what_was_received() {
    use hyperfleet_tracing::carrier::W3cTraceContext;
    use opentelemetry::propagation::TextMapPropagator;
    use std::collections::HashMap;

    let received = HashMap::from([
        ("traceparent".to_owned(), VALID.replace("-01", "-02")),
        ("tracestate".to_owned(), "foo@@bar=1".to_owned()),
    ]);
    let cx = W3cTraceContext.extract(&received);
    let other = SpanContext::new(
        TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap(),
        SpanId::from_hex("00f067aa0ba902b7").unwrap(),
        TraceFlags::default(),
        false,
        TraceState::default(),
    );
    let mut out = HashMap::new();
    W3cTraceContext.inject_context(&cx.with_remote_span_context(other), &mut out);
    assert_eq!(
        out["traceparent"],
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"
    );
    assert_eq!(out["tracestate"], "");
}
