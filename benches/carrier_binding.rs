//! Cost of the per-message work this crate adds, each beside its baseline in the same run:
//!
//! - carrier: inject + extract of `traceparent`/`tracestate` on a CloudEvent, against
//!   `opentelemetry-http`'s `HeaderInjector`/`HeaderExtractor` on an `http::HeaderMap` with the
//!   SDK's W3C propagator; with that propagator and with the crate's `W3cTraceContext`;
//! - binding: encode + decode of the real HyperFleet event, structured and binary, against
//!   plain `serde_json` of the same event (the floor).
//!
//! `cargo bench --bench carrier_binding`

use cloudevents::Event;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use hyperfleet_tracing::binding::{Encoding, decode, encode};
use opentelemetry::Context;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use opentelemetry_http::{HeaderExtractor, HeaderInjector};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use std::hint::black_box;
use std::str::FromStr;

fn reconcile_event() -> Event {
    hyperfleet_tracing::testing::reconcile_event(
        "0193a1b2-0000-7000-8000-000000000001",
        "11111111-1111-1111-1111-111111111111",
    )
    .expect("valid event")
}

fn context() -> Context {
    Context::new().with_remote_span_context(SpanContext::new(
        TraceId::from(0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736),
        SpanId::from(0x00f0_67aa_0ba9_02b7),
        TraceFlags::SAMPLED,
        true,
        TraceState::from_str("vendor=abc").expect("valid tracestate"),
    ))
}

fn carrier(c: &mut Criterion) {
    let cx = context();
    let event = reconcile_event();
    let propagator = TraceContextPropagator::new();
    let mut group = c.benchmark_group("carrier inject+extract");
    // Each run starts from a fresh copy of the event, made outside the timed part, as the
    // baseline starts from an empty header map.
    group.bench_function(
        "cloudevent, same propagator (inject_with/extract_with)",
        |b| {
            b.iter_batched_ref(
                || event.clone(),
                |event| {
                    hyperfleet_tracing::carrier::inject_with(&propagator, black_box(&cx), event);
                    black_box(hyperfleet_tracing::carrier::extract_with(
                        &propagator,
                        event,
                    ))
                },
                BatchSize::SmallInput,
            )
        },
    );
    group.bench_function("cloudevent, configured propagator (inject/extract)", |b| {
        b.iter_batched_ref(
            || event.clone(),
            |event| {
                hyperfleet_tracing::carrier::inject(black_box(&cx), event);
                black_box(hyperfleet_tracing::carrier::extract(event))
            },
            BatchSize::SmallInput,
        )
    });
    let codec = hyperfleet_tracing::carrier::W3cTraceContext::new();
    group.bench_function("cloudevent, the crate's W3C codec (W3cTraceContext)", |b| {
        b.iter_batched_ref(
            || event.clone(),
            |event| {
                hyperfleet_tracing::carrier::inject_with(&codec, black_box(&cx), event);
                black_box(hyperfleet_tracing::carrier::extract_with(&codec, event))
            },
            BatchSize::SmallInput,
        )
    });
    // What any propagator must do on this carrier with this API: write two extensions, read
    // them back, build the `TraceState` and the remote `Context`, with no parsing at all.
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    group.bench_function(
        "floor: set and read two extensions, build the TraceState and Context",
        |b| {
            b.iter_batched_ref(
                || event.clone(),
                |event| {
                    event.set_extension("traceparent", String::from(black_box(traceparent)));
                    event.set_extension("tracestate", String::from(black_box("vendor=abc")));
                    black_box((
                        event.extension("traceparent"),
                        event.extension("tracestate"),
                    ));
                    let state = TraceState::from_key_value([("vendor", "abc")]).expect("valid");
                    black_box(Context::new().with_remote_span_context(SpanContext::new(
                        TraceId::from(0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736),
                        SpanId::from(0x00f0_67aa_0ba9_02b7),
                        TraceFlags::SAMPLED,
                        true,
                        state,
                    )))
                },
                BatchSize::SmallInput,
            )
        },
    );
    group.bench_function("baseline: http::HeaderMap (opentelemetry-http)", |b| {
        b.iter(|| {
            let mut headers = http::HeaderMap::new();
            propagator.inject_context(black_box(&cx), &mut HeaderInjector(&mut headers));
            black_box(propagator.extract(&HeaderExtractor(&headers)))
        })
    });
    group.finish();
}

fn binding(c: &mut Criterion) {
    let event = reconcile_event();
    let mut group = c.benchmark_group("binding encode+decode");
    for encoding in [Encoding::Structured, Encoding::Binary] {
        group.bench_function(format!("{encoding:?}"), |b| {
            b.iter(|| {
                let message = encode(black_box(&event), encoding).expect("encodes");
                black_box(decode(&message).expect("decodes"))
            })
        });
    }
    group.bench_function("floor: serde_json to_vec + from_slice", |b| {
        b.iter(|| {
            let bytes = serde_json::to_vec(black_box(&event)).expect("serializes");
            black_box(serde_json::from_slice::<Event>(&bytes).expect("parses"))
        })
    });
    group.finish();
}

criterion_group!(benches, carrier, binding);
criterion_main!(benches);
