//! The push endpoint on its own: each shape it reads (Eventarc from Google's documented
//! format), the answer each outcome gets, and its bounds (verifier, body limit, concurrency,
//! shutdown).

mod support;

use cloudevents::AttributesReader;
use hyperfleet_tracing::Settings;
use hyperfleet_tracing::push::{PushEndpoint, Rejection};
use hyperfleet_tracing::settings::AckPolicy;
use hyperfleet_tracing::testing::TestTelemetry;
use hyperfleet_tracing::testing::spans::{attribute, attribute_str, single, texts};
use hyperfleet_tracing::{HandlerError, Received};
use opentelemetry::Value;
use opentelemetry::trace::{SpanKind, Status};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use support::push::{fixture, json_headers, post, serve, wrapped_body};
use tokio::sync::mpsc;

const TOPIC: &str = "hyperfleet-clusters";

fn endpoint(telemetry: &TestTelemetry) -> PushEndpoint {
    PushEndpoint::new("default-push", TOPIC).settings(settings(telemetry))
}

/// The settings of every endpoint here: spans to `telemetry`.
fn settings(telemetry: &TestTelemetry) -> Settings {
    Settings::new().tracer_provider(&telemetry.provider)
}

/// A handler that reports what it received and succeeds.
fn recorder() -> (
    impl Fn(Received) -> std::future::Ready<Result<(), HandlerError>> + Send + Sync + 'static,
    mpsc::UnboundedReceiver<Received>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let handler = move |received: Received| {
        let _ = tx.send(received);
        std::future::ready(Ok::<(), HandlerError>(()))
    };
    (handler, rx)
}

/// No span attribute, event or status quotes `needle`.
fn assert_no_span_carries(spans: &[opentelemetry_sdk::trace::SpanData], needle: &str) {
    for span in spans {
        for (key, text) in texts(span) {
            assert!(
                !text.contains(needle),
                "{key} of {} carries {needle:?}",
                span.name
            );
        }
    }
}

fn link_trace_ids(span: &opentelemetry_sdk::trace::SpanData) -> Vec<String> {
    span.links
        .iter()
        .map(|l| l.span_context.trace_id().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eventarc_binary_continues_the_inner_event_and_links_the_delivery() {
    let telemetry = TestTelemetry::new();
    let (handler, mut received) = recorder();
    let served = serve(endpoint(&telemetry), handler).await;
    let (headers, body) = fixture("eventarc-binary.json");
    assert_eq!(post(&served.url, &headers, body).await.0, 204);
    let event = received.recv().await.unwrap();
    assert_eq!(event.event.id(), "00000000-0000-0000-0000-000000000000");
    assert_eq!(event.subscription, "eventarc-validation");
    assert_eq!(event.message_id.as_deref(), Some("3103425958877813"));
    served.stop().await;

    let spans = telemetry.spans();
    let receive = single(&spans, "hyperfleet-clusters receive").unwrap();
    assert_eq!(receive.span_kind, SpanKind::Consumer);
    assert_eq!(
        receive.span_context.trace_id().to_string(),
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
    assert_eq!(receive.parent_span_id.to_string(), "00f067aa0ba902b7");
    let mut links = link_trace_ids(receive);
    links.sort();
    assert_eq!(
        links,
        [
            "99998888777766665555444433332222",
            "aaaabbbbccccddddeeeeffff00001111"
        ],
        "Google's delivery and Eventarc's event are links, not parents"
    );
    assert_eq!(
        attribute_str(receive, "messaging.destination.subscription.name").as_deref(),
        Some("eventarc-validation")
    );
    assert_eq!(
        attribute_str(receive, "messaging.message.id").as_deref(),
        Some("3103425958877813")
    );
    assert_eq!(
        attribute_str(receive, "messaging.gcp_pubsub.message.ordering_key").as_deref(),
        Some("11111111-1111-1111-1111-111111111111")
    );
    let process = single(&spans, "adapter.process").unwrap();
    assert_eq!(process.parent_span_id, receive.span_context.span_id());
    assert_no_span_carries(&spans, "secret-token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eventarc_structured_continues_the_inner_event() {
    let telemetry = TestTelemetry::new();
    let (handler, mut received) = recorder();
    let served = serve(endpoint(&telemetry), handler).await;
    let (headers, body) = fixture("eventarc-structured.json");
    assert_eq!(post(&served.url, &headers, body).await.0, 204);
    let event = received.recv().await.unwrap();
    assert_eq!(event.event.id(), "00000000-0000-0000-0000-000000000001");
    served.stop().await;

    let spans = telemetry.spans();
    let receive = single(&spans, "hyperfleet-clusters receive").unwrap();
    assert_eq!(
        receive.span_context.trace_id().to_string(),
        "0af7651916cd43dd8448eb211c80319c"
    );
    assert_eq!(receive.parent_span_id.to_string(), "b7ad6b7169203331");
    assert_eq!(
        link_trace_ids(receive),
        ["aaaabbbbccccddddeeeeffff00002222"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrapped_and_unwrapped_deliveries_carry_their_metadata() {
    let telemetry = TestTelemetry::new();
    let (handler, mut received) = recorder();
    let served = serve(endpoint(&telemetry), handler).await;
    let event = hyperfleet_tracing::testing::reconcile_event("e-1", "c-1").unwrap();
    let mut traced = event.clone();
    traced.set_extension(
        "traceparent",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    );
    let structured = serde_json::to_vec(&traced).unwrap();
    let body = wrapped_body(
        &structured,
        serde_json::json!({"_watermill_message_uuid": "e-1"}),
        serde_json::json!({"deliveryAttempt": 3}),
    );
    assert_eq!(post(&served.url, &json_headers(), body).await.0, 204);
    let wrapped = received.recv().await.unwrap();
    assert_eq!(wrapped.subscription, "validation-push");
    assert_eq!(wrapped.delivery_attempt, Some(3));
    assert_eq!(wrapped.message_id.as_deref(), Some("42"));

    // Unwrapped: a binary-mode event whose attributes are headers.
    let message =
        hyperfleet_tracing::binding::encode(&traced, hyperfleet_tracing::binding::Encoding::Binary)
            .unwrap();
    let metadata = |id: &str| {
        vec![
            ("x-goog-pubsub-message-id".to_owned(), id.to_owned()),
            (
                "x-goog-pubsub-subscription-name".to_owned(),
                "projects/hyperfleet/subscriptions/unwrapped-push".to_owned(),
            ),
            ("x-goog-pubsub-ordering-key".to_owned(), "c-1".to_owned()),
            ("authorization".to_owned(), "Bearer secret-token".to_owned()),
        ]
    };
    let mut headers = metadata("43");
    headers.extend(message.attributes.clone());
    assert_eq!(
        post(&served.url, &headers, message.data.to_vec()).await.0,
        204
    );
    let unwrapped = received.recv().await.unwrap();
    assert_eq!(unwrapped.subscription, "unwrapped-push");
    assert_eq!(unwrapped.message_id.as_deref(), Some("43"));
    assert_eq!(unwrapped.event.id(), "e-1");
    assert_eq!(unwrapped.event.datacontenttype(), event.datacontenttype());

    // Unwrapped, the broker's structured body: the emulator's form content type is not the
    // message's.
    let mut headers = metadata("44");
    headers.push((
        "content-type".to_owned(),
        "application/x-www-form-urlencoded".to_owned(),
    ));
    assert_eq!(post(&served.url, &headers, structured.clone()).await.0, 204);
    let unwrapped = received.recv().await.unwrap();
    assert_eq!(unwrapped.message_id.as_deref(), Some("44"));
    assert_eq!(unwrapped.event.id(), "e-1");
    served.stop().await;

    let spans = telemetry.spans();
    let receives: Vec<_> = spans
        .iter()
        .filter(|s| s.name == "hyperfleet-clusters receive")
        .collect();
    assert_eq!(receives.len(), 3);
    for receive in &receives {
        assert_eq!(
            receive.span_context.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(receive.parent_span_id.to_string(), "00f067aa0ba902b7");
    }
    assert_eq!(
        attribute(receives[0], "messaging.gcp_pubsub.message.delivery_attempt"),
        Some(&Value::I64(3))
    );
    assert_eq!(
        attribute_str(receives[1], "messaging.gcp_pubsub.message.ordering_key").as_deref(),
        Some("c-1")
    );
    assert_no_span_carries(&spans, "secret-token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_outcome_gets_the_status_pubsub_settles_it_by() {
    let telemetry = TestTelemetry::new();
    let handler = |received: Received| async move {
        match received.event.id() {
            "fails" => Err::<(), HandlerError>("no capacity".into()),
            "panics" => panic!("handler bug"),
            _ => Ok(()),
        }
    };
    let served = serve(endpoint(&telemetry), handler).await;
    let body_of = event_body;
    let headers = json_headers();
    assert_eq!(post(&served.url, &headers, body_of("ok")).await.0, 204);
    assert_eq!(post(&served.url, &headers, body_of("fails")).await.0, 500);
    assert_eq!(post(&served.url, &headers, body_of("panics")).await.0, 500);
    let undecodable = wrapped_body(
        b"not an event",
        serde_json::json!({}),
        serde_json::json!({}),
    );
    assert_eq!(post(&served.url, &headers, undecodable).await.0, 500);
    for (body, reason) in [
        (b"hello".to_vec(), "not_json"),
        (b"{}".to_vec(), "no_message"),
        (
            br#"{"message":{"data":"%%%"},"subscription":"s"}"#.to_vec(),
            "data_not_base64",
        ),
    ] {
        let (status, text) = post(&served.url, &headers, body).await;
        assert_eq!(status, 400, "{text}");
        assert!(text.contains(reason), "{text}");
    }
    served.stop().await;

    let spans = telemetry.spans();
    let receives: Vec<_> = spans
        .iter()
        .filter(|s| s.name == "hyperfleet-clusters receive")
        .collect();
    assert_eq!(
        receives.len(),
        4,
        "one per delivery, none for the non-deliveries"
    );
    let failed = receives
        .iter()
        .filter(|s| matches!(s.status, Status::Error { .. }))
        .count();
    assert_eq!(failed, 3, "the failure, the panic, the undecodable message");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn always_ack_answers_a_failure_with_an_ack() {
    let telemetry = TestTelemetry::new();
    let handler = |_: Received| async { Err::<(), HandlerError>("failed".into()) };
    let served = serve(
        endpoint(&telemetry).settings(settings(&telemetry).ack_policy(AckPolicy::AlwaysAck)),
        handler,
    )
    .await;
    let body = event_body("e");
    let (status, text) = post(&served.url, &json_headers(), body).await;
    assert_eq!(status, 204, "{text}");
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_verifier_sees_the_headers_first_and_a_rejection_processes_nothing() {
    let telemetry = TestTelemetry::new();
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&calls);
    let handler = move |_: Received| {
        counted.fetch_add(1, Ordering::SeqCst);
        std::future::ready(Ok::<(), HandlerError>(()))
    };
    let verified = endpoint(&telemetry).verifier(|headers| {
        match headers.get("authorization").and_then(|v| v.to_str().ok()) {
            None => Err(Rejection::Unauthorized("no token".into())),
            Some("Bearer good") => Ok(()),
            Some(_) => Err(Rejection::Forbidden("not the push service account".into())),
        }
    });
    let served = serve(verified, handler).await;
    let body = event_body("e");
    let with = |token: Option<&str>| {
        let mut headers = json_headers();
        if let Some(token) = token {
            headers.push(("authorization".into(), token.into()));
        }
        headers
    };
    assert_eq!(post(&served.url, &with(None), body.clone()).await.0, 401);
    assert_eq!(
        post(&served.url, &with(Some("Bearer bad")), body.clone())
            .await
            .0,
        403
    );
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    assert!(
        telemetry.spans().is_empty(),
        "a rejected request is not processed"
    );
    assert_eq!(
        post(&served.url, &with(Some("Bearer good")), body).await.0,
        204
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    served.stop().await;
    assert_no_span_carries(&telemetry.spans(), "Bearer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_the_limit_is_refused_unread() {
    let telemetry = TestTelemetry::new();
    let (handler, mut received) = recorder();
    let served = serve(endpoint(&telemetry).body_limit(1024), handler).await;
    let event = hyperfleet_tracing::testing::reconcile_event(&"x".repeat(2000), "c").unwrap();
    let body = wrapped_body(
        &serde_json::to_vec(&event).unwrap(),
        serde_json::json!({}),
        serde_json::json!({}),
    );
    assert_eq!(post(&served.url, &json_headers(), body).await.0, 413);
    served.stop().await;
    assert!(received.try_recv().is_err());
    assert!(telemetry.spans().is_empty());
}

/// A handler that waits for `release` and reports when it has started.
fn held() -> (
    impl hyperfleet_tracing::consume::Handler,
    mpsc::UnboundedReceiver<()>,
    Arc<tokio::sync::Notify>,
) {
    let (started, started_rx) = mpsc::unbounded_channel();
    let release = Arc::new(tokio::sync::Notify::new());
    let waiting = Arc::clone(&release);
    let handler = move |_: Received| {
        let _ = started.send(());
        let waiting = Arc::clone(&waiting);
        async move {
            waiting.notified().await;
            Ok::<(), HandlerError>(())
        }
    };
    (handler, started_rx, release)
}

fn event_body(id: &str) -> Vec<u8> {
    let event = hyperfleet_tracing::testing::reconcile_event(id, "c").unwrap();
    wrapped_body(
        &serde_json::to_vec(&event).unwrap(),
        serde_json::json!({}),
        serde_json::json!({}),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_over_the_concurrency_limit_are_refused_with_429() {
    let telemetry = TestTelemetry::new();
    let (handler, mut started, release) = held();
    let served = serve(endpoint(&telemetry).concurrency(1), handler).await;
    let url = served.url.clone();
    let first = tokio::spawn(async move { post(&url, &json_headers(), event_body("a")).await });
    started.recv().await.unwrap();
    assert_eq!(
        post(&served.url, &json_headers(), event_body("b")).await.0,
        429
    );
    release.notify_one();
    assert_eq!(first.await.unwrap().0, 204);
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_waits_for_deliveries_in_flight() {
    let telemetry = TestTelemetry::new();
    let (handler, mut started, release) = held();
    let served = serve(endpoint(&telemetry), handler).await;
    let url = served.url.clone();
    let in_flight = tokio::spawn(async move { post(&url, &json_headers(), event_body("a")).await });
    started.recv().await.unwrap();
    let stopping = tokio::spawn(served.stop());
    // Shutdown has begun and waits: the delivery finishes and is acked.
    release.notify_one();
    assert_eq!(in_flight.await.unwrap().0, 204);
    stopping.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_answers_what_outlives_its_timeout_with_a_nack_within_the_bound() {
    let telemetry = TestTelemetry::new();
    let timeout = Duration::from_millis(300);
    let (started_tx, mut started) = mpsc::unbounded_channel();
    let handler = move |_: Received| {
        let _ = started_tx.send(());
        // Never finishes.
        std::future::pending::<Result<(), HandlerError>>()
    };
    let served = serve(endpoint(&telemetry).shutdown_timeout(timeout), handler).await;
    let url = served.url.clone();
    let in_flight = tokio::spawn(async move { post(&url, &json_headers(), event_body("a")).await });
    started.recv().await.unwrap();
    let waited = served.stop().await;
    assert!(
        waited >= timeout && waited < timeout + Duration::from_secs(1),
        "shutdown took {waited:?}"
    );
    assert_eq!(
        in_flight.await.unwrap().0,
        503,
        "a nack: Pub/Sub delivers it again"
    );
}

/// Subscription names come from requests: past the bounded cache, deliveries are counted under
/// one `_other` series instead of adding a series per name, and none goes uncounted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metric_series_stay_bounded_whatever_subscriptions_requests_name() {
    let telemetry = TestTelemetry::new();
    let metrics = hyperfleet_tracing::testing::TestMetrics::new();
    let (handler, _received) = recorder();
    let served = serve(
        endpoint(&telemetry).settings(settings(&telemetry).metrics(metrics.metrics.clone())),
        handler,
    )
    .await;
    let names = 70;
    for i in 0..names {
        let event = hyperfleet_tracing::testing::reconcile_event(&format!("e{i}"), "c").unwrap();
        let body = wrapped_body(
            &serde_json::to_vec(&event).unwrap(),
            serde_json::json!({}),
            serde_json::json!({"subscription": format!("projects/p/subscriptions/s{i}")}),
        );
        let (status, text) = post(&served.url, &json_headers(), body).await;
        assert_eq!(status, 204, "{text}");
    }
    served.stop().await;
    let consumed = |subscription: &str| {
        let filter = [("messaging.destination.subscription.name", subscription)];
        metrics.counter("messaging.client.consumed.messages", &filter)
    };
    assert_eq!(
        metrics.counter("messaging.client.consumed.messages", &[]),
        names
    );
    assert_eq!(consumed("s0"), 1);
    assert_eq!(consumed("s63"), 1);
    assert_eq!(
        consumed("s64"),
        0,
        "a name past the cache got a series of its own"
    );
    assert_eq!(consumed("_other"), names - 64);
    // The spans still name each delivery's own subscription.
    let spans = telemetry.spans();
    assert!(spans.iter().any(|s| {
        attribute_str(s, "messaging.destination.subscription.name").as_deref() == Some("s69")
    }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_an_unsampled_parent_a_followed_push_delivery_runs_in_the_parents_trace() {
    use hyperfleet_tracing::settings::UnsampledParent;
    use opentelemetry::trace::TraceContextExt as _;
    let parent_span = "00f067aa0ba902b7";
    let mut event = hyperfleet_tracing::testing::reconcile_event("e1", "c").unwrap();
    event.set_extension(
        "traceparent",
        format!("00-4bf92f3577b34da6a3ce929d0e0e4736-{parent_span}-00"),
    );
    let body = wrapped_body(
        &serde_json::to_vec(&event).unwrap(),
        serde_json::json!({}),
        serde_json::json!({}),
    );
    // Asked, the sampler records spans of their own; followed, the handler runs in the
    // parent's trace under an unrecorded span id of its own (W3C: a new parent id onward).
    for (unsampled, recorded) in [
        (UnsampledParent::AskSampler, true),
        (UnsampledParent::Follow, false),
    ] {
        // Not parent-based: asked, the sampler records the spans whatever the parent says.
        let telemetry = TestTelemetry::with_sampler(opentelemetry_sdk::trace::Sampler::AlwaysOn);
        let (handler, mut received) = recorder();
        let pushed =
            endpoint(&telemetry).settings(settings(&telemetry).unsampled_parent(unsampled));
        let served = serve(pushed, handler).await;
        assert_eq!(
            post(&served.url, &json_headers(), body.clone()).await.0,
            204
        );
        let context = received.recv().await.unwrap().context;
        let span = context.span().span_context().clone();
        assert_eq!(
            span.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_ne!(span.span_id().to_string(), parent_span);
        assert_eq!(span.is_sampled(), recorded);
        served.stop().await;
        assert_eq!(telemetry.spans().len(), if recorded { 2 } else { 0 });
    }
}

/// Every way in records its settlement: under the current conventions a push delivery gets its
/// `ack` / `nack` span (CLIENT, linked to the receive span), and both conventions record
/// `messaging.client.operation.duration` for the answer that settles it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_answer_is_recorded_as_the_settlement() {
    use hyperfleet_tracing::settings::Conventions;
    for conventions in [Conventions::HyperFleet, Conventions::Messaging] {
        let telemetry = TestTelemetry::new();
        let metrics = hyperfleet_tracing::testing::TestMetrics::new();
        let settings = settings(&telemetry)
            .conventions(conventions)
            .metrics(metrics.metrics.clone());
        let handler = |received: Received| async move {
            match received.event.id() {
                "bad" => Err::<(), HandlerError>("failed".into()),
                _ => Ok(()),
            }
        };
        let served = serve(endpoint(&telemetry).settings(settings), handler).await;
        for (id, expected) in [("good", 204), ("bad", 500)] {
            let event = hyperfleet_tracing::testing::reconcile_event(id, "c").unwrap();
            let body = wrapped_body(
                &serde_json::to_vec(&event).unwrap(),
                serde_json::json!({}),
                serde_json::json!({}),
            );
            let (status, text) = post(&served.url, &json_headers(), body).await;
            assert_eq!(status, expected, "{text}");
        }
        served.stop().await;

        for operation in ["ack", "nack"] {
            let (count, _) = metrics.histogram_count(
                "messaging.client.operation.duration",
                &[("messaging.operation.name", operation)],
            );
            assert_eq!(count, 1, "{operation} under {conventions:?}");
        }
        if conventions == Conventions::Messaging {
            let spans = telemetry.spans();
            let receives: Vec<_> = spans
                .iter()
                .filter(|s| s.name == "receive validation-push")
                .map(|s| s.span_context.clone())
                .collect();
            for operation in ["ack", "nack"] {
                let settle = single(&spans, &format!("{operation} validation-push")).unwrap();
                assert_eq!(settle.span_kind, SpanKind::Client);
                assert_eq!(
                    attribute_str(settle, "messaging.operation.type").as_deref(),
                    Some("settle")
                );
                // Linked to its delivery's receive span.
                assert_eq!(settle.links.links.len(), 1);
                assert!(receives.contains(&settle.links.links[0].span_context));
            }
        }
    }
}

/// `ParentMode::Link` starts a new trace, but the producer's baggage still reaches the handler.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_mode_hands_the_producers_baggage_to_the_handler() {
    use opentelemetry::baggage::BaggageExt as _;
    use opentelemetry::propagation::TextMapCompositePropagator;
    use opentelemetry::trace::TraceContextExt as _;
    let telemetry = TestTelemetry::new();
    let propagator = TextMapCompositePropagator::new(vec![
        Box::new(hyperfleet_tracing::carrier::W3cTraceContext),
        Box::new(opentelemetry_sdk::propagation::BaggagePropagator::new()),
    ]);
    let settings = settings(&telemetry)
        .propagator(propagator)
        .parent_mode(hyperfleet_tracing::settings::ParentMode::Link);
    let (tx, mut seen) = mpsc::unbounded_channel();
    let handler = move |_: Received| {
        let current = opentelemetry::Context::current();
        let _ = tx.send((
            current.baggage().get("tenant").map(|v| v.to_string()),
            current.span().span_context().trace_id(),
        ));
        async { Ok::<(), HandlerError>(()) }
    };
    let served = serve(endpoint(&telemetry).settings(settings), handler).await;
    let mut event = hyperfleet_tracing::testing::reconcile_event("e1", "c").unwrap();
    event.set_extension(
        "traceparent",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    );
    event.set_extension("baggage", "tenant=acme");
    let body = wrapped_body(
        &serde_json::to_vec(&event).unwrap(),
        serde_json::json!({}),
        serde_json::json!({}),
    );
    let (status, text) = post(&served.url, &json_headers(), body).await;
    assert_eq!(status, 204, "{text}");
    served.stop().await;
    let (tenant, trace) = seen.recv().await.unwrap();
    assert_eq!(tenant.as_deref(), Some("acme"));
    assert_ne!(
        trace.to_string(),
        "4bf92f3577b34da6a3ce929d0e0e4736",
        "a new trace"
    );
}
