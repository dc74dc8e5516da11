//! The collector down or stalling: messages keep flowing, spans are dropped rather than queued
//! without bound, and telemetry shutdown returns within its timeout. (The latency side is a
//! benchmark: `message_path`'s `otlp-unreachable` and `otlp-stalled` variants.)

mod support;

use hyperfleet_tracing::Settings;
use hyperfleet_tracing::telemetry::{self, Component, Config};
use hyperfleet_tracing::transport::SubscriptionConfig;
use hyperfleet_tracing::transport::memory::MemoryTransport;
use hyperfleet_tracing::{HandlerError, Received};
use hyperfleet_tracing::{TracedPublisher, TracedSubscriber};
use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const TOPIC: &str = "hyperfleet-clusters";
const WARM_UP: usize = 2_000;
const MESSAGES: usize = 20_000;
/// Far below what 20,000 messages' spans would hold if they queued (tens of megabytes).
const GROWTH_LIMIT: u64 = 24 << 20;
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(2);

/// Publishes and handles `count` messages; returns how many were handled.
async fn flow(
    transport: &MemoryTransport,
    provider: &impl hyperfleet_tracing::settings::TracerSource,
    count: usize,
    from: usize,
) -> usize {
    let handled = Arc::new(AtomicUsize::new(0));
    let (done, mut progress) = tokio::sync::watch::channel(0usize);
    let counter = Arc::clone(&handled);
    let subscriber = TracedSubscriber::new(transport.clone(), "validation", TOPIC)
        .settings(Settings::new().tracer_provider(provider))
        .concurrency(8);
    let running = tokio::spawn(subscriber.run(
        move |_: Received| {
            let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
            done.send_replace(n);
            async { Ok::<(), HandlerError>(()) }
        },
        async move {
            let _ = progress.wait_for(|n| *n >= count).await;
        },
    ));
    let publisher = TracedPublisher::new(transport.clone(), TOPIC)
        .settings(Settings::new().tracer_provider(provider));
    for i in from..from + count {
        publisher
            .publish(support::events::reconcile_event(&format!("c{i}")))
            .await
            .expect("publish never waits for the collector");
    }
    running.await.unwrap().unwrap();
    handled.load(Ordering::SeqCst)
}

/// Runs the message path with the OTLP exporter aimed at `endpoint`.
fn run_against(endpoint: &str, what: &str) {
    let vars: HashMap<&str, String> = HashMap::from([
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.to_owned()),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "500".to_owned()),
        ("OTEL_TRACES_SAMPLER", "always_on".to_owned()),
    ]);
    let config = Config::from_lookup("collector-down", |k| vars.get(k).cloned()).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // The gRPC exporter needs a runtime to be built in.
    let _entered = runtime.enter();
    let telemetry = telemetry::builder(Component::custom("collector-down"))
        .config(config)
        .shutdown_timeout(SHUTDOWN_TIMEOUT)
        .build()
        .unwrap();
    let provider = telemetry.tracer_provider().expect("tracing on").clone();

    runtime.block_on(async {
        let transport = MemoryTransport::new();
        transport.create_topic(TOPIC).unwrap();
        transport
            .create_subscription("validation", TOPIC, SubscriptionConfig::default())
            .unwrap();
        assert_eq!(flow(&transport, &provider, WARM_UP, 0).await, WARM_UP);
        let before = support::process::resident();
        assert_eq!(
            flow(&transport, &provider, MESSAGES, WARM_UP).await,
            MESSAGES,
            "{what}: messages were held up"
        );
        let growth = support::process::resident().saturating_sub(before);
        assert!(
            growth < GROWTH_LIMIT,
            "{what}: resident memory grew by {} MiB over {MESSAGES} messages",
            growth >> 20
        );
        assert_eq!(transport.backlog("validation").unwrap(), 0);
    });

    let (_logs, mut guard) = telemetry.into_subscriber();
    let started = Instant::now();
    let _ = guard.shutdown();
    let took = started.elapsed();
    assert!(
        took < SHUTDOWN_TIMEOUT + Duration::from_secs(1),
        "{what}: shutdown took {took:?}"
    );
}

#[test]
fn an_unreachable_or_stalled_collector_costs_no_message_and_bounded_memory() {
    // Unreachable: a port nobody listens on.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    run_against(&format!("http://127.0.0.1:{port}"), "unreachable collector");

    // Stalled: accepts connections and never answers.
    let stalled = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", stalled.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for connection in stalled.incoming().flatten() {
            held.push(connection);
        }
    });
    run_against(&endpoint, "stalled collector");
}
