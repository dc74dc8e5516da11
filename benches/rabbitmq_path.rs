//! The RabbitMQ way in, per message, on a real broker (Debian's `rabbitmq-server`, a private
//! node started for the run and stopped after it): the raw transport loop (encode, publish
//! with confirms, consume, decode, ack) beside the same messages through `TracedPublisher` and
//! `TracedSubscriber` with tracing off, sampled and unsampled. Publishes run 64 at a time
//! (each waits for its confirm); the subscriber runs at concurrency 1. Wall time is mostly the
//! broker's, so the same rows are also clocked by this process's CPU time, which is what
//! tracing adds.
//!
//! `cargo bench --all-features --bench rabbitmq_path`

#[allow(dead_code)]
#[path = "../tests/support/rabbitmq.rs"]
mod rabbitmq;

mod common;

use common::process::process_cpu_time;
use common::{Discard, event};
use criterion::{Criterion, criterion_group, criterion_main};
use futures::StreamExt;
use hyperfleet_tracing::Settings;
use hyperfleet_tracing::binding::{Encoding, decode, encode};
use hyperfleet_tracing::metrics::Metrics;
use hyperfleet_tracing::settings::TracerSource;
use hyperfleet_tracing::settings::UnsampledParent;
use hyperfleet_tracing::transport::rabbitmq::{
    QueueKind, RabbitMqAdmin, RabbitMqConfig, RabbitMqTransport,
};
use hyperfleet_tracing::transport::{SubscriptionConfig, Transport};
use hyperfleet_tracing::{TracedPublisher, TracedSubscriber};
use opentelemetry_sdk::trace::{BatchSpanProcessor, Sampler, SdkTracerProvider};
use std::hint::black_box;
use std::time::Duration;

/// Publishes in flight at once.
const IN_FLIGHT: usize = 64;

/// A free loopback port, for the node (`rabbitmq` asks its parent module for it).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

fn provider(sampler: Sampler) -> SdkTracerProvider {
    SdkTracerProvider::builder()
        .with_sampler(sampler)
        .with_span_processor(BatchSpanProcessor::builder(Discard).build())
        .build()
}

/// A fresh exchange `name` with its classic queue `name`.
async fn route(admin: &RabbitMqAdmin, name: &str) -> String {
    admin.create_topic_if_missing(name).await.expect("exchange");
    admin
        .create_subscription_if_missing(
            name,
            name,
            QueueKind::Classic,
            &SubscriptionConfig::default(),
        )
        .await
        .expect("queue");
    name.to_owned()
}

/// `n` messages, untraced: encode, publish (confirmed), consume, decode, ack.
async fn untraced(n: u64, transport: &RabbitMqTransport, name: &str) {
    futures::stream::iter(0..n)
        .map(|i| async move {
            let message = encode(&event(i), Encoding::Structured).expect("encoded");
            transport.publish(name, message).await.expect("published");
        })
        .buffer_unordered(IN_FLIGHT)
        .for_each(|()| async {})
        .await;
    let mut deliveries = transport.subscribe(name).await.expect("subscribed");
    for _ in 0..n {
        let delivery = deliveries.next().await.expect("delivery").expect("ok");
        black_box(decode(&delivery.message).expect("decoded"));
        delivery.ack().await.expect("acked");
    }
}

/// The same `n` messages through the traced publisher and subscriber.
async fn traced(n: u64, transport: &RabbitMqTransport, name: &str, provider: &impl TracerSource) {
    traced_with(n, transport, name, provider, UnsampledParent::AskSampler).await;
}

/// The same, with `unsampled` for the publisher and the subscriber.
async fn traced_with(
    n: u64,
    transport: &RabbitMqTransport,
    name: &str,
    provider: &impl TracerSource,
    unsampled: UnsampledParent,
) {
    let publisher = TracedPublisher::new(transport.clone(), name).settings(
        Settings::new()
            .tracer_provider(provider)
            .metrics(Metrics::disabled())
            .unsampled_parent(unsampled),
    );
    futures::stream::iter(0..n)
        .map(|i| publisher.publish(event(i)))
        .buffer_unordered(IN_FLIGHT)
        .for_each(|published| async move {
            published.expect("published");
        })
        .await;
    let subscriber = TracedSubscriber::new(transport.clone(), name, name).settings(
        Settings::new()
            .tracer_provider(provider)
            .metrics(Metrics::disabled())
            .unsampled_parent(unsampled),
    );
    common::handle(subscriber, n).await;
}

/// One row's run: `n` messages through queue `q`.
type Run<'a> = &'a dyn Fn(u64, &str);

/// How a run is clocked: wall time, or the CPU time of this process (all its threads).
#[derive(Clone, Copy)]
enum Clock {
    Wall,
    Cpu,
}

impl Clock {
    fn time(self, run: impl FnOnce()) -> Duration {
        match self {
            Clock::Wall => {
                let started = std::time::Instant::now();
                run();
                started.elapsed()
            }
            Clock::Cpu => {
                let started = process_cpu_time();
                run();
                process_cpu_time() - started
            }
        }
    }
}

fn rabbitmq_path(c: &mut Criterion) {
    let node = rabbitmq::RabbitNode::start();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let transport = runtime
        .block_on(RabbitMqTransport::connect(RabbitMqConfig::new(&node.url)))
        .expect("connected");
    let admin = RabbitMqAdmin::new(&transport);
    let sampled = provider(Sampler::AlwaysOn);
    let unsampled = provider(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
        0.01,
    ))));
    let off = opentelemetry::trace::noop::NoopTracerProvider::new();
    for (clock, label, tag) in [
        (Clock::Wall, "wall time", "wall"),
        (Clock::Cpu, "CPU time", "cpu"),
    ] {
        let mut group = c.benchmark_group(format!("rabbitmq path, {label} (per message)"));
        group.sample_size(10);
        let queue = runtime.block_on(route(&admin, &format!("raw-{tag}")));
        group.bench_function("floor: raw transport loop, no subscriber loop", |b| {
            b.iter_custom(|n| clock.time(|| runtime.block_on(untraced(n, &transport, &queue))))
        });
        let rows: [(&str, Run); 4] = [
            ("same path, tracing off (no-op provider)", &|n, q| {
                runtime.block_on(traced(n, &transport, q, &off))
            }),
            ("traced, sampled", &|n, q| {
                runtime.block_on(traced(n, &transport, q, &sampled))
            }),
            ("traced, unsampled (ratio 0.01)", &|n, q| {
                runtime.block_on(traced(n, &transport, q, &unsampled))
            }),
            (
                "traced, unsampled (ratio 0.01), unsampled parents followed",
                &|n, q| {
                    let follow = UnsampledParent::Follow;
                    runtime.block_on(traced_with(n, &transport, q, &unsampled, follow))
                },
            ),
        ];
        for (i, (row, run)) in rows.into_iter().enumerate() {
            let queue = runtime.block_on(route(&admin, &format!("traced-{i}-{tag}")));
            group.bench_function(row, |b| b.iter_custom(|n| clock.time(|| run(n, &queue))));
        }
        group.finish();
    }
    drop(transport);
    drop(runtime);
    drop(node);
}

criterion_group!(benches, rabbitmq_path);
criterion_main!(benches);
