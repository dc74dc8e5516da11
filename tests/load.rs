//! Load: many traced messages, two subscriptions, eight handlers each. Every message is handled
//! by each subscription, none is acked before its handler finished, and every receive span's
//! parent is its message's publish span.
//!
//! 10,000 messages on the memory transport by default; `HYPERFLEET_LONG_TESTS=1` runs the
//! 100,000 of the long run. With the `pubsub` feature, a smaller run crosses the Pub/Sub
//! emulator.

mod support;

use async_trait::async_trait;
use cloudevents::AttributesReader;
use hyperfleet_tracing::Settings;
use hyperfleet_tracing::transport::memory::MemoryTransport;
use hyperfleet_tracing::transport::{
    Acknowledger, Delivery, DeliveryStream, Message, SubscriptionConfig, Transport, TransportError,
};
use hyperfleet_tracing::{HandlerError, Received};
use hyperfleet_tracing::{TracedPublisher, TracedSubscriber};
use opentelemetry::trace::{SpanId, TraceId};
use opentelemetry::{Context, Value};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SdkTracerProvider, Span, SpanData, SpanProcessor};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const TOPIC: &str = "hyperfleet-clusters";
const SUBSCRIPTIONS: [&str; 2] = ["validation", "provisioning"];
const CONCURRENCY: usize = 8;

fn message_count() -> usize {
    match std::env::var("HYPERFLEET_LONG_TESTS").as_deref() {
        Ok("1" | "true") => 100_000,
        _ => 10_000,
    }
}

/// The little of each span the trace check needs; keeping whole spans of a long run would
/// cost gigabytes.
#[derive(Debug, Clone)]
struct Recorded {
    name: String,
    trace_id: TraceId,
    span_id: SpanId,
    parent_span_id: SpanId,
    event_id: Option<String>,
}

#[derive(Debug, Default, Clone)]
struct Recorder(Arc<Mutex<Vec<Recorded>>>);

impl SpanProcessor for Recorder {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        let event_id = span
            .attributes
            .iter()
            .find(|kv| kv.key.as_str() == "cloudevents.event_id")
            .and_then(|kv| match &kv.value {
                Value::String(s) => Some(s.as_str().to_owned()),
                _ => None,
            });
        self.0.lock().unwrap().push(Recorded {
            name: span.name.into_owned(),
            trace_id: span.span_context.trace_id(),
            span_id: span.span_context.span_id(),
            parent_span_id: span.parent_span_id,
            event_id,
        });
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }
}

/// Handler finishes and acks, by `subscription/message id`; an ack whose handler has not
/// finished is counted as a violation.
#[derive(Default)]
struct Ledger {
    finished: Mutex<HashSet<String>>,
    early_acks: AtomicUsize,
    acks: AtomicUsize,
}

/// A transport that checks every ack against the [`Ledger`].
struct Checked<T> {
    inner: T,
    ledger: Arc<Ledger>,
}

struct CheckedAcker {
    key: String,
    ledger: Arc<Ledger>,
    inner: Box<dyn Acknowledger>,
}

#[async_trait]
impl Acknowledger for CheckedAcker {
    async fn ack(self: Box<Self>) -> Result<(), TransportError> {
        if !self.ledger.finished.lock().unwrap().contains(&self.key) {
            self.ledger.early_acks.fetch_add(1, Ordering::SeqCst);
        }
        self.ledger.acks.fetch_add(1, Ordering::SeqCst);
        self.inner.ack().await
    }

    async fn nack(self: Box<Self>) -> Result<(), TransportError> {
        self.inner.nack().await
    }
}

impl<T: Transport> Transport for Checked<T> {
    fn system(&self) -> &'static str {
        self.inner.system()
    }

    fn server_address(&self) -> Option<&str> {
        self.inner.server_address()
    }

    async fn publish(&self, topic: &str, message: Message) -> Result<String, TransportError> {
        self.inner.publish(topic, message).await
    }

    async fn subscribe(&self, subscription: &str) -> Result<DeliveryStream, TransportError> {
        let ledger = Arc::clone(&self.ledger);
        let subscription = subscription.to_owned();
        let stream = self.inner.subscribe(&subscription).await?;
        Ok(stream.map_deliveries(move |delivery| {
            let (message, attempt, acker) = delivery.into_parts();
            let key = format!("{subscription}/{}", message.id.as_deref().unwrap_or(""));
            let acker = CheckedAcker {
                key,
                ledger: Arc::clone(&ledger),
                inner: acker,
            };
            Delivery::new(message, attempt, Box::new(acker))
        }))
    }
}

struct Outcome {
    /// Event ids each subscription handled, with how often.
    handled: HashMap<&'static str, HashMap<String, usize>>,
    spans: Vec<Recorded>,
    ledger: Arc<Ledger>,
}

/// Publishes `count` events while both subscriptions handle them, until each has seen all.
async fn run_load<T: Transport + Clone>(transport: T, count: usize) -> Outcome {
    let recorder = Recorder::default();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(recorder.clone())
        .build();
    let ledger = Arc::new(Ledger::default());

    let mut loops = Vec::new();
    let mut tallies = Vec::new();
    for subscription in SUBSCRIPTIONS {
        let tally: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
        let (progress, mut watch) = tokio::sync::watch::channel(0usize);
        let checked = Checked {
            inner: transport.clone(),
            ledger: Arc::clone(&ledger),
        };
        let (seen, finished) = (Arc::clone(&tally), Arc::clone(&ledger));
        let handler = move |received: Received| {
            let (seen, finished, progress) = (seen.clone(), finished.clone(), progress.clone());
            async move {
                // Give the other handlers a turn, so that they really interleave.
                tokio::task::yield_now().await;
                let distinct = {
                    let mut seen = seen.lock().unwrap();
                    *seen.entry(received.event.id().to_owned()).or_default() += 1;
                    seen.len()
                };
                finished.finished.lock().unwrap().insert(format!(
                    "{}/{}",
                    received.subscription,
                    received.message_id.as_deref().unwrap_or("")
                ));
                progress.send_replace(distinct);
                Ok::<(), HandlerError>(())
            }
        };
        let subscriber = TracedSubscriber::new(checked, subscription, TOPIC)
            .settings(Settings::new().tracer_provider(&provider))
            .concurrency(CONCURRENCY);
        loops.push(tokio::spawn(subscriber.run(handler, async move {
            let _ = watch.wait_for(|n| *n >= count).await;
        })));
        tallies.push((subscription, tally));
    }

    let publisher =
        TracedPublisher::new(transport, TOPIC).settings(Settings::new().tracer_provider(&provider));
    for i in 0..count {
        publisher
            .publish(support::events::reconcile_event(&format!("cluster-{i}")))
            .await
            .expect("published");
    }
    for running in loops {
        running
            .await
            .expect("the loop did not panic")
            .expect("the loop ended cleanly");
    }

    let handled = tallies
        .into_iter()
        .map(|(subscription, tally)| (subscription, tally.lock().unwrap().clone()))
        .collect();
    let spans = recorder.0.lock().unwrap().clone();
    Outcome {
        handled,
        spans,
        ledger,
    }
}

/// Receive spans whose parent is not their event's publish span, and process spans whose
/// parent is not a receive span.
fn broken_traces(spans: &[Recorded]) -> Vec<String> {
    let publish: HashMap<&str, &Recorded> = spans
        .iter()
        .filter(|s| s.name == "hyperfleet-clusters publish")
        .filter_map(|s| Some((s.event_id.as_deref()?, s)))
        .collect();
    let receives: HashMap<SpanId, &Recorded> = spans
        .iter()
        .filter(|s| s.name == "hyperfleet-clusters receive")
        .map(|s| (s.span_id, s))
        .collect();
    let mut broken = Vec::new();
    for receive in receives.values() {
        let parent = receive.event_id.as_deref().and_then(|id| publish.get(id));
        match parent {
            Some(p) if p.span_id == receive.parent_span_id && p.trace_id == receive.trace_id => {}
            _ => broken.push(format!("receive of {:?}", receive.event_id)),
        }
    }
    for process in spans.iter().filter(|s| s.name == "adapter.process") {
        match receives.get(&process.parent_span_id) {
            Some(r) if r.trace_id == process.trace_id => {}
            _ => broken.push(format!("process of {:?}", process.event_id)),
        }
    }
    broken
}

fn check(outcome: &Outcome, count: usize, exactly_once: bool) {
    let expected: HashSet<String> = (0..count).map(|i| format!("cluster-{i}")).collect();
    for (subscription, tally) in &outcome.handled {
        let handled: HashSet<String> = tally.keys().cloned().collect();
        assert_eq!(
            handled.len(),
            count,
            "{subscription} handled {} distinct events of {count}",
            handled.len()
        );
        assert_eq!(handled, expected, "{subscription} handled other events");
        if exactly_once {
            let repeated = tally.values().filter(|n| **n > 1).count();
            assert_eq!(
                repeated, 0,
                "{subscription} handled {repeated} events twice"
            );
        }
    }
    assert_eq!(
        outcome.ledger.early_acks.load(Ordering::SeqCst),
        0,
        "acked before the handler finished"
    );
    assert!(outcome.ledger.acks.load(Ordering::SeqCst) >= 2 * count);
    let receives = outcome
        .spans
        .iter()
        .filter(|s| s.name == "hyperfleet-clusters receive")
        .count();
    assert!(receives >= 2 * count, "{receives} receive spans");
    let broken = broken_traces(&outcome.spans);
    assert!(
        broken.is_empty(),
        "{} broken traces, e.g. {:?}",
        broken.len(),
        &broken[..broken.len().min(5)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_transport_under_load_loses_nothing_and_breaks_no_trace() {
    let transport = MemoryTransport::new();
    transport.create_topic(TOPIC).unwrap();
    for subscription in SUBSCRIPTIONS {
        transport
            .create_subscription(subscription, TOPIC, SubscriptionConfig::default())
            .unwrap();
    }
    let count = message_count();
    let outcome = run_load(transport, count).await;
    check(&outcome, count, true);
}

#[cfg(feature = "pubsub")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pubsub_emulator_under_load_loses_nothing_and_breaks_no_trace() {
    use hyperfleet_tracing::transport::pubsub::{PubSubAdmin, PubSubConfig, PubSubTransport};
    use support::emulator::Emulator;

    let emulator = tokio::task::spawn_blocking(Emulator::start).await.unwrap();
    let config = PubSubConfig::new("hyperfleet-load").emulator(&emulator.host);
    let admin = PubSubAdmin::connect(config.clone()).await.unwrap();
    let topic_config = SubscriptionConfig::default();
    admin.create_topic_if_missing(TOPIC).await.unwrap();
    for subscription in SUBSCRIPTIONS {
        admin
            .create_subscription_if_missing(subscription, TOPIC, &topic_config)
            .await
            .unwrap();
    }
    let transport = PubSubTransport::connect(config).await.unwrap();
    let count = message_count() / 20;
    let outcome = run_load(transport, count).await;
    // Pub/Sub delivers at least once: a message may come twice, but none may be missing.
    check(&outcome, count, false);
}
