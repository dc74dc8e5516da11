//! Throughput through a real RabbitMQ node (Debian's `rabbitmq-server`, a private node started
//! for the run and stopped after it): 10,000 messages published with confirms and consumed
//! with acks through `TracedPublisher`/`TracedSubscriber` with the default settings, traced
//! (every span sampled, into a batch processor that drops them) vs untraced (a no-op
//! provider), and in the same run the same loop with Node's amqplib (`benches/node_peer`,
//! installed with `npm ci` on first use) at the same prefetch. Three groups: the round trip,
//! publishing alone (until every confirm is in), consuming alone (of messages published
//! beforehand). One sample is one 10,000-message round on a fresh exchange and classic queue.
//!
//! `HYPERFLEET_BENCH_PREFETCH` sets the prefetch of both sides (default the crate's, 10), and
//! `HYPERFLEET_BENCH_EXECUTION=loop` runs this crate's handlers on the loop's task: the
//! experiments that show what limits consuming. `HYPERFLEET_BENCH_CLUSTER=3` runs this crate
//! alone through a cluster of that many private nodes instead, on quorum queues, connected
//! with every node's URL. `HYPERFLEET_BENCH_IN_FLIGHT` sets how many of this crate's publishes
//! are in flight at once (default 512). `HYPERFLEET_BENCH_PAIRED=N` skips criterion and runs N rounds of
//! each client in turn, printing each one's median: the paired figures compare within a
//! minute, when the broker's speed drifts over the several minutes of the criterion groups.
//!
//! `cargo bench --all-features --bench rabbitmq_throughput`

#[allow(dead_code)]
#[path = "../tests/support/rabbitmq.rs"]
mod rabbitmq;

mod common;

use common::{Discard, Mode, event};
use criterion::{Criterion, criterion_group, criterion_main};
use futures::StreamExt;
use hyperfleet_tracing::Settings;
use hyperfleet_tracing::settings::TracerSource;
use hyperfleet_tracing::transport::rabbitmq::{
    QueueKind, RabbitMqAdmin, RabbitMqConfig, RabbitMqTransport,
};
use hyperfleet_tracing::{HandlerError, Received, TracedPublisher, TracedSubscriber};
use opentelemetry_sdk::trace::{BatchSpanProcessor, SdkTracerProvider};
use std::hint::black_box;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const MESSAGES: u64 = 10_000;
/// Publishes in flight at once (each waits for its confirm).
const IN_FLIGHT: usize = 512;

/// A free loopback port, for the node (`rabbitmq` asks its parent module for it).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

async fn publish_all(publisher: &TracedPublisher<RabbitMqTransport>) {
    futures::stream::iter(0..MESSAGES)
        .map(|i| publisher.publish(event(i)))
        .buffer_unordered(
            std::env::var("HYPERFLEET_BENCH_IN_FLIGHT").map_or(IN_FLIGHT, |n| {
                n.parse().expect("HYPERFLEET_BENCH_IN_FLIGHT: a number")
            }),
        )
        .for_each(|published| async move {
            published.expect("published");
        })
        .await;
}

/// One round on a fresh exchange and queue `name`, classic on one node and quorum on a
/// cluster; `mode` says what is timed. Both are deleted after it, as the Node.js peer does,
/// so that every round meets the broker in the same state.
async fn round(
    transport: &RabbitMqTransport,
    provider: &impl TracerSource,
    name: &str,
    mode: Mode,
) -> Duration {
    let kind = match std::env::var("HYPERFLEET_BENCH_CLUSTER") {
        Ok(_) => QueueKind::Quorum,
        Err(_) => QueueKind::Classic,
    };
    rabbitmq::declare(transport, name, name, kind).await;
    let settings = Settings::new().tracer_provider(provider);
    let publisher = TracedPublisher::new(transport.clone(), name).settings(settings.clone());
    let mut subscriber = TracedSubscriber::new(transport.clone(), name, name).settings(settings);
    if std::env::var("HYPERFLEET_BENCH_EXECUTION").as_deref() == Ok("loop") {
        subscriber = subscriber.execution(hyperfleet_tracing::settings::Execution::LoopTask);
    }
    let elapsed = timed(&publisher, subscriber, mode).await;
    let admin = RabbitMqAdmin::new(transport);
    admin
        .delete_subscription(name)
        .await
        .expect("queue deleted");
    admin.delete_topic(name).await.expect("exchange deleted");
    if let QueueKind::Quorum = kind {
        // A quorum queue's dead-letter exchange and queue, `{queue}-dlq`.
        let dead_letters = format!("{name}-dlq");
        admin
            .delete_subscription(&dead_letters)
            .await
            .expect("deleted");
        admin.delete_topic(&dead_letters).await.expect("deleted");
    }
    elapsed
}

/// What `mode` times of one round.
async fn timed(
    publisher: &TracedPublisher<RabbitMqTransport>,
    subscriber: TracedSubscriber<RabbitMqTransport>,
    mode: Mode,
) -> Duration {
    if let Mode::Receive = mode {
        publish_all(publisher).await;
    }
    let started = Instant::now();
    if let Mode::Publish = mode {
        publish_all(publisher).await;
        return started.elapsed();
    }
    let handled = std::sync::Arc::new(AtomicU64::new(0));
    let (progress, mut watch) = tokio::sync::watch::channel(0u64);
    let receiving = tokio::spawn(subscriber.run(
        move |received: Received| {
            black_box(&received.event);
            progress.send_replace(handled.fetch_add(1, Ordering::Relaxed) + 1);
            async { Ok::<(), HandlerError>(()) }
        },
        async move {
            let _ = watch.wait_for(|n| *n >= MESSAGES).await;
        },
    ));
    if let Mode::RoundTrip = mode {
        publish_all(publisher).await;
    }
    receiving.await.expect("joined").expect("ran");
    started.elapsed()
}

/// `rounds` rounds of amqplib's loop at `prefetch`.
fn node_rounds(url: &str, rounds: u64, mode: Mode, prefetch: u16) -> Duration {
    let peer = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/node_peer");
    if !peer.join("node_modules/amqplib").exists() {
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
        .arg(peer.join("rabbitmq.js"))
        .args([
            url,
            &rounds.to_string(),
            &MESSAGES.to_string(),
            mode.name(),
            &prefetch.to_string(),
        ])
        .output()
        .expect("node runs");
    assert!(
        output.status.success(),
        "node_peer/rabbitmq.js failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let seconds: f64 = String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .expect("seconds");
    Duration::from_secs_f64(seconds)
}

/// A private node, or a cluster of `HYPERFLEET_BENCH_CLUSTER` nodes.
enum Broker {
    Node(rabbitmq::RabbitNode),
    Cluster(rabbitmq::RabbitCluster),
}

impl Broker {
    fn start() -> Self {
        match std::env::var("HYPERFLEET_BENCH_CLUSTER") {
            Ok(size) => Self::Cluster(rabbitmq::RabbitCluster::start(
                size.parse()
                    .expect("HYPERFLEET_BENCH_CLUSTER: a number of nodes"),
            )),
            Err(_) => Self::Node(rabbitmq::RabbitNode::start()),
        }
    }

    fn url(&self) -> String {
        match self {
            Self::Node(node) => node.url.clone(),
            Self::Cluster(cluster) => cluster.urls(&(0..cluster.nodes.len()).collect::<Vec<_>>()),
        }
    }
}

fn throughput(c: &mut Criterion) {
    let broker = Broker::start();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut config = RabbitMqConfig::new(broker.url());
    if let Ok(prefetch) = std::env::var("HYPERFLEET_BENCH_PREFETCH") {
        config = config.prefetch(
            prefetch
                .parse()
                .expect("HYPERFLEET_BENCH_PREFETCH: a number"),
        );
    }
    let prefetch = config.prefetch;
    let transport = runtime
        .block_on(RabbitMqTransport::connect(config))
        .expect("connected");
    let sampled = SdkTracerProvider::builder()
        .with_span_processor(BatchSpanProcessor::builder(Discard).build())
        .build();
    let off = opentelemetry::trace::noop::NoopTracerProvider::new();
    let rounds = AtomicUsize::new(0);
    let name = || format!("bench-{}", rounds.fetch_add(1, Ordering::Relaxed));
    if let Ok(pairs) = std::env::var("HYPERFLEET_BENCH_PAIRED") {
        let pairs = pairs
            .parse()
            .expect("HYPERFLEET_BENCH_PAIRED: a number of rounds");
        for mode in [Mode::RoundTrip, Mode::Publish, Mode::Receive] {
            let mut times: [Vec<Duration>; 3] = Default::default();
            for _ in 0..pairs {
                times[0].push(runtime.block_on(round(&transport, &off, &name(), mode)));
                times[1].push(runtime.block_on(round(&transport, &sampled, &name(), mode)));
                if let Broker::Node(node) = &broker {
                    times[2].push(node_rounds(&node.url, 1, mode, prefetch));
                }
            }
            let rates = times.map(|mut t| {
                t.sort();
                t.get(t.len() / 2)
                    .map_or(0.0, |median| MESSAGES as f64 / median.as_secs_f64())
            });
            let peer = match &broker {
                Broker::Node(_) => format!(", amqplib {:.0}", rates[2]),
                Broker::Cluster(_) => String::new(),
            };
            println!(
                "{:9} median msg/s over {pairs} interleaved rounds: untraced {:.0}, traced {:.0}{peer}",
                mode.name(),
                rates[0],
                rates[1],
            );
        }
        return;
    }
    for mode in [Mode::RoundTrip, Mode::Publish, Mode::Receive] {
        let mut group = c.benchmark_group(format!("rabbitmq, 10,000 messages, {}", mode.name()));
        group.sample_size(10);
        group.sampling_mode(criterion::SamplingMode::Flat);
        group.warm_up_time(Duration::from_millis(1));
        group.measurement_time(Duration::from_secs(1));
        group.bench_function("rust, untraced (no-op provider)", |b| {
            b.iter_custom(|n| {
                (0..n)
                    .map(|_| runtime.block_on(round(&transport, &off, &name(), mode)))
                    .sum()
            })
        });
        group.bench_function("rust, traced (sampled)", |b| {
            b.iter_custom(|n| {
                (0..n)
                    .map(|_| runtime.block_on(round(&transport, &sampled, &name(), mode)))
                    .sum()
            })
        });
        if let Broker::Node(node) = &broker {
            group.bench_function(format!("node amqplib, prefetch {prefetch}"), |b| {
                b.iter_custom(|n| node_rounds(&node.url, n, mode, prefetch))
            });
        }
        group.finish();
    }
    drop(transport);
    drop(runtime);
    drop(broker);
}

criterion_group!(benches, throughput);
criterion_main!(benches);
