//! The runs of the message-path benchmarks, shared by the one on the system allocator and the
//! one on mimalloc.

use crate::common::process::process_cpu_time;
use crate::common::{Discard, event, transport};
use criterion::Criterion;
use futures::StreamExt;
use hyperfleet_tracing::Settings;
use hyperfleet_tracing::binding::{Encoding, decode, encode};
use hyperfleet_tracing::metrics::Metrics;
use hyperfleet_tracing::settings::AttributeTiming;
use hyperfleet_tracing::settings::Execution;
use hyperfleet_tracing::settings::TracerSource;
use hyperfleet_tracing::settings::UnsampledParent;
use hyperfleet_tracing::telemetry::{self, Component, Config};
use hyperfleet_tracing::transport::Transport;
use hyperfleet_tracing::{PublishOptions, TracedPublisher, TracedSubscriber};
use opentelemetry::trace::SpanKind;
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{
    BatchSpanProcessor, Sampler, SdkTracerProvider, SimpleSpanProcessor,
};
use std::hint::black_box;
use std::net::TcpListener;
use std::time::{Duration, Instant};

fn provider(sampler: Sampler) -> SdkTracerProvider {
    SdkTracerProvider::builder()
        .with_sampler(sampler)
        .with_span_processor(BatchSpanProcessor::builder(Discard).build())
        .build()
}

/// `n` messages through the traced publisher and subscriber (concurrency 1), without metrics.
async fn traced(n: u64, provider: &impl TracerSource) -> Duration {
    measured(n, provider, Metrics::disabled()).await
}

/// `n` messages through the traced publisher and subscriber (concurrency 1), recording
/// `metrics`.
async fn measured(n: u64, provider: &impl TracerSource, metrics: Metrics) -> Duration {
    timed(n, provider, metrics, Varied::default()).await
}

/// The publisher's and subscriber's settings a run varies; the default is the crate's.
#[derive(Clone, Copy, Default)]
struct Varied {
    timing: AttributeTiming,
    execution: Execution,
    unsampled: UnsampledParent,
    /// Each message published under an unsampled remote parent, as at a production ratio
    /// almost every message after the first hop is.
    unsampled_parent: bool,
}

/// `n` messages through the traced publisher and subscriber (concurrency 1), without metrics,
/// with `varied` settings.
async fn varied(n: u64, provider: &impl TracerSource, varied: Varied) -> Duration {
    timed(n, provider, Metrics::disabled(), varied).await
}

/// The settings the crate had as defaults until 2026-12-06: per-message attributes at the
/// start, the sampler asked under an unsampled parent, a task per handler.
const SWITCHES_OFF: Varied = Varied {
    timing: AttributeTiming::AtStart,
    execution: Execution::TaskPerMessage,
    unsampled: UnsampledParent::AskSampler,
    unsampled_parent: false,
};

/// A valid remote parent its root did not sample.
fn unsampled_remote_parent() -> Context {
    use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId};
    let remote = SpanContext::new(
        TraceId::from(0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736),
        SpanId::from(0x00f0_67aa_0ba9_02b7),
        TraceFlags::default(),
        true,
        Default::default(),
    );
    Context::new().with_remote_span_context(remote)
}

async fn timed(n: u64, provider: &impl TracerSource, metrics: Metrics, varied: Varied) -> Duration {
    let transport = transport();
    let settings = Settings::new()
        .tracer_provider(provider)
        .metrics(metrics)
        .attribute_timing(varied.timing)
        .unsampled_parent(varied.unsampled);
    let publisher = TracedPublisher::new(transport.clone(), "t").settings(settings.clone());
    let parent = unsampled_remote_parent();
    let started = Instant::now();
    for i in 0..n {
        match varied.unsampled_parent {
            true => {
                let options = PublishOptions::new().parent(parent.clone());
                publisher.publish_with(event(i), options).await
            }
            false => publisher.publish(event(i)).await,
        }
        .expect("published");
    }
    let subscriber = TracedSubscriber::new(transport, "s", "t")
        .settings(settings)
        .execution(varied.execution);
    crate::common::handle(subscriber, n).await;
    started.elapsed()
}

/// The same messages, untraced: encode, publish, pull, decode, ack.
async fn untraced(n: u64) -> Duration {
    let transport = transport();
    let started = Instant::now();
    for i in 0..n {
        let message = encode(&event(i), Encoding::Structured).expect("encoded");
        transport.publish("t", message).await.expect("published");
    }
    let mut deliveries = transport.subscribe("s").await.expect("subscribed");
    for _ in 0..n {
        let delivery = deliveries.next().await.expect("delivery").expect("ok");
        black_box(decode(&delivery.message).expect("decoded"));
        delivery.ack().await.expect("acked");
    }
    started.elapsed()
}

/// The raw loop plus the trace context carried and nothing else: each event given an
/// unsampled `traceparent` (the crate's codec, the cheapest there is here, from a fixed
/// remote context) before it is encoded, and its context extracted after it is decoded. No
/// span is made: what carrying the context in the CloudEvent costs by itself.
async fn untraced_with_context(n: u64) -> Duration {
    let propagator = hyperfleet_tracing::carrier::W3cTraceContext;
    let parent = unsampled_remote_parent();
    let transport = transport();
    let started = Instant::now();
    for i in 0..n {
        let mut event = event(i);
        hyperfleet_tracing::carrier::inject_with(&propagator, &parent, &mut event);
        let message = encode(&event, Encoding::Structured).expect("encoded");
        transport.publish("t", message).await.expect("published");
    }
    let mut deliveries = transport.subscribe("s").await.expect("subscribed");
    for _ in 0..n {
        let delivery = deliveries.next().await.expect("delivery").expect("ok");
        let event = decode(&delivery.message).expect("decoded");
        black_box(hyperfleet_tracing::carrier::extract_with(
            &propagator,
            &event,
        ));
        delivery.ack().await.expect("acked");
    }
    started.elapsed()
}

/// The raw loop plus what any dispatcher that runs handlers concurrently pays: each delivery
/// decoded and acked in a task of its own, spawned into a `JoinSet` and joined (one at a
/// time, as the subscriber loop runs at concurrency 1). No code of the crate's loop runs.
async fn untraced_spawned(n: u64) -> Duration {
    let transport = transport();
    let started = Instant::now();
    for i in 0..n {
        let message = encode(&event(i), Encoding::Structured).expect("encoded");
        transport.publish("t", message).await.expect("published");
    }
    let mut deliveries = transport.subscribe("s").await.expect("subscribed");
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..n {
        let delivery = deliveries.next().await.expect("delivery").expect("ok");
        tasks.spawn(async move {
            black_box(decode(&delivery.message).expect("decoded"));
            delivery.ack().await
        });
        let joined = tasks.join_next().await.expect("a task");
        joined.expect("joined").expect("acked");
    }
    started.elapsed()
}

/// The three spans one message makes (publish, receive, process): name, kind and attributes,
/// recorded from one real message through the traced publisher and subscriber.
fn recorded_spans() -> Vec<(String, SpanKind, Vec<KeyValue>)> {
    let telemetry = hyperfleet_tracing::testing::TestTelemetry::new();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(measured(1, &telemetry.provider, Metrics::disabled()));
    let mut spans: Vec<_> = telemetry
        .spans()
        .into_iter()
        .map(|s| (s.name.into_owned(), s.span_kind, s.attributes))
        .collect();
    // Publish, receive, process: the order a message meets them.
    let rank = |kind: &SpanKind| match kind {
        SpanKind::Producer => 0,
        SpanKind::Consumer => 1,
        _ => 2,
    };
    spans.sort_by_key(|(_, kind, _)| rank(kind));
    assert_eq!(spans.len(), 3, "publish, receive, process");
    spans
}

/// The raw loop plus what the bare OpenTelemetry SDK costs for the same three spans with the
/// same attributes and the W3C context carried in the event (the SDK's propagator): the floor
/// of what tracing can add, with none of the crate's code on the message path. With
/// `follow`, a receiver whose parent is not sampled makes no spans.
async fn bare_sdk(
    n: u64,
    provider: &SdkTracerProvider,
    spans: &[(String, SpanKind, Vec<KeyValue>)],
    follow: bool,
) -> Duration {
    use opentelemetry::trace::{TraceContextExt as _, Tracer as _, TracerProvider as _};
    let tracer = provider.tracer("bare");
    let propagator = TraceContextPropagator::new();
    let start = |(name, kind, attributes): &(String, SpanKind, Vec<KeyValue>), parent: &Context| {
        let span = tracer
            .span_builder(name.clone())
            .with_kind(kind.clone())
            .with_attributes(attributes.clone())
            .start_with_context(&tracer, parent);
        parent.with_span(span)
    };
    let transport = transport();
    let started = Instant::now();
    for i in 0..n {
        let mut event = event(i);
        let publish = start(&spans[0], &Context::new());
        hyperfleet_tracing::carrier::inject_with(&propagator, &publish, &mut event);
        let message = encode(&event, Encoding::Structured).expect("encoded");
        transport.publish("t", message).await.expect("published");
        publish.span().end();
    }
    let mut deliveries = transport.subscribe("s").await.expect("subscribed");
    for _ in 0..n {
        let delivery = deliveries.next().await.expect("delivery").expect("ok");
        let event = decode(&delivery.message).expect("decoded");
        let parent = hyperfleet_tracing::carrier::extract_with(&propagator, &event);
        if follow && !parent.span().span_context().is_sampled() {
            black_box((&event, &parent));
            delivery.ack().await.expect("acked");
            continue;
        }
        let receive = start(&spans[1], &parent);
        let process = start(&spans[2], &receive);
        black_box(&event);
        process.span().end();
        delivery.ack().await.expect("acked");
        receive.span().end();
    }
    started.elapsed()
}

/// A provider from the crate's telemetry set-up, exporting over OTLP to `endpoint`.
fn otlp_provider(endpoint: String) -> SdkTracerProvider {
    let config = Config::from_lookup("bench", |key| match key {
        "OTEL_EXPORTER_OTLP_ENDPOINT" => Some(endpoint.clone()),
        "OTEL_EXPORTER_OTLP_TIMEOUT" => Some("500".to_owned()),
        "OTEL_TRACES_SAMPLER" => Some("always_on".to_owned()),
        _ => None,
    })
    .expect("config");
    let telemetry = telemetry::builder(Component::custom("bench"))
        .config(config)
        .build()
        .expect("telemetry");
    telemetry.tracer_provider().expect("tracing on").clone()
}

/// An endpoint nobody listens on, and one that accepts connections and never answers.
fn dead_collectors() -> (String, String) {
    let closed = TcpListener::bind("127.0.0.1:0").expect("bind");
    let unreachable = format!("http://{}", closed.local_addr().expect("addr"));
    drop(closed);
    let stalled = TcpListener::bind("127.0.0.1:0").expect("bind");
    let stalling = format!("http://{}", stalled.local_addr().expect("addr"));
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for connection in stalled.incoming().flatten() {
            held.push(connection);
        }
    });
    (unreachable, stalling)
}

/// Every run, in groups named after `allocator`.
pub fn message_path(c: &mut Criterion, allocator: &str) {
    // One thread: what a message costs, without the cross-thread wake-ups and idle spinning of
    // a multi-threaded runtime, which at concurrency 1 cost more than tracing and vary more.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let sampled = provider(Sampler::AlwaysOn);
    let unsampled = provider(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
        0.01,
    ))));
    let mut group = c.benchmark_group(format!("message path, {allocator} (per message)"));
    let off = opentelemetry::trace::noop::NoopTracerProvider::new();
    group.bench_function("floor: raw transport, no subscriber loop", |b| {
        b.iter_custom(|n| runtime.block_on(untraced(n)))
    });
    group.bench_function("floor + the trace context carried, no span", |b| {
        b.iter_custom(|n| runtime.block_on(untraced_with_context(n)))
    });
    group.bench_function("floor + a task per message (JoinSet spawn and join)", |b| {
        b.iter_custom(|n| runtime.block_on(untraced_spawned(n)))
    });
    // The crate's defaults.
    let default = Varied::default();
    group.bench_function("same path, tracing off (no-op provider)", |b| {
        b.iter_custom(|n| runtime.block_on(traced(n, &off)))
    });
    group.bench_function("traced, sampled", |b| {
        b.iter_custom(|n| runtime.block_on(traced(n, &sampled)))
    });
    group.bench_function("traced, unsampled (ratio 0.01)", |b| {
        b.iter_custom(|n| runtime.block_on(traced(n, &unsampled)))
    });
    // Under an unsampled parent, beside its floor: the same path untraced, carrying the same
    // context.
    let parented = Varied {
        unsampled_parent: true,
        ..default
    };
    group.bench_function("same path, tracing off, an unsampled parent carried", |b| {
        b.iter_custom(|n| runtime.block_on(varied(n, &off, parented)))
    });
    group.bench_function("traced, unsampled (ratio 0.01), an unsampled parent", |b| {
        b.iter_custom(|n| runtime.block_on(varied(n, &unsampled, parented)))
    });
    // The choices the defaults leave, each on its own, and all three together (the defaults
    // until 2026-12-06).
    let per_task = Varied {
        execution: Execution::TaskPerMessage,
        ..default
    };
    group.bench_function("same path, tracing off, a task per handler", |b| {
        b.iter_custom(|n| runtime.block_on(varied(n, &off, per_task)))
    });
    let at_start = Varied {
        timing: AttributeTiming::AtStart,
        ..default
    };
    group.bench_function("traced, unsampled (ratio 0.01), attributes at start", |b| {
        b.iter_custom(|n| runtime.block_on(varied(n, &unsampled, at_start)))
    });
    let asked = Varied {
        unsampled: UnsampledParent::AskSampler,
        ..parented
    };
    group.bench_function(
        "traced, unsampled (ratio 0.01), an unsampled parent, the sampler asked",
        |b| b.iter_custom(|n| runtime.block_on(varied(n, &unsampled, asked))),
    );
    group.bench_function("same path, tracing off, switches off", |b| {
        b.iter_custom(|n| runtime.block_on(varied(n, &off, SWITCHES_OFF)))
    });
    group.bench_function("traced, sampled, switches off", |b| {
        b.iter_custom(|n| runtime.block_on(varied(n, &sampled, SWITCHES_OFF)))
    });
    group.bench_function("traced, unsampled (ratio 0.01), switches off", |b| {
        b.iter_custom(|n| runtime.block_on(varied(n, &unsampled, SWITCHES_OFF)))
    });
    // The floor of what tracing adds: the bare SDK, the same spans, no crate code.
    let spans = recorded_spans();
    group.bench_function("floor + bare SDK spans, sampled", |b| {
        b.iter_custom(|n| runtime.block_on(bare_sdk(n, &sampled, &spans, false)))
    });
    group.bench_function("floor + bare SDK spans, unsampled (ratio 0.01)", |b| {
        b.iter_custom(|n| runtime.block_on(bare_sdk(n, &unsampled, &spans, false)))
    });
    // And with no attributes at all: what the SDK's unsampled spans and the context's
    // propagation cost by themselves.
    let bare: Vec<_> = spans
        .iter()
        .map(|(name, kind, _)| (name.clone(), kind.clone(), Vec::new()))
        .collect();
    group.bench_function(
        "floor + bare SDK spans without attributes, unsampled (ratio 0.01)",
        |b| b.iter_custom(|n| runtime.block_on(bare_sdk(n, &unsampled, &bare, false))),
    );
    group.bench_function(
        "floor + bare SDK spans without attributes, unsampled (ratio 0.01), unsampled parents followed",
        |b| b.iter_custom(|n| runtime.block_on(bare_sdk(n, &unsampled, &bare, true))),
    );
    // What metrics add: the default (the global meter provider, a no-op one here), a
    // Prometheus registry with exemplars, the SDK's meter provider.
    group.bench_function(
        "tracing off, metrics default (global no-op meter provider)",
        |b| b.iter_custom(|n| runtime.block_on(measured(n, &off, Metrics::global()))),
    );
    let mut registry = prometheus_client::registry::Registry::default();
    let prometheus = Metrics::builder().prometheus(&mut registry).build();
    let sdk_metrics = hyperfleet_tracing::testing::TestMetrics::new().metrics;
    group.bench_function("traced, sampled, metrics to Prometheus (exemplars)", |b| {
        b.iter_custom(|n| runtime.block_on(measured(n, &sampled, prometheus.clone())))
    });
    group.bench_function("traced, sampled, metrics to the SDK meter provider", |b| {
        b.iter_custom(|n| runtime.block_on(measured(n, &sampled, sdk_metrics.clone())))
    });
    group.bench_function("traced, unsampled, metrics to Prometheus", |b| {
        b.iter_custom(|n| runtime.block_on(measured(n, &unsampled, prometheus.clone())))
    });
    // Spans handed to the exporter on the message path's own thread: what the spans cost
    // without their memory being freed on another thread.
    let same_thread = SdkTracerProvider::builder()
        .with_span_processor(SimpleSpanProcessor::new(Discard))
        .build();
    group.bench_function("traced, sampled, spans dropped on the same thread", |b| {
        b.iter_custom(|n| runtime.block_on(traced(n, &same_thread)))
    });
    let (unreachable, stalling) = dead_collectors();
    let (down, stalled) = {
        // The gRPC exporter needs a runtime to be built in.
        let _entered = runtime.enter();
        (otlp_provider(unreachable), otlp_provider(stalling))
    };
    group.bench_function("traced, sampled, otlp-unreachable collector", |b| {
        b.iter_custom(|n| runtime.block_on(traced(n, &down)))
    });
    group.bench_function("traced, sampled, otlp-stalled collector", |b| {
        b.iter_custom(|n| runtime.block_on(traced(n, &stalled)))
    });
    group.finish();

    // The same runs, clocked by the CPU time they use rather than the wall time they take.
    let mut cpu = c.benchmark_group(format!("message path, {allocator}, CPU time (per message)"));
    let on_cpu = |n: u64, provider: &dyn Fn(u64) -> Duration| {
        let started = process_cpu_time();
        provider(n);
        process_cpu_time() - started
    };
    cpu.bench_function("same path, tracing off (no-op provider)", |b| {
        b.iter_custom(|n| on_cpu(n, &|n| runtime.block_on(traced(n, &off))))
    });
    cpu.bench_function("traced, sampled", |b| {
        b.iter_custom(|n| on_cpu(n, &|n| runtime.block_on(traced(n, &sampled))))
    });
    cpu.bench_function("traced, unsampled (ratio 0.01)", |b| {
        b.iter_custom(|n| on_cpu(n, &|n| runtime.block_on(traced(n, &unsampled))))
    });
    cpu.finish();
}
