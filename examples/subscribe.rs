//! Handle HyperFleet events from a Pub/Sub subscription inside the standard's receive and
//! process spans, logging each with its trace id.
//!
//! ```sh
//! PUBSUB_EMULATOR_HOST=127.0.0.1:8085 GOOGLE_CLOUD_PROJECT=demo HYPERFLEET_CREATE_IF_MISSING=true \
//!   HYPERFLEET_SUBSCRIPTION=hyperfleet-clusters-validation cargo run --features pubsub --example subscribe
//! ```
//!
//! Reads `PUBSUB_EMULATOR_HOST`, `GOOGLE_CLOUD_PROJECT`, `HYPERFLEET_TOPIC` (default
//! `hyperfleet-clusters`), `HYPERFLEET_SUBSCRIPTION` (default `{topic}-validation`),
//! `HYPERFLEET_MAX_MESSAGES` (exit after that many handled messages; unset = until Ctrl-C),
//! `HYPERFLEET_CREATE_IF_MISSING` (default false; creates the topic and the subscription with a
//! `{subscription}-dlq` dead-letter topic), and the standard `OTEL_*` / `HYPERFLEET_LOG_*`
//! variables. Log lines are JSON with `trace_id`, `span_id`, `event_id` and `subscription`.

use cloudevents::AttributesReader;
use hyperfleet_tracing::TracedSubscriber;
use hyperfleet_tracing::telemetry::{self, Component};
use hyperfleet_tracing::transport::pubsub::{PubSubAdmin, PubSubConfig, PubSubTransport};
use hyperfleet_tracing::transport::{DeadLetterPolicy, SubscriptionConfig};
use hyperfleet_tracing::{HandlerError, Received};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

fn var(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let _telemetry = telemetry::builder(Component::ValidationAdapter)
        .version(env!("CARGO_PKG_VERSION"))
        .install()?;
    let topic = var("HYPERFLEET_TOPIC", "hyperfleet-clusters");
    let subscription = var("HYPERFLEET_SUBSCRIPTION", &format!("{topic}-validation"));
    let max_messages: Option<usize> = match std::env::var("HYPERFLEET_MAX_MESSAGES") {
        Ok(v) => Some(
            v.parse()
                .map_err(|_| "HYPERFLEET_MAX_MESSAGES must be a whole number")?,
        ),
        Err(_) => None,
    };
    let config = PubSubConfig::from_env(None)?;
    // What it runs over, on standard error so standard output stays machine-readable.
    eprintln!("running over {}", config.describe());
    if var("HYPERFLEET_CREATE_IF_MISSING", "false") == "true" {
        let admin = PubSubAdmin::connect(config.clone()).await?;
        admin.create_topic_if_missing(&topic).await?;
        let dead_letter = DeadLetterPolicy::for_subscription(&subscription);
        admin
            .create_subscription_if_missing(
                &subscription,
                &topic,
                &SubscriptionConfig::default().dead_letter(dead_letter),
            )
            .await?;
    }
    let transport = PubSubTransport::connect(config).await?;

    let handled = Arc::new(AtomicUsize::new(0));
    let enough = Arc::new(tokio::sync::Notify::new());
    let handler = {
        let (handled, enough) = (Arc::clone(&handled), Arc::clone(&enough));
        move |received: Received| {
            let (handled, enough) = (Arc::clone(&handled), Arc::clone(&enough));
            async move {
                tracing::info!(
                    event_type = received.event.ty(),
                    message_id = received.message_id.as_deref().unwrap_or_default(),
                    "handled event"
                );
                let count = handled.fetch_add(1, Ordering::SeqCst) + 1;
                if max_messages.is_some_and(|max| count >= max) {
                    enough.notify_one();
                }
                Ok::<(), HandlerError>(())
            }
        }
    };
    let shutdown = async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            () = enough.notified() => {}
        }
    };
    TracedSubscriber::new(transport, &subscription, &topic)
        .adapter("validation")
        .run(handler, shutdown)
        .await?;
    tracing::info!(
        handled = handled.load(Ordering::SeqCst),
        "subscriber stopped"
    );
    Ok(())
}
