//! Shared by the benchmarks.
#![allow(dead_code)]

#[path = "../../tests/support/process.rs"]
pub mod process;

use cloudevents::Event;
use hyperfleet_tracing::transport::SubscriptionConfig;
use hyperfleet_tracing::transport::memory::MemoryTransport;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use std::hint::black_box;

/// An exporter that drops every span: the cost measured is ours, not an exporter's.
#[derive(Debug)]
pub struct Discard;

impl SpanExporter for Discard {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        black_box(batch);
        Ok(())
    }
}

/// The `i`th reconcile event, shaped like the Sentinel's.
pub fn event(i: u64) -> Event {
    hyperfleet_tracing::testing::reconcile_event(&format!("event-{i}"), &format!("c{i}"))
        .expect("valid event")
}

/// A memory transport with topic `t` and its subscription `s`.
pub fn transport() -> MemoryTransport {
    let transport = MemoryTransport::new();
    transport.create_topic("t").expect("topic");
    transport
        .create_subscription("s", "t", SubscriptionConfig::default())
        .expect("subscription");
    transport
}

/// Runs `subscriber` at concurrency 1 until its handler has seen `n` messages. The handler
/// counts, and wakes the shutdown only at the `n`th: signalling each message would add a
/// wake-up per message that is the harness's cost, not the loop's.
pub async fn handle<T: hyperfleet_tracing::transport::Transport>(
    subscriber: hyperfleet_tracing::TracedSubscriber<T>,
    n: u64,
) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    if n == 0 {
        return;
    }
    let seen = AtomicU64::new(0);
    let enough = Arc::new(tokio::sync::Notify::new());
    let notify = Arc::clone(&enough);
    subscriber
        .concurrency(1)
        .run(
            move |received: hyperfleet_tracing::Received| {
                black_box(&received.event);
                if seen.fetch_add(1, Ordering::Relaxed) + 1 == n {
                    // Stored if the shutdown is not waiting yet, so it is never missed.
                    notify.notify_one();
                }
                async { Ok::<(), hyperfleet_tracing::HandlerError>(()) }
            },
            async move { enough.notified().await },
        )
        .await
        .expect("ran");
}

/// What a throughput round times.
#[derive(Clone, Copy)]
pub enum Mode {
    /// Publishing and handling at once, until every message is handled.
    RoundTrip,
    /// Publishing alone, until every publish is confirmed.
    Publish,
    /// Handling alone, of messages published before the clock starts.
    Receive,
}

impl Mode {
    /// Every mode, or those `HYPERFLEET_BENCH_MODES` names (comma-separated).
    pub fn chosen() -> Vec<Self> {
        let all = [Self::RoundTrip, Self::Publish, Self::Receive];
        match std::env::var("HYPERFLEET_BENCH_MODES") {
            Ok(names) => {
                let chosen: Vec<Self> = all
                    .into_iter()
                    .filter(|mode| names.split(',').any(|name| name.trim() == mode.name()))
                    .collect();
                assert!(
                    !chosen.is_empty(),
                    "HYPERFLEET_BENCH_MODES names none of roundtrip, publish, receive: {names}"
                );
                chosen
            }
            Err(_) => all.to_vec(),
        }
    }

    /// The peers' argument, and the group's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::RoundTrip => "roundtrip",
            Self::Publish => "publish",
            Self::Receive => "receive",
        }
    }
}
