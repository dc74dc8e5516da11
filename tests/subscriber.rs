//! The traced subscriber loop: shutdown, concurrency, policies, span options, and the
//! handler's own work joining the trace.

mod support;

use cloudevents::{AttributesReader, Event};
use hyperfleet_tracing::Settings;
use hyperfleet_tracing::settings::AckPolicy;
use hyperfleet_tracing::settings::Conventions;
use hyperfleet_tracing::settings::ParentMode;
use hyperfleet_tracing::testing::TestTelemetry;
use hyperfleet_tracing::testing::spans::{attribute_str, is_root, single};
use hyperfleet_tracing::transport::memory::MemoryTransport;
use hyperfleet_tracing::transport::{Message, SubscriptionConfig, Transport};
use hyperfleet_tracing::{HandlerError, Received};
use hyperfleet_tracing::{TracedPublisher, TracedSubscriber};
use opentelemetry::Context;
use opentelemetry::trace::{SpanKind, Status, TraceContextExt, Tracer, TracerProvider};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{Notify, mpsc};

fn event(id: &str) -> Event {
    support::events::reconcile_event(id)
}

fn setup() -> (MemoryTransport, TestTelemetry) {
    let transport = MemoryTransport::new();
    transport.create_topic("hyperfleet-clusters").unwrap();
    transport
        .create_subscription(
            "validation",
            "hyperfleet-clusters",
            SubscriptionConfig::default(),
        )
        .unwrap();
    (transport, TestTelemetry::new())
}

fn publisher(
    transport: &MemoryTransport,
    telemetry: &TestTelemetry,
) -> TracedPublisher<MemoryTransport> {
    TracedPublisher::new(transport.clone(), "hyperfleet-clusters").settings(settings(telemetry))
}

/// The settings of every publisher and subscriber here: spans to `telemetry`.
fn settings(telemetry: &TestTelemetry) -> Settings {
    Settings::new().tracer_provider(&telemetry.provider)
}

fn subscriber(
    transport: &MemoryTransport,
    telemetry: &TestTelemetry,
) -> TracedSubscriber<MemoryTransport> {
    TracedSubscriber::new(transport.clone(), "validation", "hyperfleet-clusters")
        .settings(settings(telemetry))
}

/// Publishes events `c0` … `c{n-1}`, all with the ordering key `cluster-1`.
async fn publish_keyed(transport: &MemoryTransport, telemetry: &TestTelemetry, n: usize) {
    for i in 0..n {
        publisher(transport, telemetry)
            .publish_with(
                event(&format!("c{i}")),
                hyperfleet_tracing::PublishOptions::new().ordering_key("cluster-1"),
            )
            .await
            .unwrap();
    }
}

/// A shutdown signal fired after `n` handler calls.
fn after_calls(
    n: usize,
) -> (
    mpsc::UnboundedSender<()>,
    impl std::future::Future<Output = ()>,
) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    (tx, async move {
        for _ in 0..n {
            rx.recv().await;
        }
    })
}

/// Runs `subscriber` until its handler has been called once, the handler returning `result`.
async fn handle_one(
    subscriber: TracedSubscriber<MemoryTransport>,
    result: Result<(), &'static str>,
) {
    let (tx, shutdown) = after_calls(1);
    subscriber
        .run(
            move |_: Received| {
                let _ = tx.send(());
                async move { result.map_err(HandlerError::from) }
            },
            shutdown,
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_waits_for_handlers_in_flight_and_settles_them() {
    let (transport, telemetry) = setup();
    publisher(&transport, &telemetry)
        .publish(event("c1"))
        .await
        .unwrap();
    let release = Arc::new(Notify::new());
    let finished = Arc::new(AtomicUsize::new(0));
    let (started, shutdown) = after_calls(1);
    let handler = {
        let release = Arc::clone(&release);
        let finished = Arc::clone(&finished);
        move |_: Received| {
            let release = Arc::clone(&release);
            let finished = Arc::clone(&finished);
            let _ = started.send(());
            async move {
                release.notified().await;
                finished.fetch_add(1, Ordering::SeqCst);
                Ok::<(), HandlerError>(())
            }
        }
    };
    let run = tokio::spawn(subscriber(&transport, &telemetry).run(handler, shutdown));
    // The handler is blocked, so shutdown cannot have returned before we release it.
    tokio::task::yield_now().await;
    assert!(!run.is_finished() || finished.load(Ordering::SeqCst) == 1);
    release.notify_one();
    run.await.unwrap().unwrap();
    assert_eq!(
        finished.load(Ordering::SeqCst),
        1,
        "returned before the handler finished"
    );
    assert_eq!(
        transport.backlog("validation").unwrap(),
        0,
        "the handled message was not acked"
    );
    assert!(single(&telemetry.spans(), "hyperfleet-clusters receive").is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_is_bounded() {
    let (transport, telemetry) = setup();
    for i in 0..6 {
        publisher(&transport, &telemetry)
            .publish(event(&format!("c{i}")))
            .await
            .unwrap();
    }
    let gated = support::memory::gated_run(subscriber(&transport, &telemetry), 6, 2).await;
    assert_eq!(gated.peak, 2, "peak concurrency");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn always_ack_acks_a_failed_message_but_records_the_failure() {
    let (transport, telemetry) = setup();
    publisher(&transport, &telemetry)
        .publish(event("c1"))
        .await
        .unwrap();
    handle_one(
        subscriber(&transport, &telemetry)
            .settings(settings(&telemetry).ack_policy(AckPolicy::AlwaysAck)),
        Err("cloud provider said no"),
    )
    .await;
    assert_eq!(transport.backlog("validation").unwrap(), 0);
    let spans = telemetry.spans();
    let process = single(&spans, "adapter.process").unwrap();
    assert!(
        matches!(&process.status, Status::Error { description } if description.contains("cloud provider said no"))
    );
    assert_eq!(
        attribute_str(process, "error.type").as_deref(),
        Some("_OTHER")
    );
    assert!(
        process.events.iter().any(|e| e.name == "exception"),
        "error not recorded as an event"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_mode_starts_a_new_trace_linked_to_the_producer() {
    let (transport, telemetry) = setup();
    let published = publisher(&transport, &telemetry)
        .publish(event("c1"))
        .await
        .unwrap();
    handle_one(
        subscriber(&transport, &telemetry)
            .settings(settings(&telemetry).parent_mode(ParentMode::Link)),
        Ok(()),
    )
    .await;
    let spans = telemetry.spans();
    let receive = single(&spans, "hyperfleet-clusters receive").unwrap();
    assert!(is_root(receive));
    assert_ne!(
        receive.span_context.trace_id(),
        published.trace_context.trace_id()
    );
    assert_eq!(receive.links.links.len(), 1);
    let linked = &receive.links.links[0].span_context;
    assert_eq!(linked.trace_id(), published.trace_context.trace_id());
    assert_eq!(linked.span_id(), published.trace_context.span_id());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn span_names_follow_the_options() {
    let (transport, telemetry) = setup();
    let operation_first = settings(&telemetry).conventions(Conventions::HyperFleetOperationFirst);
    publisher(&transport, &telemetry)
        .settings(operation_first.clone())
        .publish(event("c1"))
        .await
        .unwrap();
    handle_one(
        subscriber(&transport, &telemetry).settings(
            operation_first
                .process_span_name("validation.check")
                .adapter("validation")
                .attributes(|_| vec![opentelemetry::KeyValue::new("custom", "yes")]),
        ),
        Ok(()),
    )
    .await;
    let spans = telemetry.spans();
    single(&spans, "publish hyperfleet-clusters").unwrap();
    let receive = single(&spans, "receive hyperfleet-clusters").unwrap();
    let process = single(&spans, "validation.check").unwrap();
    assert_eq!(
        attribute_str(process, "hyperfleet.adapter").as_deref(),
        Some("validation")
    );
    assert_eq!(attribute_str(process, "custom").as_deref(), Some("yes"));
    assert_eq!(attribute_str(receive, "custom").as_deref(), Some("yes"));
    assert_eq!(
        attribute_str(receive, "hyperfleet.resource_id"),
        None,
        "hook replaced"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_handlers_own_spans_and_events_join_the_trace() {
    let (transport, telemetry) = setup();
    transport.create_topic("hyperfleet-status").unwrap();
    transport
        .create_subscription("status", "hyperfleet-status", SubscriptionConfig::default())
        .unwrap();
    let root = telemetry.provider.tracer("test").start("sentinel.poll");
    let root_cx = Context::new().with_span(root);
    publisher(&transport, &telemetry)
        .publish_with(
            event("c1"),
            hyperfleet_tracing::PublishOptions::new().parent(root_cx.clone()),
        )
        .await
        .unwrap();
    let downstream = Arc::new(
        TracedPublisher::new(transport.clone(), "hyperfleet-status")
            .settings(Settings::new().tracer_provider(&telemetry.provider)),
    );
    let provider = telemetry.provider.clone();
    let (tx, shutdown) = after_calls(1);
    subscriber(&transport, &telemetry)
        .run(
            move |received: Received| {
                let downstream = Arc::clone(&downstream);
                let tx = tx.clone();
                let tracer = provider.tracer("adapter");
                async move {
                    // Both use Context::current(): the process span.
                    let _call = tracer.start("PATCH");
                    downstream
                        .publish(event(&format!("{}-status", received.event.id())))
                        .await?;
                    let _ = tx.send(());
                    Ok::<(), HandlerError>(())
                }
            },
            shutdown,
        )
        .await
        .unwrap();
    let spans = telemetry.spans();
    let process = single(&spans, "adapter.process").unwrap();
    let trace_id = root_cx.span().span_context().trace_id();
    for name in ["PATCH", "hyperfleet-status publish"] {
        let span = single(&spans, name).unwrap();
        assert_eq!(
            span.parent_span_id,
            process.span_context.span_id(),
            "{name} is not under the process span"
        );
        assert_eq!(
            span.span_context.trace_id(),
            trace_id,
            "{name} left the trace"
        );
    }
    let receive = single(&spans, "hyperfleet-clusters receive").unwrap();
    assert_eq!(receive.span_kind, SpanKind::Consumer);
    assert_eq!(process.parent_span_id, receive.span_context.span_id());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undecodable_message_is_recorded_and_nacked_and_the_loop_goes_on() {
    let (transport, telemetry) = setup();
    transport
        .publish("hyperfleet-clusters", Message::new("garbage"))
        .await
        .unwrap();
    publisher(&transport, &telemetry)
        .publish(event("c1"))
        .await
        .unwrap();
    let handled = Arc::new(Mutex::new(Vec::new()));
    let (tx, shutdown) = after_calls(1);
    let seen = Arc::clone(&handled);
    subscriber(&transport, &telemetry)
        .concurrency(1)
        .run(
            move |received: Received| {
                seen.lock().unwrap().push(received.event.id().to_owned());
                let _ = tx.send(());
                async { Ok::<(), HandlerError>(()) }
            },
            shutdown,
        )
        .await
        .unwrap();
    assert_eq!(*handled.lock().unwrap(), vec!["c1".to_owned()]);
    let spans = telemetry.spans();
    let failed: Vec<_> = spans
        .iter()
        .filter(|s| attribute_str(s, "error.type").as_deref() == Some("not_a_cloudevent"))
        .collect();
    assert!(!failed.is_empty(), "the decode failure was not recorded");
    assert!(
        failed
            .iter()
            .all(|s| s.name == "hyperfleet-clusters receive" && is_root(s))
    );
    assert_eq!(
        transport.backlog("validation").unwrap(),
        1,
        "the undecodable message must stay for redelivery"
    );
}

#[tokio::test]
async fn subscribing_to_a_missing_subscription_is_an_error() {
    let (transport, telemetry) = setup();
    let result = TracedSubscriber::new(transport, "nope", "hyperfleet-clusters")
        .settings(Settings::new().tracer_provider(&telemetry.provider))
        .run(
            |_: Received| async { Ok::<(), HandlerError>(()) },
            std::future::pending(),
        )
        .await;
    let error = result.unwrap_err();
    assert!(error.to_string().contains("nope"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_google_clients_trace_is_continued_when_the_event_has_none() {
    const CLIENT: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    const EVENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let message = |event_traceparent: Option<&str>| {
        let mut event = event("c1");
        if let Some(tp) = event_traceparent {
            event.set_extension("traceparent", tp);
        }
        hyperfleet_tracing::binding::encode(
            &event,
            hyperfleet_tracing::binding::Encoding::Structured,
        )
        .unwrap()
        .with_attribute("googclient_traceparent", CLIENT)
    };
    for (event_traceparent, fallback, expected_parent) in [
        (None, true, Some("b7ad6b7169203331")),
        (Some(EVENT), true, Some("00f067aa0ba902b7")),
        (None, false, None),
    ] {
        let (transport, telemetry) = setup();
        transport
            .publish("hyperfleet-clusters", message(event_traceparent))
            .await
            .unwrap();
        handle_one(
            subscriber(&transport, &telemetry)
                .settings(settings(&telemetry).googclient_fallback(fallback)),
            Ok(()),
        )
        .await;
        let spans = telemetry.spans();
        let receive = single(&spans, "hyperfleet-clusters receive").unwrap();
        match expected_parent {
            Some(parent) => assert_eq!(receive.parent_span_id.to_string(), parent),
            None => assert!(is_root(receive)),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_sharing_an_ordering_key_are_handled_one_after_another() {
    // Without ordering on the subscription the transport hands out all five at once, as
    // Pub/Sub may hand an ordered key's messages to a client together.
    let (transport, telemetry) = setup();
    publish_keyed(&transport, &telemetry, 5).await;
    let order = Arc::new(Mutex::new(Vec::new()));
    let running = Arc::new(AtomicUsize::new(0));
    let overlapped = Arc::new(AtomicUsize::new(0));
    let (tx, shutdown) = after_calls(5);
    let handler = {
        let (order, running, overlapped) = (
            Arc::clone(&order),
            Arc::clone(&running),
            Arc::clone(&overlapped),
        );
        move |received: Received| {
            let (order, running, overlapped, tx) = (
                Arc::clone(&order),
                Arc::clone(&running),
                Arc::clone(&overlapped),
                tx.clone(),
            );
            async move {
                if running.fetch_add(1, Ordering::SeqCst) > 0 {
                    overlapped.fetch_add(1, Ordering::SeqCst);
                }
                // Give another handler of the key the chance to start if it wrongly could.
                tokio::task::yield_now().await;
                order.lock().unwrap().push(received.event.id().to_owned());
                running.fetch_sub(1, Ordering::SeqCst);
                let _ = tx.send(());
                Ok::<(), HandlerError>(())
            }
        }
    };
    subscriber(&transport, &telemetry)
        .concurrency(4)
        .run(handler, shutdown)
        .await
        .unwrap();
    assert_eq!(*order.lock().unwrap(), vec!["c0", "c1", "c2", "c3", "c4"]);
    assert_eq!(
        overlapped.load(Ordering::SeqCst),
        0,
        "two handlers of one key overlapped"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_failure_an_ordering_keys_waiting_deliveries_go_back_unhandled() {
    let (transport, telemetry) = setup();
    publish_keyed(&transport, &telemetry, 3).await;
    let calls = Arc::new(Mutex::new(Vec::new()));
    let (tx, shutdown) = after_calls(4);
    let record = Arc::clone(&calls);
    let leases = transport.clone();
    subscriber(&transport, &telemetry)
        .concurrency(4)
        .run(
            move |received: Received| {
                let mut calls = record.lock().unwrap();
                calls.push((received.event.id().to_owned(), received.delivery_attempt));
                let first = calls.len() == 1;
                let _ = tx.send(());
                let leases = leases.clone();
                async move {
                    if first {
                        // Fail only once c1 and c2 are delivered and waiting behind c0.
                        while leases.outstanding("validation").unwrap() < 3 {
                            tokio::task::yield_now().await;
                        }
                        Err::<(), HandlerError>("first attempt fails".into())
                    } else {
                        Ok(())
                    }
                }
            },
            shutdown,
        )
        .await
        .unwrap();
    // The failed delivery is nacked before those waiting behind it, and nothing is pulled in
    // between, so the redeliveries keep the key's order.
    assert_eq!(
        *calls.lock().unwrap(),
        vec![
            ("c0".to_owned(), Some(1)),
            ("c0".to_owned(), Some(2)),
            ("c1".to_owned(), Some(2)),
            ("c2".to_owned(), Some(2)),
        ],
        "c1 and c2 went back unhandled, behind c0"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_mode_hands_the_producers_baggage_to_the_handler() {
    use opentelemetry::baggage::BaggageExt;
    use opentelemetry::propagation::TextMapCompositePropagator;
    use opentelemetry_sdk::propagation::BaggagePropagator;
    let (transport, telemetry) = setup();
    let propagator = || {
        TextMapCompositePropagator::new(vec![
            Box::new(hyperfleet_tracing::carrier::W3cTraceContext),
            Box::new(BaggagePropagator::new()),
        ])
    };
    let parent = Context::new()
        .with_span(telemetry.provider.tracer("test").start("producer"))
        .with_baggage(vec![opentelemetry::KeyValue::new("tenant", "acme")]);
    publisher(&transport, &telemetry)
        .settings(settings(&telemetry).propagator(propagator()))
        .publish_with(
            event("c1"),
            hyperfleet_tracing::PublishOptions::new().parent(parent),
        )
        .await
        .unwrap();

    let seen = Arc::new(Mutex::new(None));
    let (tx, shutdown) = after_calls(1);
    let record = Arc::clone(&seen);
    let subscriber = subscriber(&transport, &telemetry).settings(
        settings(&telemetry)
            .propagator(propagator())
            .parent_mode(ParentMode::Link),
    );
    subscriber
        .run(
            move |received: Received| {
                let current = Context::current();
                *record.lock().unwrap() = Some((
                    current.baggage().get("tenant").map(|v| v.to_string()),
                    received
                        .context
                        .baggage()
                        .get("tenant")
                        .map(|v| v.to_string()),
                ));
                let _ = tx.send(());
                async { Ok::<(), HandlerError>(()) }
            },
            shutdown,
        )
        .await
        .unwrap();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        Some((Some("acme".to_owned()), Some("acme".to_owned()))),
        "the handler sees the producer's baggage under ParentMode::Link"
    );
    let receive = single(&telemetry.spans(), "hyperfleet-clusters receive")
        .unwrap()
        .clone();
    assert!(is_root(&receive), "a new trace all the same");
}
