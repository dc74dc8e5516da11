//! Faults on the Pub/Sub backend: an unreachable endpoint fails fast and names itself; the
//! emulator stopped mid-run and started again makes publishing fail with error spans (never a
//! panic) until it is back; a subscriber whose connection is cut reconnects and handles what
//! is published after.

mod support;

use cloudevents::AttributesReader;
use hyperfleet_tracing::Settings;
use hyperfleet_tracing::testing::TestTelemetry;
use hyperfleet_tracing::testing::spans::attribute_str;
use hyperfleet_tracing::transport::pubsub::{PubSubAdmin, PubSubConfig, PubSubTransport};
use hyperfleet_tracing::transport::{ErrorCode, SubscriptionConfig};
use hyperfleet_tracing::{HandlerError, Received};
use hyperfleet_tracing::{TracedPublisher, TracedSubscriber};
use opentelemetry::trace::Status;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::emulator::Emulator;
use support::events::reconcile_event;
use support::proxy::Proxy;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_endpoint_fails_within_the_connect_timeout() {
    let unused = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let config = PubSubConfig::new("p")
        .emulator(&unused.to_string())
        .connect_timeout(Duration::from_secs(2));
    let started = Instant::now();
    let error = PubSubTransport::connect(config.clone()).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        matches!(
            error.code(),
            ErrorCode::Unavailable | ErrorCode::DeadlineExceeded
        ),
        "{error}"
    );
    assert!(
        error.to_string().contains(&unused.to_string()),
        "the error does not name the endpoint: {error}"
    );
    let error = PubSubAdmin::connect(config).await.unwrap_err();
    assert!(error.to_string().contains(&unused.to_string()), "{error}");
}

/// Waits (bounded) until the handler has seen `id`.
async fn wait_for(id: &str, seen: &mut tokio::sync::mpsc::UnboundedReceiver<String>) {
    let found = tokio::time::timeout(Duration::from_secs(120), async {
        while let Some(next) = seen.recv().await {
            if next == id {
                return;
            }
        }
    })
    .await;
    assert!(found.is_ok(), "{id} was not handled");
}

async fn create(admin: &PubSubAdmin) {
    admin.create_topic_if_missing("faults").await.unwrap();
    admin
        .create_subscription_if_missing("faults-sub", "faults", &SubscriptionConfig::default())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishing_while_the_emulator_is_down_fails_with_an_error_span_and_recovers() {
    let mut emulator = tokio::task::spawn_blocking(Emulator::start_fresh)
        .await
        .unwrap();
    let port = emulator.port();
    let config = PubSubConfig::new("faults")
        .emulator(&emulator.host)
        .publish_timeout(Duration::from_secs(3));
    let admin = PubSubAdmin::connect(config.clone()).await.unwrap();
    create(&admin).await;
    let transport = PubSubTransport::connect(config).await.unwrap();
    let telemetry = TestTelemetry::new();
    let publisher = TracedPublisher::new(transport, "faults")
        .settings(Settings::new().tracer_provider(&telemetry.provider));
    publisher.publish(reconcile_event("before")).await.unwrap();

    tokio::task::spawn_blocking(move || emulator.stop())
        .await
        .unwrap();
    let error = publisher
        .publish(reconcile_event("during"))
        .await
        .unwrap_err();
    let spans = telemetry.spans();
    let failed = spans
        .iter()
        .find(|s| s.name == "faults publish" && matches!(s.status, Status::Error { .. }))
        .expect("a failed publish span");
    assert_eq!(
        attribute_str(failed, "error.type").as_deref(),
        Some(error.error_type())
    );
    assert!(
        matches!(error.error_type(), "UNAVAILABLE" | "DEADLINE_EXCEEDED"),
        "{error}"
    );
    // The transport's error text (the gRPC status, the endpoint) is bounded on every span.
    for span in &spans {
        let oversized = hyperfleet_tracing::testing::spans::oversized(span, 256);
        assert!(oversized.is_empty(), "{oversized:#?}");
    }

    // Started again; it keeps state in memory, so the topic must be created anew.
    let _emulator = tokio::task::spawn_blocking(move || Emulator::start_on(port))
        .await
        .unwrap();
    create(&admin).await;
    publisher.publish(reconcile_event("after")).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_subscriber_reconnects_after_the_connection_is_cut() {
    let emulator = tokio::task::spawn_blocking(Emulator::start_fresh)
        .await
        .unwrap();
    let proxy = Proxy::start(&emulator.host).await;
    let direct = PubSubConfig::new("faults").emulator(&emulator.host);
    let admin = PubSubAdmin::connect(direct.clone()).await.unwrap();
    create(&admin).await;
    let publisher = TracedPublisher::new(PubSubTransport::connect(direct).await.unwrap(), "faults");
    // The subscriber goes through the proxy, whose connections we cut.
    let through_proxy = PubSubConfig::new("faults").emulator(&proxy.address);
    let transport = PubSubTransport::connect(through_proxy).await.unwrap();
    let telemetry = TestTelemetry::new();

    let handled = Arc::new(Mutex::new(Vec::<String>::new()));
    let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let record = Arc::clone(&handled);
    let run = tokio::spawn(
        TracedSubscriber::new(transport, "faults-sub", "faults")
            .settings(Settings::new().tracer_provider(&telemetry.provider))
            .run(
                move |received: Received| {
                    let id = received.event.id().to_owned();
                    record.lock().unwrap().push(id.clone());
                    let _ = seen_tx.send(id);
                    async { Ok::<(), HandlerError>(()) }
                },
                async move {
                    let _ = stop_rx.await;
                },
            ),
    );

    publisher.publish(reconcile_event("before")).await.unwrap();
    wait_for("before", &mut seen_rx).await;
    proxy.cut().await;
    proxy.restore().await;
    // The client library notices the dead stream and reconnects on its own (a minute or two on
    // the emulator). Publish until a message gets through: one published before the new stream
    // is up may sit with the dead stream until its ack deadline.
    let resumed = tokio::time::timeout(Duration::from_secs(300), async {
        let mut n = 0;
        loop {
            let id = format!("after-{n}");
            publisher.publish(reconcile_event(&id)).await.unwrap();
            let next = tokio::time::timeout(Duration::from_secs(10), async {
                while let Some(next) = seen_rx.recv().await {
                    if next.starts_with("after-") {
                        return Some(next);
                    }
                }
                None
            })
            .await;
            if let Ok(Some(handled)) = next {
                return handled;
            }
            n += 1;
        }
    })
    .await
    .expect("the subscriber never handled a message after the cut");

    let _ = stop_tx.send(());
    run.await.unwrap().unwrap();
    let handled = handled.lock().unwrap().clone();
    for id in ["before".to_owned(), resumed] {
        assert!(handled.contains(&id), "{id} not handled: {handled:?}");
    }
}
