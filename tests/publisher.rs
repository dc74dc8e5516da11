//! The traced publisher: batch spans, and failures recorded the way the standard asks.

use cloudevents::{AttributesReader, AttributesWriter, Event, EventBuilder, EventBuilderV10};
use futures::StreamExt;
use hyperfleet_tracing::Settings;
use hyperfleet_tracing::testing::TestTelemetry;
use hyperfleet_tracing::testing::spans::{attribute, attribute_str, named, single};
use hyperfleet_tracing::transport::memory::MemoryTransport;
use hyperfleet_tracing::transport::{ErrorCode, SubscriptionConfig, Transport};
use hyperfleet_tracing::{PublishError, PublishOptions, TracedPublisher, binding};
use opentelemetry::Value;
use opentelemetry::trace::{SpanKind, Status, TraceContextExt, Tracer, TracerProvider};

/// A memory transport with topic `t` and its subscription `s`.
fn topic_with_subscription() -> MemoryTransport {
    let transport = MemoryTransport::new();
    transport.create_topic("t").unwrap();
    transport
        .create_subscription("s", "t", SubscriptionConfig::default())
        .unwrap();
    transport
}

/// The first event delivered on `s`.
async fn first_event(transport: &MemoryTransport) -> Event {
    let delivery = transport
        .subscribe("s")
        .await
        .unwrap()
        .next()
        .await
        .unwrap()
        .unwrap();
    binding::decode(&delivery.message).unwrap()
}

fn event(id: &str) -> Event {
    EventBuilderV10::new()
        .id(id)
        .source("hyperfleet-sentinel")
        .ty("com.redhat.hyperfleet.cluster.reconcile")
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_batch_has_one_create_span_per_message_and_a_send_span_linking_them() {
    let telemetry = TestTelemetry::new();
    let transport = MemoryTransport::new();
    transport.create_topic("hyperfleet-clusters").unwrap();
    transport
        .create_subscription("a", "hyperfleet-clusters", SubscriptionConfig::default())
        .unwrap();
    let publisher = TracedPublisher::new(transport.clone(), "hyperfleet-clusters")
        .settings(Settings::new().tracer_provider(&telemetry.provider));
    let mut bad = event("bad");
    bad.set_extension("Bad-Name", "x");
    let results = publisher
        .publish_batch(vec![event("e1"), bad, event("e3")])
        .await;
    assert!(results[0].is_ok() && results[2].is_ok());
    assert!(matches!(results[1], Err(PublishError::Encode(_))));

    let spans = telemetry.spans();
    let creates = named(&spans, "hyperfleet-clusters create");
    assert_eq!(creates.len(), 3);
    assert!(creates.iter().all(|s| s.span_kind == SpanKind::Producer));
    let send = single(&spans, "hyperfleet-clusters publish").unwrap();
    assert_eq!(send.span_kind, SpanKind::Client);
    assert_eq!(
        attribute(send, "messaging.batch.message_count"),
        Some(&Value::I64(2))
    );
    assert_eq!(send.links.links.len(), 3);
    assert!(
        matches!(send.status, Status::Error { .. }),
        "a failed message marks the send span"
    );
    let failed: Vec<_> = creates
        .iter()
        .filter(|s| matches!(s.status, Status::Error { .. }))
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(
        attribute_str(failed[0], "error.type").as_deref(),
        Some("invalid_extension_name")
    );

    // Each delivered event carries its own create span's context.
    let mut deliveries = transport.subscribe("a").await.unwrap();
    for _ in 0..2 {
        let delivery = deliveries.next().await.unwrap().unwrap();
        let received = binding::decode(&delivery.message).unwrap();
        let cx = hyperfleet_tracing::carrier::extract(&received);
        use opentelemetry::trace::TraceContextExt;
        let carried = cx.span().span_context().span_id();
        let create = creates
            .iter()
            .find(|s| s.span_context.span_id() == carried)
            .expect("the event carries a create span's context");
        assert_eq!(
            attribute_str(create, "cloudevents.event_id").as_deref(),
            Some(received.id())
        );
        assert_eq!(
            attribute_str(create, "messaging.message.id"),
            delivery.message.id.clone()
        );
        delivery.ack().await.unwrap();
    }
}

#[tokio::test]
async fn a_transport_error_is_returned_and_recorded_with_its_grpc_code() {
    let telemetry = TestTelemetry::new();
    let publisher = TracedPublisher::new(MemoryTransport::new(), "missing-topic")
        .settings(Settings::new().tracer_provider(&telemetry.provider));
    let error = publisher.publish(event("e1")).await.unwrap_err();
    assert!(matches!(&error, PublishError::Transport(e) if e.code() == ErrorCode::NotFound));
    assert_eq!(error.error_type(), "NOT_FOUND");
    let spans = telemetry.spans();
    let span = single(&spans, "missing-topic publish").unwrap();
    assert_eq!(
        attribute_str(span, "error.type").as_deref(),
        Some("NOT_FOUND")
    );
    assert!(
        matches!(&span.status, Status::Error { description } if description.contains("missing-topic"))
    );
    assert_eq!(attribute(span, "messaging.message.id"), None);
}

#[tokio::test]
async fn overwrite_removes_a_stale_context_even_when_there_is_none_to_write() {
    let transport = topic_with_subscription();
    // No tracer provider: the publish span is invalid and nothing is injected.
    let publisher = TracedPublisher::new(transport.clone(), "t")
        .settings(
            Settings::new().tracer_provider(&opentelemetry::trace::noop::NoopTracerProvider::new()),
        )
        .overwrite_policy(hyperfleet_tracing::carrier::OverwritePolicy::Overwrite);
    let mut stale = event("e1");
    stale.set_extension(
        "traceparent",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    );
    stale.set_extension("tracestate", "old=1");
    publisher.publish(stale).await.unwrap();
    let received = first_event(&transport).await;
    assert_eq!(received.extension("traceparent"), None);
    assert_eq!(received.extension("tracestate"), None);
}

#[tokio::test]
async fn every_text_on_a_publish_span_is_bounded_however_big_the_event() {
    let telemetry = TestTelemetry::new();
    let transport = MemoryTransport::new();
    transport.create_topic("t").unwrap();
    let publisher = TracedPublisher::new(transport, "t")
        .settings(Settings::new().tracer_provider(&telemetry.provider));
    let huge = "x".repeat(1 << 20);
    let mut event = event("e1");
    event.set_source(huge.clone());
    event.set_type(huge.clone());
    event.set_subject(Some(huge.clone()));
    event.set_data(
        "application/json",
        serde_json::json!({"id": huge, "kind": huge}),
    );
    publisher
        .publish_with(event, PublishOptions::new().ordering_key("k".repeat(1024)))
        .await
        .unwrap();
    let spans = telemetry.spans();
    assert_eq!(spans.len(), 1);
    let oversized = hyperfleet_tracing::testing::spans::oversized(&spans[0], 256);
    assert!(oversized.is_empty(), "{oversized:#?}");
}

#[tokio::test]
async fn overwrite_removes_a_stale_untrusted_baggage_the_propagator_does_not_write() {
    let telemetry = TestTelemetry::new();
    let transport = topic_with_subscription();
    // W3C TraceContext only: no baggage is written for this publish.
    let publisher = TracedPublisher::new(transport.clone(), "t")
        .settings(
            Settings::new()
                .tracer_provider(&telemetry.provider)
                .propagator(opentelemetry_sdk::propagation::TraceContextPropagator::new()),
        )
        .overwrite_policy(hyperfleet_tracing::carrier::OverwritePolicy::Overwrite);
    let mut stale = event("e1");
    stale.set_extension(
        "traceparent",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    );
    stale.set_extension("baggage", "user=attacker,role=admin");
    publisher.publish(stale).await.unwrap();
    let received = first_event(&transport).await;
    assert_eq!(received.extension("baggage"), None);
    assert!(received.extension("traceparent").is_some());
}

#[tokio::test]
async fn a_message_over_pubsubs_limits_is_refused_alone_with_the_limit_named() {
    let telemetry = TestTelemetry::new();
    let transport = topic_with_subscription();
    let publisher = TracedPublisher::new(transport.clone(), "t")
        .settings(Settings::new().tracer_provider(&telemetry.provider))
        .encoding(binding::Encoding::Binary);
    let mut oversized = event("too-big");
    oversized.set_extension("note", "n".repeat(2000));
    let results = publisher
        .publish_batch(vec![event("good-1"), oversized, event("good-2")])
        .await;
    assert!(results[0].is_ok() && results[2].is_ok(), "{results:?}");
    let error = results[1].as_ref().unwrap_err();
    assert_eq!(error.error_type(), "INVALID_ARGUMENT", "{error}");
    assert!(
        error.to_string().contains("ce-note") && error.to_string().contains("1024"),
        "the error does not name the limit: {error}"
    );
    let mut stream = transport.subscribe("s").await.unwrap();
    for expected in ["good-1", "good-2"] {
        let delivery = stream.next().await.unwrap().unwrap();
        assert_eq!(binding::decode(&delivery.message).unwrap().id(), expected);
        delivery.ack().await.unwrap();
    }
    assert_eq!(transport.backlog("s").unwrap(), 0);
}

#[tokio::test]
async fn a_publisher_that_makes_no_spans_leaves_the_callers_span_alone() {
    let caller = TestTelemetry::new();
    let transport = topic_with_subscription();
    let publisher = TracedPublisher::new(transport.clone(), "t").settings(
        Settings::new().tracer_provider(&opentelemetry::trace::noop::NoopTracerProvider::new()),
    );
    let poll = caller.provider.tracer("caller").start("poll");
    let parent = opentelemetry::Context::new().with_span(poll);
    // The second publish runs once the publisher has learnt that its tracer makes no spans.
    for id in ["e1", "e2"] {
        let options = PublishOptions::new().parent(parent.clone());
        publisher.publish_with(event(id), options).await.unwrap();
    }
    let batched = publisher
        .publish_batch_with(vec![event("e3")], &parent)
        .await;
    assert!(batched.iter().all(Result::is_ok));
    // A failed publish, which records its error on the span it has.
    let nowhere = TracedPublisher::new(transport.clone(), "missing").settings(
        Settings::new().tracer_provider(&opentelemetry::trace::noop::NoopTracerProvider::new()),
    );
    for id in ["e4", "e5"] {
        let options = PublishOptions::new().parent(parent.clone());
        assert!(nowhere.publish_with(event(id), options).await.is_err());
    }
    assert!(
        caller.spans().is_empty(),
        "the publisher ended the caller's span"
    );
    parent.span().end();
    let spans = caller.spans();
    let poll = single(&spans, "poll").unwrap();
    assert_eq!(attribute(poll, "messaging.message.id"), None);
    assert_eq!(poll.status, Status::Unset);
}

/// The publish span of the message with event id `id`.
fn publish_span_of<'a>(
    spans: &'a [opentelemetry_sdk::trace::SpanData],
    name: &str,
    id: &str,
) -> &'a opentelemetry_sdk::trace::SpanData {
    named(spans, name)
        .into_iter()
        .find(|s| attribute_str(s, "cloudevents.event_id").as_deref() == Some(id))
        .unwrap_or_else(|| panic!("no `{name}` span for event {id}"))
}

#[tokio::test]
async fn a_publish_future_made_under_a_context_keeps_it_when_awaited_outside() {
    let telemetry = TestTelemetry::new();
    let transport = topic_with_subscription();
    let publisher = TracedPublisher::new(transport.clone(), "t")
        .settings(Settings::new().tracer_provider(&telemetry.provider));
    let tracer = telemetry.provider.tracer("test");
    let (first, second) = (tracer.start("first"), tracer.start("second"));
    let (first, second) = (
        opentelemetry::Context::current_with_span(first),
        opentelemetry::Context::current_with_span(second),
    );

    // Made under one context, awaited outside it (and joined with one made under another).
    let pending_one = {
        let _attached = first.clone().attach();
        publisher.publish(event("one"))
    };
    let pending_two = {
        let _attached = second.clone().attach();
        publisher.publish_batch(vec![event("two")])
    };
    let (one, two) = futures::join!(pending_one, pending_two);
    one.unwrap();
    two.into_iter().for_each(|r| {
        r.unwrap();
    });
    first.span().end();
    second.span().end();

    let spans = telemetry.spans();
    let one = publish_span_of(&spans, "t publish", "one");
    assert_eq!(one.parent_span_id, first.span().span_context().span_id());
    let two = publish_span_of(&spans, "t create", "two");
    assert_eq!(two.parent_span_id, second.span().span_context().span_id());
}
