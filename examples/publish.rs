//! Publish HyperFleet reconcile events to Pub/Sub, each in a traced `{topic} publish` span.
//!
//! ```sh
//! PUBSUB_EMULATOR_HOST=127.0.0.1:8085 GOOGLE_CLOUD_PROJECT=demo HYPERFLEET_CREATE_IF_MISSING=true \
//!   cargo run --features pubsub --example publish
//! ```
//!
//! Reads `PUBSUB_EMULATOR_HOST`, `GOOGLE_CLOUD_PROJECT`, `HYPERFLEET_TOPIC` (default
//! `hyperfleet-clusters`), `HYPERFLEET_EVENT_COUNT` (default 1), `HYPERFLEET_ENCODING`
//! (`structured` | `binary`, default structured), `HYPERFLEET_CREATE_IF_MISSING` (default
//! false), and the standard `OTEL_*` variables. Prints `message_id traceparent` per event.

use cloudevents::{EventBuilder, EventBuilderV10};
use hyperfleet_tracing::TracedPublisher;
use hyperfleet_tracing::binding::Encoding;
use hyperfleet_tracing::telemetry::{self, Component};
use hyperfleet_tracing::transport::pubsub::{PubSubAdmin, PubSubConfig, PubSubTransport};

fn var(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
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
    let config = PubSubConfig::from_env(None)?;
    // What it runs over, on standard error so standard output stays machine-readable.
    eprintln!("running over {}", config.describe());
    if var("HYPERFLEET_CREATE_IF_MISSING", "false") == "true" {
        PubSubAdmin::connect(config.clone())
            .await?
            .create_topic_if_missing(&topic)
            .await?;
    }
    let transport = PubSubTransport::connect(config).await?;
    let publisher = TracedPublisher::builder(transport.clone(), &topic)
        .encoding(encoding)
        .build();

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
    transport.flush().await;
    Ok(())
}
