//! Throughput through a real RabbitMQ node (Debian's `rabbitmq-server`, a private node started
//! for the run and stopped after it): 10,000 messages published with confirms and consumed
//! with acks through `TracedPublisher`/`TracedSubscriber` with the default settings, traced
//! (every span sampled, into a batch processor that drops them) vs untraced (a no-op
//! provider), and in the same run the same loop with Node's amqplib (`benches/node_peer`,
//! installed with `npm ci` on first use) at the same prefetch, by default twice: publishing
//! the same messages as this crate (hyperfleet-broker's, with its `_watermill_message_uuid`
//! header, mandatory as `Unroutable::Error` asks), and plain ones (no header, not mandatory),
//! which cost the broker less. Three groups: the round trip,
//! publishing alone (until every confirm is in), consuming alone (of messages published
//! beforehand). One sample is one 10,000-message round on a fresh exchange and classic queue.
//!
//! `HYPERFLEET_BENCH_PREFETCH` sets the prefetch of both sides (default the crate's, 32), and
//! `HYPERFLEET_BENCH_EXECUTION=loop` runs this crate's handlers on the loop's task: the
//! experiments that show what limits consuming. `HYPERFLEET_BENCH_CLUSTER=3` runs this crate
//! alone through a cluster of that many private nodes instead, on quorum queues, connected
//! with every node's URL. `HYPERFLEET_BENCH_IN_FLIGHT` sets how many of this crate's publishes
//! are in flight at once (default 512). `HYPERFLEET_BENCH_PAIRED=N` skips criterion and runs N rounds of
//! each client in turn, printing each one's median: the paired figures compare within a
//! minute, when the broker's speed drifts over the several minutes of the criterion groups,
//! and beside each rate the CPU time a message cost the client and the broker.
//! `HYPERFLEET_BENCH_MODES=publish,receive` runs only those groups.
//! `HYPERFLEET_BENCH_PEERS=same,plain,header,mandatory` chooses what the Node.js peer
//! publishes (default `same,plain`): `header` is the header alone, as hyperfleet-broker
//! publishes, `mandatory` the flag alone, the experiment that splits what the broker pays.
//! `HYPERFLEET_BENCH_LAPIN=1` adds bare lapin moving the same messages untraced, as many at
//! once as the subscriber handles (paired mode on one node only): what this crate costs over
//! its own client. `HYPERFLEET_BENCH_CONCURRENCY` sets how many messages the subscriber (and
//! bare lapin) handle at once (default 16, the subscriber's).
//!
//! `cargo bench --all-features --bench rabbitmq_throughput`

#[allow(dead_code)]
#[path = "../tests/support/rabbitmq.rs"]
mod rabbitmq;

mod common;

use common::process::process_cpu_time;
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
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::Path;
use std::process::{Command, Stdio};
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

/// The subscriber's default concurrency, which bare lapin matches.
const SUBSCRIBER_CONCURRENCY: usize = 16;

/// Handlers at once, when `HYPERFLEET_BENCH_CONCURRENCY` sets it.
fn concurrency() -> Option<usize> {
    std::env::var("HYPERFLEET_BENCH_CONCURRENCY")
        .ok()
        .map(|n| n.parse().expect("HYPERFLEET_BENCH_CONCURRENCY: a number"))
}

/// Publishes in flight at once: `HYPERFLEET_BENCH_IN_FLIGHT`, else [`IN_FLIGHT`].
fn in_flight() -> usize {
    std::env::var("HYPERFLEET_BENCH_IN_FLIGHT").map_or(IN_FLIGHT, |n| {
        n.parse().expect("HYPERFLEET_BENCH_IN_FLIGHT: a number")
    })
}

async fn publish_all(publisher: &TracedPublisher<RabbitMqTransport>) {
    futures::stream::iter(0..MESSAGES)
        .map(|i| publisher.publish(event(i)))
        .buffer_unordered(in_flight())
        .for_each(|published| async move {
            published.expect("published");
        })
        .await;
}

/// What one or more rounds took: the wall clock, and the CPU time the client and the broker
/// used meanwhile.
#[derive(Clone, Copy, Default)]
struct Spent {
    wall: Duration,
    client: Duration,
    broker: Duration,
    /// Read calls the broker made.
    reads: u64,
}

impl std::ops::Add for Spent {
    type Output = Self;

    fn add(self, other: Self) -> Self {
        Self {
            wall: self.wall + other.wall,
            client: self.client + other.client,
            broker: self.broker + other.broker,
            reads: self.reads + other.reads,
        }
    }
}

/// The clock of a round's timed part, and the broker's figures at its start (read outside the
/// clock and the client's CPU time).
struct Clock {
    broker_cpu: Duration,
    reads: u64,
    started: Instant,
    client: Duration,
}

impl Clock {
    fn start(broker: &Broker) -> Self {
        let (broker_cpu, reads) = broker.cpu_and_reads();
        let (started, client) = (Instant::now(), process_cpu_time());
        Self {
            broker_cpu,
            reads,
            started,
            client,
        }
    }

    /// What the timed part has spent so far.
    fn spent(&self, broker: &Broker) -> Spent {
        let (wall, client) = (self.started.elapsed(), process_cpu_time() - self.client);
        let (broker_now, reads_now) = broker.cpu_and_reads();
        Spent {
            wall,
            client,
            broker: broker_now - self.broker_cpu,
            reads: reads_now - self.reads,
        }
    }
}

/// Deletes an exchange and a queue, both named `name`.
async fn delete_round(transport: &RabbitMqTransport, name: &str) {
    let admin = RabbitMqAdmin::new(transport);
    admin
        .delete_subscription(name)
        .await
        .expect("queue deleted");
    admin.delete_topic(name).await.expect("exchange deleted");
}

impl std::iter::Sum for Spent {
    fn sum<I: Iterator<Item = Self>>(rounds: I) -> Self {
        rounds.fold(Self::default(), |total, round| total + round)
    }
}

/// One round on a fresh exchange and queue `name`, classic on one node and quorum on a
/// cluster; `mode` says what is timed. Both are deleted after it, as the Node.js peer does,
/// so that every round meets the broker in the same state.
async fn round(
    transport: &RabbitMqTransport,
    broker: &Broker,
    provider: &impl TracerSource,
    name: &str,
    mode: Mode,
) -> Spent {
    let kind = match std::env::var("HYPERFLEET_BENCH_CLUSTER") {
        Ok(_) => QueueKind::Quorum,
        Err(_) => QueueKind::Classic,
    };
    rabbitmq::declare(transport, name, name, kind).await;
    let settings = Settings::new().tracer_provider(provider);
    let publisher = TracedPublisher::new(transport.clone(), name).settings(settings.clone());
    let mut subscriber = TracedSubscriber::new(transport.clone(), name, name).settings(settings);
    if let Some(limit) = concurrency() {
        subscriber = subscriber.concurrency(limit);
    }
    if std::env::var("HYPERFLEET_BENCH_EXECUTION").as_deref() == Ok("loop") {
        subscriber = subscriber.execution(hyperfleet_tracing::settings::Execution::LoopTask);
    }
    let elapsed = timed(&publisher, subscriber, broker, mode).await;
    delete_round(transport, name).await;
    if let QueueKind::Quorum = kind {
        // A quorum queue's dead-letter exchange and queue, `{queue}-dlq`.
        delete_round(transport, &format!("{name}-dlq")).await;
    }
    elapsed
}

/// What `mode` times of one round.
async fn timed(
    publisher: &TracedPublisher<RabbitMqTransport>,
    subscriber: TracedSubscriber<RabbitMqTransport>,
    broker: &Broker,
    mode: Mode,
) -> Spent {
    if let Mode::Receive = mode {
        publish_all(publisher).await;
    }
    let clock = Clock::start(broker);
    if let Mode::Publish = mode {
        publish_all(publisher).await;
        return clock.spent(broker);
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
    clock.spent(broker)
}

/// Bare lapin, the AMQP client this crate's transport is built on, moving the same messages
/// as this crate untraced (the structured event, the `_watermill_message_uuid` header,
/// mandatory, persistent) on its own connection, at the same prefetch and as many handlers at
/// once as this crate's subscriber: what the crate costs over its own client.
struct BareLapin {
    connection: lapin::Connection,
    /// A channel in confirm mode, kept for every round as this crate keeps its own.
    publishing: lapin::Channel,
    prefetch: u16,
    concurrency: usize,
}

impl BareLapin {
    async fn connect(url: &str, prefetch: u16) -> Self {
        use lapin::options::ConfirmSelectOptions;
        let connection = lapin::Connection::connect(url, lapin::ConnectionProperties::default())
            .await
            .expect("lapin connected");
        let publishing = connection.create_channel().await.expect("channel");
        publishing
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .expect("confirms on");
        Self {
            connection,
            publishing,
            prefetch,
            concurrency: concurrency().unwrap_or(SUBSCRIBER_CONCURRENCY),
        }
    }

    async fn publish_all(&self, exchange: &str) {
        use cloudevents::AttributesReader as _;
        use lapin::options::BasicPublishOptions;
        use lapin::types::{AMQPValue, FieldTable};
        let publish = |i: u64| {
            let channel = self.publishing.clone();
            async move {
                let event = event(i);
                let mut headers = FieldTable::default();
                headers.insert(
                    "_watermill_message_uuid".into(),
                    AMQPValue::LongString(event.id().into()),
                );
                let properties = lapin::BasicProperties::default()
                    .with_delivery_mode(2)
                    .with_content_type("application/cloudevents+json; charset=UTF-8".into())
                    .with_headers(headers);
                let body = serde_json::to_vec(&event).expect("JSON");
                let options = BasicPublishOptions {
                    mandatory: true,
                    ..BasicPublishOptions::default()
                };
                channel
                    .basic_publish(exchange.into(), "".into(), options, &body, properties)
                    .await
                    .expect("published")
                    .await
                    .expect("confirmed");
            }
        };
        futures::stream::iter(0..MESSAGES)
            .map(publish)
            .buffer_unordered(in_flight())
            .for_each(|()| async {})
            .await;
    }

    /// Consumes and acks `MESSAGES` messages of `queue`, each parsed as JSON, as many at once
    /// as this crate's subscriber handles.
    async fn consume_all(&self, queue: &str) {
        use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions};
        let channel = self.connection.create_channel().await.expect("channel");
        channel
            .basic_qos(self.prefetch, BasicQosOptions::default())
            .await
            .expect("prefetch");
        let consumer = channel
            .basic_consume(
                queue.into(),
                "".into(),
                BasicConsumeOptions::default(),
                lapin::types::FieldTable::default(),
            )
            .await
            .expect("consuming");
        consumer
            .take(usize::try_from(MESSAGES).expect("fits"))
            .for_each_concurrent(self.concurrency, |delivery| async move {
                let delivery = delivery.expect("delivered");
                let event: serde_json::Value =
                    serde_json::from_slice(&delivery.data).expect("JSON");
                black_box(event);
                delivery
                    .ack(BasicAckOptions::default())
                    .await
                    .expect("acked");
            })
            .await;
        let _ = channel.close(200, "done".into()).await;
    }

    /// One round on a fresh exchange and queue `name`, timed as [`timed`] times this crate's.
    async fn round(
        &self,
        transport: &RabbitMqTransport,
        broker: &Broker,
        name: &str,
        mode: Mode,
    ) -> Spent {
        rabbitmq::declare(transport, name, name, QueueKind::Classic).await;
        if let Mode::Receive = mode {
            self.publish_all(name).await;
        }
        let clock = Clock::start(broker);
        match mode {
            Mode::Publish => self.publish_all(name).await,
            Mode::Receive => self.consume_all(name).await,
            Mode::RoundTrip => {
                futures::join!(self.consume_all(name), self.publish_all(name));
            }
        }
        let spent = clock.spent(broker);
        delete_round(transport, name).await;
        spent
    }
}

/// What the Node.js peer publishes.
#[derive(Clone, Copy)]
enum Peer {
    /// What this crate publishes by default: hyperfleet-broker's message, its one header
    /// included, mandatory.
    Same,
    /// The event alone, not mandatory: less work for the broker.
    Plain,
    /// The event and the header, not mandatory: what hyperfleet-broker publishes.
    Header,
    /// The event alone, mandatory.
    Mandatory,
}

impl Peer {
    fn name(self) -> &'static str {
        match self {
            Self::Same => "same",
            Self::Plain => "plain",
            Self::Header => "header",
            Self::Mandatory => "mandatory",
        }
    }

    /// The peers `HYPERFLEET_BENCH_PEERS` names (`same,plain` unless set): the experiment
    /// that splits what the broker pays for each part of the message.
    fn chosen() -> Vec<Self> {
        let all = [Self::Same, Self::Plain, Self::Header, Self::Mandatory];
        let names = std::env::var("HYPERFLEET_BENCH_PEERS").unwrap_or("same,plain".into());
        names
            .split(',')
            .map(|name| {
                *all.iter()
                    .find(|peer| peer.name() == name)
                    .unwrap_or_else(|| panic!("HYPERFLEET_BENCH_PEERS: unknown peer {name}"))
            })
            .collect()
    }
}

/// `rounds` rounds of amqplib's loop at `prefetch` on `node`, publishing `peer`'s messages.
fn node_rounds(
    node: &rabbitmq::RabbitNode,
    rounds: u64,
    mode: Mode,
    prefetch: u16,
    peer: Peer,
) -> Spent {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/node_peer");
    if !dir.join("node_modules/amqplib").exists() {
        let installed = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .status();
        assert!(
            installed.is_ok_and(|s| s.success()),
            "cannot install the Node.js peer: `npm ci` in {} needs node and npm (Debian: apt-get install nodejs npm)",
            dir.display()
        );
    }
    let mut child = Command::new("node")
        .arg(dir.join("rabbitmq.js"))
        .args([
            &node.url,
            &rounds.to_string(),
            &MESSAGES.to_string(),
            mode.name(),
            &prefetch.to_string(),
            peer.name(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("node runs");
    let (mut stdin, stdout) = (child.stdin.take(), child.stdout.take());
    // The broker's CPU time and reads over each round's timed part, between the peer's marks.
    let (mut broker, mut reads, mut at_start) = (Duration::ZERO, 0, (Duration::ZERO, 0));
    let mut totals = String::new();
    for line in BufReader::new(stdout.expect("piped")).lines() {
        let line = line.expect("the peer's output");
        let now = node.cpu_and_reads();
        match line.as_str() {
            "start" => at_start = now,
            "end" => (broker, reads) = (broker + now.0 - at_start.0, reads + now.1 - at_start.1),
            _ => {
                totals = line;
                continue;
            }
        }
        // The peer waits at each mark until the figures are read.
        if let Some(stdin) = stdin.as_mut() {
            let _ = writeln!(stdin, "go");
        }
    }
    drop(stdin);
    let status = child.wait().expect("node ran");
    assert!(
        status.success(),
        "node_peer/rabbitmq.js failed (its error is printed above)"
    );
    let seconds: Vec<f64> = totals
        .split_whitespace()
        .map(|s| s.parse().expect("seconds"))
        .collect();
    Spent {
        wall: Duration::from_secs_f64(seconds[0]),
        client: Duration::from_secs_f64(seconds[1]),
        broker,
        reads,
    }
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

    /// CPU time every node has used so far, and the read calls they made.
    fn cpu_and_reads(&self) -> (Duration, u64) {
        match self {
            Self::Node(node) => node.cpu_and_reads(),
            Self::Cluster(cluster) => cluster
                .nodes
                .iter()
                .map(rabbitmq::RabbitNode::cpu_and_reads)
                .fold((Duration::ZERO, 0), |(cpu, reads), (c, r)| {
                    (cpu + c, reads + r)
                }),
        }
    }
}

/// The median rate of `rounds`, and the median CPU time a message cost the client and the
/// broker.
fn medians(rounds: Vec<Spent>) -> String {
    let median = |of: fn(&Spent) -> Duration| {
        let mut figures: Vec<Duration> = rounds.iter().map(of).collect();
        figures.sort();
        figures[figures.len() / 2]
    };
    let per_message = |cpu: Duration| cpu.as_secs_f64() * 1e6 / MESSAGES as f64;
    format!(
        "{:.0} msg/s, CPU µs/msg client {:.1} broker {:.1}, broker reads/msg {:.2} (mean)",
        MESSAGES as f64 / median(|s| s.wall).as_secs_f64(),
        per_message(median(|s| s.client)),
        per_message(median(|s| s.broker)),
        rounds.iter().map(|s| s.reads).sum::<u64>() as f64
            / (rounds.len() as u64 * MESSAGES) as f64,
    )
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
        let peers = Peer::chosen();
        // On one node only: a cluster's rounds use quorum queues and every node's URL.
        let bare = match &broker {
            Broker::Node(node) if std::env::var("HYPERFLEET_BENCH_LAPIN").as_deref() == Ok("1") => {
                Some(runtime.block_on(BareLapin::connect(&node.url, prefetch)))
            }
            _ => None,
        };
        for mode in Mode::chosen() {
            let mut rounds: Vec<Vec<Spent>> = vec![Vec::new(); 3 + peers.len()];
            for _ in 0..pairs {
                rounds[0].push(runtime.block_on(round(&transport, &broker, &off, &name(), mode)));
                rounds[1].push(runtime.block_on(round(
                    &transport,
                    &broker,
                    &sampled,
                    &name(),
                    mode,
                )));
                if let Some(bare) = &bare {
                    rounds[2].push(runtime.block_on(bare.round(
                        &transport,
                        &broker,
                        &name(),
                        mode,
                    )));
                }
                if let Broker::Node(node) = &broker {
                    for (peer, rounds) in peers.iter().zip(&mut rounds[3..]) {
                        rounds.push(node_rounds(node, 1, mode, prefetch, *peer));
                    }
                }
            }
            let clients = ["untraced", "traced", "bare lapin, same messages"]
                .into_iter()
                .map(str::to_owned)
                .chain(peers.iter().map(|peer| format!("amqplib {}", peer.name())));
            let figures: Vec<String> = clients
                .zip(rounds)
                .filter(|(_, rounds)| !rounds.is_empty())
                .map(|(client, rounds)| format!("{client} {}", medians(rounds)))
                .collect();
            println!(
                "{:9} medians over {pairs} interleaved rounds: {}",
                mode.name(),
                figures.join("; ")
            );
        }
        return;
    }
    for mode in Mode::chosen() {
        let mut group = c.benchmark_group(format!("rabbitmq, 10,000 messages, {}", mode.name()));
        group.sample_size(10);
        group.sampling_mode(criterion::SamplingMode::Flat);
        group.warm_up_time(Duration::from_millis(1));
        group.measurement_time(Duration::from_secs(1));
        group.bench_function("rust, untraced (no-op provider)", |b| {
            b.iter_custom(|n| {
                (0..n)
                    .map(|_| runtime.block_on(round(&transport, &broker, &off, &name(), mode)))
                    .map(|spent| spent.wall)
                    .sum()
            })
        });
        group.bench_function("rust, traced (sampled)", |b| {
            b.iter_custom(|n| {
                (0..n)
                    .map(|_| runtime.block_on(round(&transport, &broker, &sampled, &name(), mode)))
                    .map(|spent| spent.wall)
                    .sum()
            })
        });
        if let Broker::Node(node) = &broker {
            for peer in Peer::chosen() {
                let name = format!("node amqplib, prefetch {prefetch}, {} message", peer.name());
                group.bench_function(name, |b| {
                    b.iter_custom(|n| node_rounds(node, n, mode, prefetch, peer).wall)
                });
            }
        }
        group.finish();
    }
    drop(transport);
    drop(runtime);
    drop(broker);
}

criterion_group!(benches, throughput);
criterion_main!(benches);
