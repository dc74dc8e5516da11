//! Handle HyperFleet events from a Pub/Sub subscription or a RabbitMQ queue inside the
//! standard's receive and process spans, logging each with its trace id.
//!
//! ```sh
//! PUBSUB_EMULATOR_HOST=127.0.0.1:8085 GOOGLE_CLOUD_PROJECT=demo HYPERFLEET_CREATE_IF_MISSING=true \
//!   HYPERFLEET_SUBSCRIPTION=hyperfleet-clusters-validation cargo run --features pubsub --example subscribe
//! BROKER_TYPE=rabbitmq BROKER_RABBITMQ_URL=amqp://guest:guest@127.0.0.1:5672/%2f \
//!   HYPERFLEET_CREATE_IF_MISSING=true cargo run --features rabbitmq --example subscribe
//! ```
//!
//! Reads `BROKER_TYPE` (`googlepubsub`, the default, or `rabbitmq`: then the queue is
//! `{topic}-{subscription}`, as hyperfleet-broker names it), `BROKER_RABBITMQ_URL`,
//! `PUBSUB_EMULATOR_HOST`, `GOOGLE_CLOUD_PROJECT`, `HYPERFLEET_TOPIC` (default
//! `hyperfleet-clusters`), `HYPERFLEET_SUBSCRIPTION` (default `{topic}-validation`),
//! `HYPERFLEET_MAX_MESSAGES` (exit after that many handled messages; unset = until Ctrl-C),
//! `HYPERFLEET_CREATE_IF_MISSING` (default false; creates the topic and the subscription with a
//! `{subscription}-dlq` dead-letter topic), and the standard `OTEL_*` / `HYPERFLEET_LOG_*`
//! variables. Log lines are JSON with `trace_id`, `span_id`, `event_id` and `subscription`.
// Built without any backend, the example only refuses: its shared code is then unused.
#![cfg_attr(not(any(feature = "pubsub", feature = "rabbitmq")), allow(unused))]

use cloudevents::AttributesReader;
use hyperfleet_tracing::Settings;
use hyperfleet_tracing::TracedSubscriber;
use hyperfleet_tracing::telemetry::{self, Component};
use hyperfleet_tracing::transport::Transport;
use hyperfleet_tracing::{HandlerError, Received};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

type Error = Box<dyn std::error::Error>;

fn var(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let guard = telemetry::builder(Component::ValidationAdapter)
        .version(env!("CARGO_PKG_VERSION"))
        .install()?;
    if let Some(address) = guard.metrics_address() {
        // OTEL_METRICS_EXPORTER=prometheus
        eprintln!("serving metrics at http://{address}/metrics");
    }
    let topic = var("HYPERFLEET_TOPIC", "hyperfleet-clusters");
    let subscription = var("HYPERFLEET_SUBSCRIPTION", &format!("{topic}-validation"));
    let max_messages: Option<usize> = match std::env::var("HYPERFLEET_MAX_MESSAGES") {
        Ok(v) => Some(
            v.parse()
                .map_err(|_| "HYPERFLEET_MAX_MESSAGES must be a whole number")?,
        ),
        Err(_) => None,
    };
    let create = var("HYPERFLEET_CREATE_IF_MISSING", "false") == "true";
    match var("BROKER_TYPE", "googlepubsub").as_str() {
        "googlepubsub" => over_pubsub(&topic, &subscription, max_messages, create).await,
        "rabbitmq" => over_rabbitmq(&topic, &subscription, max_messages, create).await,
        other => Err(format!("BROKER_TYPE={other}: use googlepubsub or rabbitmq").into()),
    }
}

#[cfg(feature = "pubsub")]
async fn over_pubsub(
    topic: &str,
    subscription: &str,
    max_messages: Option<usize>,
    create: bool,
) -> Result<(), Error> {
    use hyperfleet_tracing::transport::pubsub::{PubSubAdmin, PubSubConfig, PubSubTransport};
    use hyperfleet_tracing::transport::{DeadLetterPolicy, SubscriptionConfig};
    let config = PubSubConfig::from_env(None)?;
    // What it runs over, on standard error so standard output stays machine-readable.
    eprintln!("running over {}", config.describe());
    if create {
        let admin = PubSubAdmin::connect(config.clone()).await?;
        admin.create_topic_if_missing(topic).await?;
        let dead_letter = DeadLetterPolicy::for_subscription(subscription);
        admin
            .create_subscription_if_missing(
                subscription,
                topic,
                &SubscriptionConfig::default().dead_letter(dead_letter),
            )
            .await?;
    }
    let transport = PubSubTransport::connect(config).await?;
    handle(transport, topic, subscription, max_messages).await
}

#[cfg(not(feature = "pubsub"))]
async fn over_pubsub(_: &str, _: &str, _: Option<usize>, _: bool) -> Result<(), Error> {
    Err("this build has no Pub/Sub backend: run with `--features pubsub`".into())
}

#[cfg(feature = "rabbitmq")]
async fn over_rabbitmq(
    topic: &str,
    subscription: &str,
    max_messages: Option<usize>,
    create: bool,
) -> Result<(), Error> {
    use hyperfleet_tracing::transport::SubscriptionConfig;
    use hyperfleet_tracing::transport::rabbitmq::{
        QueueKind, RabbitMqAdmin, RabbitMqConfig, RabbitMqTransport,
    };
    let config = RabbitMqConfig::from_env()?;
    eprintln!("running over RabbitMQ at {}", config.describe());
    let transport = RabbitMqTransport::connect(config).await?;
    let queue = RabbitMqConfig::queue_name(topic, subscription);
    if create {
        let admin = RabbitMqAdmin::new(&transport);
        admin.create_topic_if_missing(topic).await?;
        admin
            .create_subscription_if_missing(
                &queue,
                topic,
                QueueKind::Classic,
                &SubscriptionConfig::default(),
            )
            .await?;
    }
    handle(transport, topic, &queue, max_messages).await
}

#[cfg(not(feature = "rabbitmq"))]
async fn over_rabbitmq(_: &str, _: &str, _: Option<usize>, _: bool) -> Result<(), Error> {
    Err("BROKER_TYPE=rabbitmq, but this build has no RabbitMQ backend: run with `--features rabbitmq`".into())
}

/// Handles events until Ctrl-C or `max_messages`, logging each.
async fn handle<T: Transport>(
    transport: T,
    topic: &str,
    subscription: &str,
    max_messages: Option<usize>,
) -> Result<(), Error> {
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
    TracedSubscriber::new(transport, subscription, topic)
        .settings(Settings::new().adapter("validation"))
        .run(handler, shutdown)
        .await?;
    tracing::info!(
        handled = handled.load(Ordering::SeqCst),
        "subscriber stopped"
    );
    Ok(())
}
