//! A three-node RabbitMQ cluster (private nodes this test starts and stops) loses a node
//! mid-stream under a traced publisher with confirms and a traced subscriber on a quorum
//! queue: the node holding the queue's leader, the node the clients are connected to, and
//! the node behind the one address the clients know (a TCP proxy that moves to another node,
//! as a Kubernetes Service does). Each time: every confirmed message is handled at least once,
//! every handled message continues its publish's trace, every publish that was not confirmed
//! failed with a typed error, duplicates are counted, and consumption resumes within a bound.
//!
//! One test, the scenarios in turn, so that the cluster starts once for the binary.

mod support;

use cloudevents::AttributesReader;
use hyperfleet_tracing::testing::TestTelemetry;
use hyperfleet_tracing::transport::rabbitmq::{QueueKind, RabbitMqConfig, RabbitMqTransport};
use hyperfleet_tracing::{HandlerError, Received, Settings, TracedPublisher, TracedSubscriber};
use opentelemetry::Context;
use opentelemetry::trace::{TraceContextExt, TraceId, Tracer, TracerProvider};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::proxy::Proxy;
use support::rabbitmq::RabbitCluster;
use tokio::sync::{Notify, mpsc, watch};

const TOPIC: &str = "hyperfleet-clusters";
/// Messages handled before the kill, and confirmed after it before publishing stops.
const BEFORE: usize = 150;
const AFTER: usize = 150;
/// The longest this test accepts from the kill to the first delivery of a message published
/// after it (measured: see BENCHMARKS.md).
const RESUME_BOUND: Duration = Duration::from_secs(30);

#[test]
fn a_cluster_that_loses_a_node_loses_no_message_and_no_trace() {
    let mut cluster = RabbitCluster::start(3);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        // The leader's node dies; the clients' node (1) stays.
        let report = failover(&mut cluster, "leader", Clients::Nodes(vec![1, 2, 0]), 0).await;
        println!("{report}");
        restart(&mut cluster, 0);

        // The clients' node dies, the leader's (0) stays: the clients move to node 2.
        let report = failover(&mut cluster, "connected", Clients::Nodes(vec![1, 2, 0]), 1).await;
        println!("{report}");
        restart(&mut cluster, 1);

        // One address in front of the cluster: the proxy's node dies, the proxy moves to 1.
        let report = failover(
            &mut cluster,
            "proxied",
            Clients::Proxy { to: 2, then: 1 },
            2,
        )
        .await;
        println!("{report}");
    });
}

/// What the clients connect to: the nodes' URLs in this order, or a proxy to one node that
/// moves to another after the kill.
enum Clients {
    Nodes(Vec<usize>),
    Proxy { to: usize, then: usize },
}

/// What one failover did.
struct Report {
    scenario: &'static str,
    confirmed: usize,
    failed: BTreeMap<String, usize>,
    duplicates: usize,
    resumed_after: Duration,
    held_came_again: bool,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} node killed: {} confirmed, all handled; unconfirmed {:?}; {} duplicates; \
             resumed {:.2} s after the kill; the held delivery {}",
            self.scenario,
            self.confirmed,
            self.failed,
            self.duplicates,
            self.resumed_after.as_secs_f64(),
            if self.held_came_again {
                "came again"
            } else {
                "was acked"
            },
        )
    }
}

/// What the publisher did: each message's trace, which were confirmed, the errors of those
/// that were not, and the first message it published after the kill.
#[derive(Default)]
struct Published {
    roots: BTreeMap<usize, TraceId>,
    confirmed: BTreeSet<usize>,
    failed: BTreeMap<String, usize>,
    first_after_kill: Option<usize>,
    last_error: Option<String>,
}

/// A handled delivery: the event id, the trace its process span is in, when.
type Handled = (usize, TraceId, Instant);

async fn failover(
    cluster: &mut RabbitCluster,
    scenario: &'static str,
    clients: Clients,
    kill: usize,
) -> Report {
    let queue = RabbitMqConfig::queue_name(TOPIC, scenario);
    declare_with_leader_on(cluster, 0, &queue).await;
    assert_eq!(
        cluster.leader_of(&queue, 0),
        0,
        "the queue's leader is on node 0"
    );

    let proxy = match &clients {
        Clients::Proxy { to, .. } => Some(Proxy::start(&node_address(cluster, *to)).await),
        Clients::Nodes(_) => None,
    };
    let url = match (&clients, &proxy) {
        (Clients::Nodes(order), _) => cluster.urls(order),
        (Clients::Proxy { .. }, Some(proxy)) => format!("amqp://guest:guest@{}/%2f", proxy.address),
        (Clients::Proxy { .. }, None) => unreachable!("a proxy was started"),
    };
    let config = RabbitMqConfig::new(url).publish_timeout(Duration::from_secs(5));
    let transport = RabbitMqTransport::connect(config).await.unwrap();
    let telemetry = TestTelemetry::new();
    let settings = || Settings::new().tracer_provider(&telemetry.provider);

    // The subscriber reports every handled delivery; the delivery of message BEFORE is held
    // across the kill, to show what becomes of an ack sent after a failover.
    let (handled_tx, mut handled) = mpsc::unbounded_channel::<Handled>();
    let release = Arc::new(Notify::new());
    let (held_tx, mut held) = mpsc::unbounded_channel::<()>();
    let handler = recording_handler(handled_tx, held_tx, Arc::clone(&release));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let subscriber = tokio::spawn(
        TracedSubscriber::new(transport.clone(), &queue, TOPIC)
            .settings(settings())
            .run(handler, async move {
                let _ = stopped.await;
            }),
    );

    let publisher = TracedPublisher::new(transport.clone(), TOPIC).settings(settings());
    let tracer = telemetry.provider.tracer("cluster-test");
    let (killed_tx, killed_rx) = watch::channel(false);
    let publishing = tokio::spawn(publish_until_after_kill(
        publisher, tracer, killed_rx, scenario,
    ));

    // Kill the node once BEFORE messages were handled and message BEFORE is held.
    let mut seen: Vec<Handled> = Vec::new();
    while seen.len() < BEFORE {
        seen.push(next(&mut handled, "before the kill").await);
    }
    tokio::time::timeout(Duration::from_secs(30), held.recv())
        .await
        .expect("message BEFORE reached its handler");
    tokio::task::block_in_place(|| cluster.nodes[kill].kill());
    let killed_at = Instant::now();
    killed_tx.send_replace(true);
    if let (Clients::Proxy { then, .. }, Some(proxy)) = (&clients, &proxy) {
        proxy.switch_to(&node_address(cluster, *then));
    }
    release.notify_one();

    let Published {
        roots,
        confirmed,
        failed,
        first_after_kill,
        ..
    } = publishing.await.unwrap();
    let first_after_kill = first_after_kill.expect("the publisher went on after the kill");
    let mut ids: BTreeSet<usize> = seen.iter().map(|(id, ..)| *id).collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !confirmed.is_subset(&ids) {
        let missing: Vec<_> = confirmed.difference(&ids).take(10).collect();
        assert!(
            Instant::now() < deadline,
            "{scenario}: confirmed messages never handled, for example {missing:?}"
        );
        let one = next(&mut handled, "after the kill").await;
        ids.insert(one.0);
        seen.push(one);
    }
    let _ = stop.send(());
    subscriber.await.unwrap().unwrap();
    while let Ok(one) = handled.try_recv() {
        seen.push(one);
    }

    for (id, trace, _) in &seen {
        assert_eq!(
            Some(trace),
            roots.get(id),
            "{scenario}: message {id} was handled outside its publish's trace"
        );
    }
    let resumed_at = seen
        .iter()
        .filter(|(id, ..)| *id >= first_after_kill && confirmed.contains(id))
        .map(|(.., at)| *at)
        .min()
        .expect("a message published after the kill was handled");
    let resumed_after = resumed_at.saturating_duration_since(killed_at);
    assert!(
        resumed_after < RESUME_BOUND,
        "{scenario}: consumption resumed {resumed_after:?} after the kill"
    );
    let held_count = seen.iter().filter(|(id, ..)| *id == BEFORE).count();
    Report {
        scenario,
        confirmed: confirmed.len(),
        failed,
        duplicates: seen.len() - ids.len(),
        resumed_after,
        held_came_again: held_count > 1,
    }
}

/// Publishes one message after another, each under a root span of its own, until AFTER
/// messages were confirmed after the kill (`killed` turns true); what each publish did.
async fn publish_until_after_kill(
    publisher: TracedPublisher<RabbitMqTransport>,
    tracer: opentelemetry_sdk::trace::SdkTracer,
    killed_rx: watch::Receiver<bool>,
    scenario: &'static str,
) -> Published {
    let mut published = Published::default();
    let mut confirmed_after_kill = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    for id in 0.. {
        if confirmed_after_kill >= AFTER {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{scenario}: publishing did not recover within 120 s: {:?}, last: {:?}",
            published.failed,
            published.last_error
        );
        let killed = *killed_rx.borrow();
        if killed && published.first_after_kill.is_none() {
            published.first_after_kill = Some(id);
        }
        let event = hyperfleet_tracing::testing::reconcile_event(&id.to_string(), "c-1").unwrap();
        let cx = Context::current_with_span(tracer.start("publishing"));
        published
            .roots
            .insert(id, cx.span().span_context().trace_id());
        // The publish takes its parent from the context current when it is called.
        let pending = {
            let _root = cx.attach();
            publisher.publish(event)
        };
        match pending.await {
            Ok(_) => {
                published.confirmed.insert(id);
                confirmed_after_kill += usize::from(killed);
            }
            Err(error) => {
                let kind = if error.to_string().contains("refused") {
                    "nacked"
                } else {
                    "connection down"
                };
                let key = format!("{} ({kind})", error.error_type());
                *published.failed.entry(key).or_default() += 1;
                published.last_error = Some(error.to_string());
                // The connection is being made again: a moment before the next try.
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    published
}
/// A handler that reports each handled delivery, and holds the first delivery of message
/// BEFORE until `release` is notified (after reporting it on `held`).
fn recording_handler(
    handled_tx: mpsc::UnboundedSender<Handled>,
    held_tx: mpsc::UnboundedSender<()>,
    release: Arc<Notify>,
) -> impl hyperfleet_tracing::consume::Handler {
    move |received: Received| {
        let (handled_tx, release, held_tx) =
            (handled_tx.clone(), Arc::clone(&release), held_tx.clone());
        async move {
            let id: usize = received.event.id().parse().map_err(|_| "not a number")?;
            let trace = received.context.span().span_context().trace_id();
            if id == BEFORE && received.delivery_attempt == Some(1) {
                let _ = held_tx.send(());
                release.notified().await;
            }
            let _ = handled_tx.send((id, trace, Instant::now()));
            Ok::<(), HandlerError>(())
        }
    }
}

async fn next(handled: &mut mpsc::UnboundedReceiver<Handled>, when: &str) -> Handled {
    tokio::time::timeout(Duration::from_secs(60), handled.recv())
        .await
        .unwrap_or_else(|_| panic!("no delivery for 60 s {when}"))
        .expect("the handler is alive")
}

/// Declares the exchange and a quorum queue through a connection to node `node` alone: a
/// quorum queue's first leader is on the node its declaring client is connected to.
async fn declare_with_leader_on(cluster: &RabbitCluster, node: usize, queue: &str) {
    let transport = RabbitMqTransport::connect(RabbitMqConfig::new(&cluster.nodes[node].url))
        .await
        .unwrap();
    support::rabbitmq::declare(&transport, TOPIC, queue, QueueKind::Quorum).await;
}

fn node_address(cluster: &RabbitCluster, node: usize) -> String {
    format!("127.0.0.1:{}", cluster.nodes[node].port)
}

/// Starts a killed node again; it comes back as a member of the cluster (its data
/// directory says so).
fn restart(cluster: &mut RabbitCluster, node: usize) {
    tokio::task::block_in_place(|| cluster.nodes[node].start_again());
}
