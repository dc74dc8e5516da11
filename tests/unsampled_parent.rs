//! `UnsampledParent::Follow` (the default): under a valid parent that is neither sampled nor
//! recording, the publisher and the subscriber start no span (the sampler is never asked), the
//! parent's trace travels on under a span id of the hop's own, and everything else — a sampled parent, a recording one, the
//! settlement — is as under the default.

mod support;

use cloudevents::Event;
use futures::StreamExt;
use hyperfleet_tracing::Settings;
use hyperfleet_tracing::settings::Conventions;
use hyperfleet_tracing::settings::UnsampledParent;
use hyperfleet_tracing::testing::reconcile_event;
use hyperfleet_tracing::transport::Transport;
use hyperfleet_tracing::transport::memory::MemoryTransport;
use hyperfleet_tracing::{
    HandlerError, PublishOptions, Published, Received, TracedPublisher, TracedSubscriber, binding,
};
use opentelemetry::trace::{
    Link, SpanContext, SpanKind, TraceContextExt, TraceId, Tracer, TracerProvider,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::{
    InMemorySpanExporter, Sampler, SamplingDecision, SamplingResult, SdkTracerProvider,
    ShouldSample,
};
use std::sync::{Arc, Mutex};

const TOPIC: &str = "hyperfleet-clusters";
const SUBSCRIPTION: &str = "validation";

/// Hands every decision to `inner`, noting the name of each span it was asked about: a span
/// the SDK makes is always put to its sampler first.
#[derive(Debug, Clone)]
struct Asked {
    inner: Sampler,
    names: Arc<Mutex<Vec<String>>>,
}

impl ShouldSample for Asked {
    fn should_sample(
        &self,
        parent: Option<&Context>,
        trace_id: TraceId,
        name: &str,
        kind: &SpanKind,
        attributes: &[KeyValue],
        links: &[Link],
    ) -> SamplingResult {
        self.names.lock().unwrap().push(name.to_owned());
        self.inner
            .should_sample(parent, trace_id, name, kind, attributes, links)
    }
}

/// Records every span and samples none: each is recording, none is sampled.
#[derive(Debug, Clone)]
struct RecordOnly;

impl ShouldSample for RecordOnly {
    fn should_sample(
        &self,
        _parent: Option<&Context>,
        _trace_id: TraceId,
        _name: &str,
        _kind: &SpanKind,
        _attributes: &[KeyValue],
        _links: &[Link],
    ) -> SamplingResult {
        SamplingResult {
            decision: SamplingDecision::RecordOnly,
            attributes: Vec::new(),
            trace_state: Default::default(),
        }
    }
}

/// A provider whose sampler is `inner`, the names it was asked about, and what it exported.
struct Traced {
    provider: SdkTracerProvider,
    asked: Arc<Mutex<Vec<String>>>,
    exporter: InMemorySpanExporter,
}

impl Traced {
    fn new(inner: Sampler) -> Self {
        let asked = Arc::new(Mutex::new(Vec::new()));
        let exporter = InMemorySpanExporter::default();
        let sampler = Asked {
            inner,
            names: Arc::clone(&asked),
        };
        let provider = SdkTracerProvider::builder()
            .with_sampler(sampler)
            .with_simple_exporter(exporter.clone())
            .build();
        Self {
            provider,
            asked,
            exporter,
        }
    }

    /// The span names the sampler was asked about since the last call.
    fn asked(&self) -> Vec<String> {
        std::mem::take(&mut *self.asked.lock().unwrap())
    }

    fn exported(&self) -> Vec<String> {
        let spans = self.exporter.get_finished_spans().unwrap();
        spans
            .into_iter()
            .map(|span| span.name.into_owned())
            .collect()
    }
}

/// The span context an event carries in its `traceparent`.
fn carried(event: &Event) -> SpanContext {
    hyperfleet_tracing::carrier::remote_span_context(event).expect("a traceparent")
}

/// The next event on `subscription`, left unacked.
async fn peek(transport: &MemoryTransport, subscription: &str) -> Event {
    let mut stream = transport.subscribe(subscription).await.unwrap();
    let delivery = stream.next().await.unwrap().unwrap();
    let event = binding::decode(&delivery.message).unwrap();
    delivery.nack().await.unwrap();
    event
}

/// Runs one delivery through a subscriber set to `unsampled`, its handler succeeding; returns
/// the handler's context.
async fn handled(
    transport: &MemoryTransport,
    traced: &Traced,
    unsampled: UnsampledParent,
) -> SpanContext {
    let conventions = Conventions::HyperFleet;
    handled_with(transport, traced, (unsampled, conventions), || Ok(())).await
}

/// The same under `conventions`, the handler answering `outcome()`.
async fn handled_with(
    transport: &MemoryTransport,
    traced: &Traced,
    (unsampled, conventions): (UnsampledParent, Conventions),
    outcome: impl Fn() -> Result<(), HandlerError> + Send + Sync + 'static,
) -> SpanContext {
    let seen = Arc::new(Mutex::new(None));
    let subscriber = TracedSubscriber::new(transport.clone(), SUBSCRIPTION, TOPIC).settings(
        Settings::new()
            .tracer_provider(&traced.provider)
            .conventions(conventions)
            .unsampled_parent(unsampled),
    );
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let handler_seen = Arc::clone(&seen);
    subscriber
        .run(
            move |received: Received| {
                let current = Context::current().span().span_context().clone();
                assert_eq!(&current, received.context.span().span_context());
                *handler_seen.lock().unwrap() = Some(current);
                let _ = tx.send(());
                std::future::ready(outcome())
            },
            async move {
                rx.recv().await;
            },
        )
        .await
        .unwrap();
    let seen = seen.lock().unwrap().take();
    seen.expect("the handler ran")
}

/// Nothing is waiting on the subscription or leased: every delivery was acked.
fn assert_acked(transport: &MemoryTransport) {
    assert_eq!(transport.backlog(SUBSCRIPTION).unwrap(), 0, "acked");
    assert_eq!(transport.outstanding(SUBSCRIPTION).unwrap(), 0);
}

/// Publishes one reconcile event as a new root under `traced`'s sampler.
async fn publish_root(transport: &MemoryTransport, traced: &Traced) -> SpanContext {
    let publisher = TracedPublisher::new(transport.clone(), TOPIC)
        .settings(Settings::new().tracer_provider(&traced.provider));
    let published = publisher
        .publish(reconcile_event("e1", "c1").unwrap())
        .await
        .unwrap();
    published.trace_context
}

/// A parent-based sampler that samples no root, a subscription, and one event published under
/// the unsampled root span that sampler made: the set-up of most tests here.
async fn unsampled_root_published() -> (Traced, MemoryTransport, SpanContext) {
    let traced = Traced::new(Sampler::ParentBased(Box::new(Sampler::AlwaysOff)));
    let transport = support::memory::with_subscription(TOPIC, SUBSCRIPTION);
    let root = publish_root(&transport, &traced).await;
    (traced, transport, root)
}

#[tokio::test]
async fn under_an_unsampled_parent_the_subscriber_starts_no_span_and_hands_on_the_parent() {
    let (traced, transport, root) = unsampled_root_published().await;
    assert!(root.is_valid() && !root.is_sampled());
    assert_eq!(traced.asked(), ["hyperfleet-clusters publish"]);
    let sent = carried(&peek(&transport, SUBSCRIPTION).await);

    // The default: the sampler is asked for both spans, and the handler runs in a span of
    // its own (unsampled, as its parent).
    let asked_spans = handled(&transport, &traced, UnsampledParent::AskSampler).await;
    assert_eq!(
        traced.asked(),
        ["hyperfleet-clusters receive", "adapter.process"]
    );
    assert_eq!(asked_spans.trace_id(), sent.trace_id());
    assert_ne!(asked_spans.span_id(), sent.span_id());
    assert!(transport.backlog(SUBSCRIPTION).unwrap() == 0);

    // Followed: no span is started, and the handler runs in the parent's trace, under a
    // span id of its own that nothing records.
    publish_root(&transport, &traced).await;
    traced.asked();
    let sent = carried(&peek(&transport, SUBSCRIPTION).await);
    let followed = handled(&transport, &traced, UnsampledParent::Follow).await;
    assert_eq!(traced.asked(), Vec::<String>::new());
    assert_eq!(followed.trace_id(), sent.trace_id());
    assert_ne!(followed.span_id(), sent.span_id());
    assert!(followed.is_valid() && !followed.is_sampled());
    assert_acked(&transport);
    assert!(traced.exported().is_empty());
}

#[tokio::test]
async fn under_a_sampled_parent_the_subscriber_traces_as_always() {
    let traced = Traced::new(Sampler::ParentBased(Box::new(Sampler::AlwaysOn)));
    let transport = support::memory::with_subscription(TOPIC, SUBSCRIPTION);
    let root = publish_root(&transport, &traced).await;
    assert!(root.is_sampled());
    traced.asked();
    let process = handled(&transport, &traced, UnsampledParent::Follow).await;
    assert_eq!(
        traced.asked(),
        ["hyperfleet-clusters receive", "adapter.process"]
    );
    assert!(process.is_sampled());
    assert_eq!(process.trace_id(), root.trace_id());
    assert_ne!(process.span_id(), root.span_id());
    let exported = traced.exported();
    for name in ["hyperfleet-clusters receive", "adapter.process"] {
        assert!(exported.iter().any(|n| n == name), "{name} in {exported:?}");
    }
}

/// A context holding a `poll` span started by `traced`'s tracer (the sampler's answer
/// forgotten), and a publisher that follows unsampled parents.
fn poll_and_publisher(
    transport: &MemoryTransport,
    traced: &Traced,
) -> (Context, TracedPublisher<MemoryTransport>) {
    let poll = traced.provider.tracer("sentinel").start("poll");
    traced.asked();
    let publisher = TracedPublisher::new(transport.clone(), TOPIC).settings(
        Settings::new()
            .tracer_provider(&traced.provider)
            .unsampled_parent(UnsampledParent::Follow),
    );
    (Context::new().with_span(poll), publisher)
}

/// Publishes reconcile event `id` under `parent`.
async fn publish_under(
    publisher: &TracedPublisher<MemoryTransport>,
    parent: &Context,
    id: &str,
) -> Published {
    let options = PublishOptions::new().parent(parent.clone());
    let event = reconcile_event(id, "c1").unwrap();
    publisher.publish_with(event, options).await.unwrap()
}

#[tokio::test]
async fn under_an_unsampled_local_parent_the_publisher_starts_no_span_and_sends_the_parent() {
    let traced = Traced::new(Sampler::ParentBased(Box::new(Sampler::AlwaysOff)));
    let transport = support::memory::with_subscription(TOPIC, SUBSCRIPTION);
    let (parent, publisher) = poll_and_publisher(&transport, &traced);
    let poll = parent.span().span_context().clone();
    assert!(poll.is_valid() && !poll.is_sampled());
    let published = publish_under(&publisher, &parent, "e1").await;
    let batch = vec![reconcile_event("e2", "c1").unwrap()];
    let batched = publisher.publish_batch_with(batch, &parent).await;
    assert_eq!(traced.asked(), Vec::<String>::new());
    let batched = batched.into_iter().next().unwrap().unwrap();
    // Each publish hands on the poll's trace under a parent id of its own (W3C: the
    // `parent-id` is the caller's operation), unsampled as the poll.
    let own = [published.trace_context, batched.trace_context];
    for context in &own {
        assert_eq!(context.trace_id(), poll.trace_id());
        assert_ne!(context.span_id(), poll.span_id());
        assert!(context.is_valid() && !context.is_sampled());
    }
    assert_ne!(own[0].span_id(), own[1].span_id());
    let mut stream = transport.subscribe(SUBSCRIPTION).await.unwrap();
    for expected in &own {
        let delivery = stream.next().await.unwrap().unwrap();
        let sent = carried(&binding::decode(&delivery.message).unwrap());
        delivery.ack().await.unwrap();
        assert_eq!(
            (sent.trace_id(), sent.span_id()),
            (expected.trace_id(), expected.span_id())
        );
        assert!(!sent.is_sampled());
    }
}

#[tokio::test]
async fn a_recording_parent_that_is_not_sampled_still_gets_its_child_spans() {
    let traced = Traced::new(Sampler::ParentBased(Box::new(RecordOnly)));
    let transport = support::memory::with_subscription(TOPIC, SUBSCRIPTION);
    let (parent, publisher) = poll_and_publisher(&transport, &traced);
    assert!(parent.span().is_recording());
    assert!(!parent.span().span_context().is_sampled());
    let published = publish_under(&publisher, &parent, "e1").await;
    assert_eq!(traced.asked(), ["hyperfleet-clusters publish"]);
    let poll = parent.span().span_context().clone();
    assert_eq!(published.trace_context.trace_id(), poll.trace_id());
    assert_ne!(published.trace_context.span_id(), poll.span_id());
}

#[tokio::test]
async fn a_failed_handler_under_a_followed_parent_is_nacked_and_redelivered() {
    let (traced, transport, root) = unsampled_root_published().await;
    let follow = (UnsampledParent::Follow, Conventions::HyperFleet);
    let failing = || Err::<(), HandlerError>("the cluster API said no".into());
    let failed = handled_with(&transport, &traced, follow, failing).await;
    assert_eq!(failed.trace_id(), root.trace_id());
    assert!(!failed.is_sampled());
    let attempt = support::memory::ack_redelivered_at_once(&transport, SUBSCRIPTION).await;
    assert_eq!(attempt, Some(2), "nacked, and back for a second attempt");
    assert_eq!(transport.backlog(SUBSCRIPTION).unwrap(), 0);
    assert!(traced.exported().is_empty());
}

#[tokio::test]
async fn under_the_current_conventions_no_settle_span_is_started_either() {
    let (traced, transport, _) = unsampled_root_published().await;
    traced.asked();
    let current = Conventions::Messaging;
    let ok = || Ok(());
    handled_with(
        &transport,
        &traced,
        (UnsampledParent::AskSampler, current),
        ok,
    )
    .await;
    let asked = traced.asked();
    assert!(
        asked.iter().any(|name| name.starts_with("ack")),
        "{asked:?}"
    );
    publish_root(&transport, &traced).await;
    traced.asked();
    handled_with(&transport, &traced, (UnsampledParent::Follow, current), ok).await;
    assert_eq!(traced.asked(), Vec::<String>::new());
    assert_acked(&transport);
}

#[tokio::test]
async fn metrics_are_recorded_as_always_under_a_followed_parent() {
    let (traced, transport, _) = unsampled_root_published().await;
    traced.asked();
    let metrics = hyperfleet_tracing::testing::TestMetrics::new();
    let subscriber = TracedSubscriber::new(transport.clone(), SUBSCRIPTION, TOPIC).settings(
        Settings::new()
            .tracer_provider(&traced.provider)
            .metrics(metrics.metrics.clone())
            .unsampled_parent(UnsampledParent::Follow),
    );
    support::memory::handle(subscriber, 1, |_| Ok(())).await;
    assert_eq!(traced.asked(), Vec::<String>::new());
    let consumed = metrics.counter("hyperfleet_broker_messages_consumed_total", &[]);
    assert_eq!(consumed, 1);
    let (processed, _) = metrics.histogram_count("messaging.process.duration", &[]);
    assert_eq!(processed, 1);
}

#[tokio::test]
async fn a_linked_delivery_starts_a_new_trace_whatever_its_producer_sampled() {
    let traced = Traced::new(Sampler::ParentBased(Box::new(Sampler::AlwaysOn)));
    let transport = support::memory::with_subscription(TOPIC, SUBSCRIPTION);
    // The producer's context is unsampled; under `ParentMode::Link` it is only a link, and the
    // receive span is a new root for the sampler to decide.
    let unsampled = Traced::new(Sampler::ParentBased(Box::new(Sampler::AlwaysOff)));
    publish_root(&transport, &unsampled).await;
    let subscriber = TracedSubscriber::new(transport.clone(), SUBSCRIPTION, TOPIC).settings(
        Settings::new()
            .tracer_provider(&traced.provider)
            .parent_mode(hyperfleet_tracing::settings::ParentMode::Link)
            .unsampled_parent(UnsampledParent::Follow),
    );
    support::memory::handle(subscriber, 1, |_| Ok(())).await;
    assert_eq!(
        traced.asked(),
        ["hyperfleet-clusters receive", "adapter.process"]
    );
    let exported = traced.exported();
    assert!(
        exported.iter().any(|name| name == "adapter.process"),
        "{exported:?}"
    );
}
