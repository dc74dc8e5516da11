//! The push way in, per delivery, in process (the router called directly, no socket): a
//! Pub/Sub push request (the wrapped JSON body, the event in `data`) through the crate's
//! `PushEndpoint` with tracing sampled, unsampled and off, beside the floor: a plain axum
//! route that parses the same body, decodes the event and answers 204. On one thread, spans
//! to a batch processor whose exporter drops them, as in `message_path`.
//!
//! `cargo bench --all-features --bench push_path`

mod common;

use axum::body::{Body, Bytes};
use axum::http::{Request, StatusCode};
use base64::Engine as _;
use common::{Discard, event};
use criterion::{Criterion, criterion_group, criterion_main};
use hyperfleet_tracing::Settings;
use hyperfleet_tracing::binding::{self, Encoding};
use hyperfleet_tracing::metrics::Metrics;
use hyperfleet_tracing::push::PushEndpoint;
use hyperfleet_tracing::settings::TracerSource;
use hyperfleet_tracing::settings::UnsampledParent;
use hyperfleet_tracing::transport::Message;
use hyperfleet_tracing::{HandlerError, Received};
use opentelemetry_sdk::trace::{BatchSpanProcessor, Sampler, SdkTracerProvider};
use std::hint::black_box;
use std::time::{Duration, Instant};
use tower::Service as _;

const SUBSCRIPTION: &str = "projects/p/subscriptions/s";

/// The push body of the `i`-th event, carrying an unsampled upstream context (the production
/// case: the sampler at the publisher let 99% go).
fn body(i: u64) -> Vec<u8> {
    let mut event = event(i);
    event.set_extension(
        "traceparent",
        format!("00-{:032x}-00f067aa0ba902b7-00", u128::from(i) + 1),
    );
    let message = binding::encode(&event, Encoding::Structured).expect("encoded");
    serde_json::json!({
        "message": {
            "data": base64::engine::general_purpose::STANDARD.encode(&message.data),
            "attributes": message.attributes,
            "messageId": i.to_string(),
            "publishTime": "2026-12-03T00:00:00Z",
        },
        "subscription": SUBSCRIPTION,
    })
    .to_string()
    .into_bytes()
}

fn request(body: Vec<u8>) -> Request<Body> {
    Request::post("/")
        .header("content-type", "application/json")
        .body(Body::from(body))
        .expect("request")
}

/// `n` deliveries through `router`, each answered before the next is sent.
async fn deliver(n: u64, mut router: axum::Router) -> Duration {
    let bodies: Vec<Vec<u8>> = (0..n).map(body).collect();
    let started = Instant::now();
    for body in bodies {
        let response = router.call(request(body)).await.expect("answered");
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
    }
    started.elapsed()
}

fn endpoint(provider: &impl TracerSource) -> axum::Router {
    endpoint_with(provider, UnsampledParent::AskSampler)
}

fn endpoint_with(provider: &impl TracerSource, unsampled: UnsampledParent) -> axum::Router {
    PushEndpoint::new("s", "t")
        .settings(
            Settings::new()
                .tracer_provider(provider)
                .metrics(Metrics::disabled())
                .unsampled_parent(unsampled),
        )
        .router(|received: Received| {
            black_box(&received.event);
            std::future::ready(Ok::<(), HandlerError>(()))
        })
}

/// The floor: the same body parsed and its event decoded by a plain axum route.
fn floor() -> axum::Router {
    axum::Router::new().route(
        "/",
        axum::routing::post(|body: Bytes| async move {
            let push: serde_json::Value = serde_json::from_slice(&body).expect("json");
            let data = push["message"]["data"].as_str().expect("data");
            let data = base64::engine::general_purpose::STANDARD
                .decode(data)
                .expect("base64");
            let mut message = Message::new(data);
            if let Some(attributes) = push["message"]["attributes"].as_object() {
                for (key, value) in attributes {
                    message = message.with_attribute(key, value.as_str().unwrap_or_default());
                }
            }
            black_box(binding::decode(&message).expect("decoded"));
            StatusCode::NO_CONTENT
        }),
    )
}

fn provider(sampler: Sampler) -> SdkTracerProvider {
    SdkTracerProvider::builder()
        .with_sampler(sampler)
        .with_span_processor(BatchSpanProcessor::builder(Discard).build())
        .build()
}

fn push_path(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let sampled = provider(Sampler::AlwaysOn);
    let unsampled = provider(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
        0.01,
    ))));
    let off = opentelemetry::trace::noop::NoopTracerProvider::new();
    let mut group = c.benchmark_group("push path (per delivery)");
    group.bench_function("floor: plain axum route, parse and decode", |b| {
        b.iter_custom(|n| runtime.block_on(deliver(n, floor())))
    });
    group.bench_function("push endpoint, tracing off (no-op provider)", |b| {
        b.iter_custom(|n| runtime.block_on(deliver(n, endpoint(&off))))
    });
    group.bench_function("push endpoint, traced, sampled", |b| {
        b.iter_custom(|n| runtime.block_on(deliver(n, endpoint(&sampled))))
    });
    group.bench_function(
        "push endpoint, traced, unsampled (parent-based ratio 0.01)",
        |b| b.iter_custom(|n| runtime.block_on(deliver(n, endpoint(&unsampled)))),
    );
    group.bench_function(
        "push endpoint, traced, unsampled (parent-based ratio 0.01), unsampled parents followed",
        |b| {
            let follow = UnsampledParent::Follow;
            b.iter_custom(|n| runtime.block_on(deliver(n, endpoint_with(&unsampled, follow))))
        },
    );
    group.finish();
}

criterion_group!(benches, push_path);
criterion_main!(benches);
