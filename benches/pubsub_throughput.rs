//! Throughput over Google's Pub/Sub emulator: 10,000 messages published and handled through
//! `TracedPublisher`/`TracedSubscriber` with the default settings, traced (every span sampled,
//! into a batch processor that drops them) vs untraced (a no-op provider), and in the same run
//! the same loop with Google's Python client, its OpenTelemetry tracing on vs off
//! (`benches/pubsub_peer.py`, from the project's `.venv`, which `scripts/test` creates), and
//! Google's Node.js client likewise (`benches/node_peer`, installed with `npm ci` on first
//! use). Three groups: the round trip, publishing alone (until every publish is confirmed),
//! receiving alone (of messages published beforehand). One sample is one 10,000-message round.
//! `HYPERFLEET_BENCH_STREAMS` sets this crate's StreamingPull streams (default
//! `DEFAULT_STREAMS`), for the experiment that shows what they change.
//!
//! `cargo bench --features pubsub --bench pubsub_throughput`

#[allow(dead_code)]
#[path = "../tests/support/emulator.rs"]
mod emulator;

mod common;

use common::{Discard, Mode, event};
use criterion::{Criterion, criterion_group, criterion_main};
use futures::StreamExt;
use hyperfleet_tracing::Settings;
use hyperfleet_tracing::settings::TracerSource;
use hyperfleet_tracing::transport::SubscriptionConfig;
use hyperfleet_tracing::transport::pubsub::{PubSubAdmin, PubSubConfig, PubSubTransport};
use hyperfleet_tracing::{HandlerError, Received};
use hyperfleet_tracing::{TracedPublisher, TracedSubscriber};
use opentelemetry_sdk::trace::{BatchSpanProcessor, SdkTracerProvider};
use std::hint::black_box;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const MESSAGES: u64 = 10_000;
const PROJECT: &str = "hyperfleet-bench";
/// Publishes in flight at once.
const IN_FLIGHT: usize = 512;

/// Publishes `MESSAGES` events through `publisher`, `IN_FLIGHT` at once.
async fn publish_all<T: hyperfleet_tracing::transport::Transport>(publisher: &TracedPublisher<T>) {
    futures::stream::iter(0..MESSAGES)
        .map(|i| publisher.publish(event(i)))
        .buffer_unordered(IN_FLIGHT)
        .for_each(|published| async move {
            published.expect("published");
        })
        .await;
}

/// One round on a fresh topic and subscription: publish `MESSAGES`, handle them all; `mode`
/// says which part is timed.
async fn round(
    admin: &PubSubAdmin,
    transport: &PubSubTransport,
    provider: &impl TracerSource,
    name: &str,
    mode: Mode,
) -> Duration {
    admin.create_topic_if_missing(name).await.expect("topic");
    admin
        .create_subscription_if_missing(name, name, &SubscriptionConfig::default())
        .await
        .expect("subscription");
    let handled = std::sync::Arc::new(AtomicU64::new(0));
    let (progress, mut watch) = tokio::sync::watch::channel(0u64);
    let counter = handled.clone();
    let subscriber = TracedSubscriber::new(transport.clone(), name, name)
        .settings(Settings::new().tracer_provider(provider));
    let publisher = TracedPublisher::new(transport.clone(), name)
        .settings(Settings::new().tracer_provider(provider));

    if let Mode::Receive = mode {
        publish_all(&publisher).await;
    }
    let started = Instant::now();
    if let Mode::Publish = mode {
        publish_all(&publisher).await;
        let elapsed = started.elapsed();
        admin.delete_subscription(name).await.expect("cleanup");
        admin.delete_topic(name).await.expect("cleanup");
        return elapsed;
    }
    let receiving = tokio::spawn(subscriber.run(
        move |received: Received| {
            black_box(&received.event);
            progress.send_replace(counter.fetch_add(1, Ordering::Relaxed) + 1);
            async { Ok::<(), HandlerError>(()) }
        },
        async move {
            let _ = watch.wait_for(|n| *n >= MESSAGES).await;
        },
    ));
    if let Mode::RoundTrip = mode {
        publish_all(&publisher).await;
    }
    receiving.await.expect("joined").expect("ran");
    let elapsed = started.elapsed();

    admin.delete_subscription(name).await.expect("cleanup");
    admin.delete_topic(name).await.expect("cleanup");
    elapsed
}

/// `rounds` rounds of the Python client's loop, with its tracing `on` or off.
fn python_rounds(host: &str, rounds: u64, on: bool, mode: Mode) -> Duration {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = root.join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/test once to create the project's .venv",
        python.display()
    );
    let output = Command::new(python)
        .arg(root.join("benches/pubsub_peer.py"))
        .args([
            PROJECT,
            &rounds.to_string(),
            &MESSAGES.to_string(),
            if on { "on" } else { "off" },
            mode.name(),
        ])
        .env("PUBSUB_EMULATOR_HOST", host)
        .output()
        .expect("python runs");
    assert!(
        output.status.success(),
        "pubsub_peer.py failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let seconds: f64 = String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .expect("seconds");
    Duration::from_secs_f64(seconds)
}

/// `rounds` rounds of the Node.js client's loop, with its tracing `on` or off.
fn node_rounds(host: &str, rounds: u64, on: bool, mode: Mode) -> Duration {
    let peer = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/node_peer");
    if !peer.join("node_modules").exists() {
        let installed = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&peer)
            .status();
        assert!(
            installed.is_ok_and(|s| s.success()),
            "cannot install the Node.js peer: `npm ci` in {} needs node and npm (Debian: apt-get install nodejs npm)",
            peer.display()
        );
    }
    let output = Command::new("node")
        .arg(peer.join("peer.js"))
        .args([
            PROJECT,
            &rounds.to_string(),
            &MESSAGES.to_string(),
            if on { "on" } else { "off" },
            mode.name(),
        ])
        .env("PUBSUB_EMULATOR_HOST", host)
        .output()
        .expect("node runs");
    assert!(
        output.status.success(),
        "node_peer/peer.js failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let seconds: f64 = String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .expect("seconds");
    Duration::from_secs_f64(seconds)
}

fn throughput(c: &mut Criterion) {
    let emulator = emulator::Emulator::start();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut config = PubSubConfig::new(PROJECT).emulator(&emulator.host);
    if let Ok(streams) = std::env::var("HYPERFLEET_BENCH_STREAMS") {
        config = config.streams(streams.parse().expect("HYPERFLEET_BENCH_STREAMS: a number"));
    }
    let (admin, transport) = runtime.block_on(async {
        (
            PubSubAdmin::connect(config.clone()).await.expect("admin"),
            PubSubTransport::connect(config).await.expect("transport"),
        )
    });
    let sampled = SdkTracerProvider::builder()
        .with_span_processor(BatchSpanProcessor::builder(Discard).build())
        .build();
    let off = opentelemetry::trace::noop::NoopTracerProvider::new();
    let rounds = AtomicUsize::new(0);
    let name = || format!("bench-{}", rounds.fetch_add(1, Ordering::Relaxed));
    let host = emulator.host.as_str();

    for mode in [Mode::RoundTrip, Mode::Publish, Mode::Receive] {
        let mut group = c.benchmark_group(format!("emulator, 10,000 messages, {}", mode.name()));
        group.sample_size(10);
        group.sampling_mode(criterion::SamplingMode::Flat);
        group.warm_up_time(Duration::from_millis(1));
        group.measurement_time(Duration::from_secs(1));
        let mut ours = |label: &str, provider: &dyn Fn(&str) -> Duration| {
            group.bench_function(label, |b| {
                b.iter_custom(|n| (0..n).map(|_| provider(&name())).sum())
            });
        };
        ours("rust, untraced (no-op provider)", &|name| {
            runtime.block_on(round(&admin, &transport, &off, name, mode))
        });
        ours("rust, traced (sampled)", &|name| {
            runtime.block_on(round(&admin, &transport, &sampled, name, mode))
        });
        group.bench_function("python google-cloud-pubsub, tracing off", |b| {
            b.iter_custom(|n| python_rounds(host, n, false, mode))
        });
        group.bench_function("python google-cloud-pubsub, tracing on", |b| {
            b.iter_custom(|n| python_rounds(host, n, true, mode))
        });
        group.bench_function("node @google-cloud/pubsub, tracing off", |b| {
            b.iter_custom(|n| node_rounds(host, n, false, mode))
        });
        group.bench_function("node @google-cloud/pubsub, tracing on", |b| {
            b.iter_custom(|n| node_rounds(host, n, true, mode))
        });
        group.finish();
    }
}

criterion_group!(benches, throughput);
criterion_main!(benches);
