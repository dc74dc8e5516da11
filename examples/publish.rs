//! Publish HyperFleet reconcile events to Pub/Sub or RabbitMQ, each in a traced
//! `{topic} publish` span.
//!
//! ```sh
//! PUBSUB_EMULATOR_HOST=127.0.0.1:8085 GOOGLE_CLOUD_PROJECT=demo HYPERFLEET_CREATE_IF_MISSING=true \
//!   cargo run --features pubsub --example publish
//! BROKER_TYPE=rabbitmq BROKER_RABBITMQ_URL=amqp://guest:guest@127.0.0.1:5672/%2f \
//!   HYPERFLEET_CREATE_IF_MISSING=true cargo run --features rabbitmq --example publish
//! ```
//!
//! Reads `BROKER_TYPE` (`googlepubsub`, the default, or `rabbitmq`), `BROKER_RABBITMQ_URL`,
//! `PUBSUB_EMULATOR_HOST`, `GOOGLE_CLOUD_PROJECT`, `HYPERFLEET_TOPIC` (default
//! `hyperfleet-clusters`), `HYPERFLEET_EVENT_COUNT` (default 1), `HYPERFLEET_ENCODING`
//! (`structured` | `binary`, default structured), `HYPERFLEET_CREATE_IF_MISSING` (default
//! false), and the standard `OTEL_*` variables. Prints `message_id traceparent` per event.
// Built without any backend, the example only refuses: its shared code is then unused.
#![cfg_attr(not(any(feature = "pubsub", feature = "rabbitmq")), allow(unused))]

use cloudevents::{EventBuilder, EventBuilderV10};
use hyperfleet_tracing::TracedPublisher;
use hyperfleet_tracing::binding::Encoding;
use hyperfleet_tracing::telemetry::{self, Component};
use hyperfleet_tracing::transport::Transport;

type Error = Box<dyn std::error::Error>;

fn var(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let _telemetry = telemetry::builder(Component::Sentinel)
        .version(env!("CARGO_PKG_VERSION"))
        .install()?;
    let topic = var("HYPERFLEET_TOPIC", "hyperfleet-clusters");
    let count: usize = var("HYPERFLEET_EVENT_COUNT", "1")
        .parse()
        .map_err(|_| "HYPERFLEET_EVENT_COUNT must be a whole number")?;
    let encoding = match var("HYPERFLEET_ENCODING", "structured").as_str() {
        "structured" => Encoding::Structured,
        "binary" => Encoding::Binary,
        other => {
            return Err(format!("HYPERFLEET_ENCODING={other:?}: use structured or binary").into());
        }
    };
    let create = var("HYPERFLEET_CREATE_IF_MISSING", "false") == "true";
    match var("BROKER_TYPE", "googlepubsub").as_str() {
        "googlepubsub" => over_pubsub(&topic, count, encoding, create).await,
        "rabbitmq" => over_rabbitmq(&topic, count, encoding, create).await,
        other => Err(format!("BROKER_TYPE={other}: use googlepubsub or rabbitmq").into()),
    }
}

#[cfg(feature = "pubsub")]
async fn over_pubsub(
    topic: &str,
    count: usize,
    encoding: Encoding,
    create: bool,
) -> Result<(), Error> {
    use hyperfleet_tracing::transport::pubsub::{PubSubAdmin, PubSubConfig, PubSubTransport};
    let config = PubSubConfig::from_env(None)?;
    // What it runs over, on standard error so standard output stays machine-readable.
    eprintln!("running over {}", config.describe());
    if create {
        PubSubAdmin::connect(config.clone())
            .await?
            .create_topic_if_missing(topic)
            .await?;
    }
    let transport = PubSubTransport::connect(config).await?;
    publish(transport.clone(), topic, count, encoding).await?;
    Ok(())
}

#[cfg(not(feature = "pubsub"))]
async fn over_pubsub(_: &str, _: usize, _: Encoding, _: bool) -> Result<(), Error> {
    Err("this build has no Pub/Sub backend: run with `--features pubsub`".into())
}

#[cfg(feature = "rabbitmq")]
async fn over_rabbitmq(
    topic: &str,
    count: usize,
    encoding: Encoding,
    create: bool,
) -> Result<(), Error> {
    use hyperfleet_tracing::transport::rabbitmq::{
        RabbitMqAdmin, RabbitMqConfig, RabbitMqTransport,
    };
    let config = RabbitMqConfig::from_env()?;
    eprintln!("running over RabbitMQ at {}", config.describe());
    let transport = RabbitMqTransport::connect(config).await?;
    if create {
        RabbitMqAdmin::new(&transport)
            .create_topic_if_missing(topic)
            .await?;
    }
    publish(transport, topic, count, encoding).await
}

#[cfg(not(feature = "rabbitmq"))]
async fn over_rabbitmq(_: &str, _: usize, _: Encoding, _: bool) -> Result<(), Error> {
    Err("BROKER_TYPE=rabbitmq, but this build has no RabbitMQ backend: run with `--features rabbitmq`".into())
}

/// Publishes `count` events and prints `message_id traceparent` for each.
async fn publish<T: Transport + Clone>(
    transport: T,
    topic: &str,
    count: usize,
    encoding: Encoding,
) -> Result<(), Error> {
    let publisher = TracedPublisher::new(transport, topic).encoding(encoding);

    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis();
    for i in 0..count {
        let cluster = format!("cluster-{run}-{i}");
        let event = EventBuilderV10::new()
            .id(format!("{run}-{i}"))
            .source("hyperfleet-sentinel")
            .ty("com.redhat.hyperfleet.cluster.reconcile")
            .data(
                "application/json",
                serde_json::json!({
                    "id": cluster,
                    "kind": "Cluster",
                    "href": format!("/api/hyperfleet/v1/clusters/{cluster}"),
                    "generation": 1,
                }),
            )
            .build()?;
        let published = publisher.publish(event).await?;
        let sc = &published.trace_context;
        println!(
            "{} 00-{}-{}-{:02x}",
            published.message_id,
            sc.trace_id(),
            sc.span_id(),
            sc.trace_flags().to_u8()
        );
    }
    Ok(())
}
