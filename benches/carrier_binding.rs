//! Cost of the per-message work this crate adds: carrier inject + extract on a CloudEvent, and
//! binding encode + decode of the real HyperFleet event in both encodings.
//!
//! `cargo bench --bench carrier_binding`

use cloudevents::{Event, EventBuilder, EventBuilderV10};
use criterion::{Criterion, criterion_group, criterion_main};
use hyperfleet_tracing::binding::{Encoding, decode, encode};
use opentelemetry::Context;
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use std::hint::black_box;
use std::str::FromStr;

fn reconcile_event() -> Event {
    EventBuilderV10::new()
        .id("0193a1b2-0000-7000-8000-000000000001")
        .source("hyperfleet-sentinel")
        .ty("com.redhat.hyperfleet.cluster.reconcile")
        .data(
            "application/json",
            serde_json::json!({
                "id": "11111111-1111-1111-1111-111111111111",
                "kind": "Cluster",
                "href": "https://api.hyperfleet.com/v1/clusters/11111111-1111-1111-1111-111111111111",
                "generation": 5,
            }),
        )
        .build()
        .expect("valid event")
}

fn carrier(c: &mut Criterion) {
    let cx = Context::new().with_remote_span_context(SpanContext::new(
        TraceId::from(0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736),
        SpanId::from(0x00f0_67aa_0ba9_02b7),
        TraceFlags::SAMPLED,
        true,
        TraceState::from_str("vendor=abc").expect("valid tracestate"),
    ));
    let event = reconcile_event();
    c.bench_function("carrier inject+extract", |b| {
        b.iter(|| {
            let mut event = event.clone();
            hyperfleet_tracing::inject(black_box(&cx), &mut event);
            black_box(hyperfleet_tracing::extract(&event))
        })
    });
}

fn binding(c: &mut Criterion) {
    let event = reconcile_event();
    for encoding in [Encoding::Structured, Encoding::Binary] {
        c.bench_function(&format!("binding encode+decode {encoding:?}"), |b| {
            b.iter(|| {
                let message = encode(black_box(&event), encoding).expect("encodes");
                black_box(decode(&message).expect("decodes"))
            })
        });
    }
}

criterion_group!(benches, carrier, binding);
criterion_main!(benches);
