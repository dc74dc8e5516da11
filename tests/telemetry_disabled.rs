//! With tracing disabled nothing is recorded, yet incoming trace context is carried on to the
//! events a handler publishes, and log lines still name the trace.
//! Its own test binary: it relies on the global tracer provider being the no-op default.

mod support;

use cloudevents::event::ExtensionValue;
use cloudevents::{AttributesReader, Event, EventBuilder, EventBuilderV10};
use futures::StreamExt;
use hyperfleet_tracing::telemetry::{self, Component, Config};
use hyperfleet_tracing::transport::memory::MemoryTransport;
use hyperfleet_tracing::transport::{SubscriptionConfig, Transport};
use hyperfleet_tracing::{HandlerError, Received};
use hyperfleet_tracing::{TracedPublisher, TracedSubscriber, binding};
use std::sync::Arc;
use support::capture::Captured;
use tracing::instrument::WithSubscriber;

/// The upstream trace of the `i`-th incoming event.
fn upstream_trace(i: usize) -> String {
    format!("4bf92f3577b34da6a3ce929d0e0e47{i:02x}")
}

/// Several events: the first teaches the pipeline that the tracer makes no spans, the others
/// take the path that skips them.
const EVENTS: usize = 3;

fn event(id: &str) -> Event {
    EventBuilderV10::new()
        .id(id)
        .source("s")
        .ty("t")
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_tracing_keeps_the_chain() {
    let logs = Captured::default();
    let config = Config::from_lookup("hyperfleet-adapter-validation", |k| {
        (k == "TRACING_ENABLED").then(|| "false".to_owned())
    })
    .unwrap();
    let telemetry = telemetry::builder(Component::ValidationAdapter)
        .config(config)
        .log_writer(logs.clone())
        .build()
        .unwrap();
    assert!(telemetry.tracer_provider().is_none());
    let (dispatch, _guard) = telemetry.into_subscriber();

    let transport = MemoryTransport::new();
    for topic in ["in", "out"] {
        transport.create_topic(topic).unwrap();
        transport
            .create_subscription(
                &format!("{topic}-sub"),
                topic,
                SubscriptionConfig::default(),
            )
            .unwrap();
    }
    let upstream = TracedPublisher::new(transport.clone(), "in");
    for i in 0..EVENTS {
        let mut incoming = event(&format!("upstream{i}"));
        let traceparent = format!("00-{}-00f067aa0ba902b7-01", upstream_trace(i));
        incoming.set_extension("traceparent", traceparent);
        upstream.publish(incoming).await.unwrap();
    }

    let downstream = Arc::new(TracedPublisher::new(transport.clone(), "out"));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    TracedSubscriber::new(transport.clone(), "in-sub", "in")
        .run(
            move |received: Received| {
                let downstream = Arc::clone(&downstream);
                let tx = tx.clone();
                async move {
                    tracing::info!("handling");
                    downstream
                        .publish(event(&format!("{}-next", received.event.id())))
                        .await?;
                    let _ = tx.send(());
                    Ok::<(), HandlerError>(())
                }
            },
            async move {
                for _ in 0..EVENTS {
                    rx.recv().await;
                }
            },
        )
        .with_subscriber(dispatch)
        .await
        .unwrap();

    let mut out = transport.subscribe("out-sub").await.unwrap();
    let lines = logs.json_lines();
    for _ in 0..EVENTS {
        let delivery = out.next().await.unwrap().unwrap();
        let next = binding::decode(&delivery.message).unwrap();
        let id = next
            .id()
            .strip_suffix("-next")
            .expect("a handler's event")
            .to_owned();
        let i: usize = id.strip_prefix("upstream").unwrap().parse().unwrap();
        let Some(ExtensionValue::String(traceparent)) = next.extension("traceparent") else {
            panic!("the downstream event of {id} lost the trace context");
        };
        assert_eq!(
            traceparent[3..35],
            upstream_trace(i),
            "{id}: same trace carried on"
        );
        let handling = lines
            .iter()
            .find(|l| l["message"] == "handling" && l["event_id"] == id.as_str())
            .unwrap();
        assert_eq!(handling["trace_id"], upstream_trace(i).as_str(), "{id}");
    }
}
