//! The HyperFleet reconciliation flow end to end, in one process on loopback:
//!
//! - an API (axum, clusters in an embedded SQLite database, bearer token);
//! - a Sentinel: `sentinel.poll` → `GET` the clusters → `sentinel.evaluate` per cluster →
//!   `hyperfleet-clusters publish` of a `com.redhat.hyperfleet.cluster.reconcile` CloudEvent;
//! - a validation and a provisioning adapter, each on its own subscription:
//!   `hyperfleet-clusters receive` → `adapter.process` → `PATCH` the cluster's status;
//! - a client's `GET /clusters/{id}`, the standard's second flow.
//!
//! Each component has its own tracer provider, so each reports under its own service name
//! (`hyperfleet-api`, `hyperfleet-sentinel`, `hyperfleet-adapter-validation`,
//! `hyperfleet-adapter-provisioning`) though they share a process, and its own log layer, so
//! its JSON lines name it. The log lines print as they happen; then every trace prints as a
//! waterfall, and a short summary of each component's broker metrics.
//!
//! `cargo run --example reconcile`. With `PUBSUB_EMULATOR_HOST` set (and `--features pubsub`)
//! the events cross Google's Pub/Sub emulator instead of the in-memory Pub/Sub; with
//! `OTEL_EXPORTER_OTLP_ENDPOINT` set the spans also go to that collector.
//! `HYPERFLEET_RECONCILE_SPANS_JSON=path` writes the spans as JSON (used by the tests).

mod api;
mod provider;
mod store;
mod summary;
mod waterfall;

use cloudevents::{EventBuilder, EventBuilderV10};
use hyperfleet_tracing::Settings;
use hyperfleet_tracing::attributes::{
    HYPERFLEET_CLUSTER_ID, HYPERFLEET_DECISION_REASON, HYPERFLEET_RESOURCE_ID,
    HYPERFLEET_RESOURCE_TYPE,
};
use hyperfleet_tracing::http::HttpClientTracing;
use hyperfleet_tracing::metrics::Metrics;
use hyperfleet_tracing::telemetry::{self, Component, Config, TelemetryGuard};
use hyperfleet_tracing::transport::memory::MemoryTransport;
use hyperfleet_tracing::transport::{SubscriptionConfig, Transport};
use hyperfleet_tracing::{HandlerError, Received};
use hyperfleet_tracing::{PublishOptions, TracedPublisher, TracedSubscriber};
use opentelemetry::context::FutureExt as _;
use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState, Tracer, TracerProvider,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SimpleSpanProcessor};
use prometheus_client::registry::Registry;
use provider::Spans;
use serde_json::Value;
use tracing::instrument::WithSubscriber;
use waterfall::ServiceSpan;

const TOPIC: &str = "hyperfleet-clusters";
/// The trace an upstream caller started, when tracing is disabled here.
const UPSTREAM_TRACE_ID: [u8; 16] =
    *b"\x4b\xf9\x2f\x35\x77\xb3\x4d\xa6\xa3\xce\x92\x9d\x0e\x0e\x47\x36";
const UPSTREAM_SPAN_ID: [u8; 8] = *b"\x00\xf0\x67\xaa\x0b\xa9\x02\xb7";
const ADAPTERS: [&str; 2] = ["validation", "provisioning"];
const CLUSTERS: [(&str, &str, i64); 3] = [
    ("2f5c7d1e-0000-4000-8000-000000000001", "prod-east", 3),
    ("2f5c7d1e-0000-4000-8000-000000000002", "prod-west", 7),
    ("2f5c7d1e-0000-4000-8000-000000000003", "staging", 1),
];

type Error = Box<dyn std::error::Error + Send + Sync>;

/// One component's telemetry: its provider, its log dispatcher, its spans.
struct Part {
    service: String,
    provider: Spans,
    logs: tracing::Dispatch,
    spans: InMemorySpanExporter,
    /// Where its publishers and subscribers record metrics: its own registry, for the
    /// summary, and the meter provider of `OTEL_METRICS_EXPORTER` when one is configured.
    metrics: Metrics,
    registry: Registry,
    component: String,
    _guard: TelemetryGuard,
}

fn part(component: Component) -> Result<Part, Error> {
    let spans = InMemorySpanExporter::default();
    let service = component.service_name().to_owned();
    let log_component = component.log_component().to_owned();
    let telemetry = telemetry::builder(component)
        .version(env!("CARGO_PKG_VERSION"))
        .config(Config::from_lookup(&service, example_environment)?)
        .with_span_processor(SimpleSpanProcessor::new(spans.clone()))
        .build()?;
    let provider = match telemetry.tracer_provider() {
        Some(provider) => Spans::Recorded(provider.clone()),
        None => Spans::Off,
    };
    let mut registry = Registry::default();
    let mut metrics = Metrics::builder()
        .component(&log_component)
        .version(env!("CARGO_PKG_VERSION"))
        .prometheus(&mut registry);
    if let Some(meter_provider) = telemetry.meter_provider() {
        metrics = metrics.meter_provider(meter_provider);
    }
    let (logs, guard) = telemetry.into_subscriber();
    Ok(Part {
        service,
        provider,
        logs,
        spans,
        metrics: metrics.build(),
        registry,
        component: log_component,
        _guard: guard,
    })
}

/// The process environment, except that with no collector configured the OTLP exporters are
/// off: the example runs on embedded defaults. (Five components share this process, so the
/// `prometheus` metrics exporter would need five ports: the summary shows the metrics instead.)
fn example_environment(key: &str) -> Option<String> {
    let configured = |k: &str| std::env::var_os(k).is_some();
    if (key == "OTEL_TRACES_EXPORTER" || key == "OTEL_METRICS_EXPORTER")
        && !configured(key)
        && !configured("OTEL_EXPORTER_OTLP_ENDPOINT")
        && !configured("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    {
        return Some("none".to_owned());
    }
    std::env::var(key).ok()
}

/// What the events cross: the in-memory Pub/Sub, Google's emulator when
/// `PUBSUB_EMULATOR_HOST` names one, or RabbitMQ with `BROKER_TYPE=rabbitmq` and
/// `BROKER_RABBITMQ_URL` (as hyperfleet-broker reads them). Asking for a backend the build
/// lacks is an error, never a silent fallback to memory.
enum Backend {
    Memory,
    Emulator(String),
    RabbitMq(String),
}

impl Backend {
    fn from_env() -> Result<Self, Error> {
        match std::env::var("BROKER_TYPE").unwrap_or_default().as_str() {
            "" | "googlepubsub" => {}
            "rabbitmq" => return Self::rabbitmq(),
            other => {
                return Err(format!(
                    "BROKER_TYPE={other} is no broker type: use googlepubsub or rabbitmq"
                )
                .into());
            }
        }
        let Some(host) = std::env::var("PUBSUB_EMULATOR_HOST")
            .ok()
            .filter(|h| !h.is_empty())
        else {
            return Ok(Self::Memory);
        };
        if cfg!(feature = "pubsub") {
            Ok(Self::Emulator(host))
        } else {
            Err(format!(
                "PUBSUB_EMULATOR_HOST={host} asks for the Pub/Sub emulator, but this build has \
                 no Pub/Sub backend: run `cargo run --features pubsub --example reconcile`"
            )
            .into())
        }
    }
}

impl Backend {
    fn rabbitmq() -> Result<Self, Error> {
        let url = std::env::var("BROKER_RABBITMQ_URL").unwrap_or_default();
        if !cfg!(feature = "rabbitmq") {
            return Err(
                "BROKER_TYPE=rabbitmq asks for RabbitMQ, but this build has no RabbitMQ \
                        backend: run `cargo run --features rabbitmq --example reconcile`"
                    .into(),
            );
        }
        if !url.starts_with("amqp://") && !url.starts_with("amqps://") {
            return Err("BROKER_TYPE=rabbitmq needs BROKER_RABBITMQ_URL=amqp://…".into());
        }
        Ok(Self::RabbitMq(url))
    }
}

/// A RabbitMQ URL without its credentials.
fn without_credentials(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.rsplit_once('@').map_or(rest, |(_, host)| host)
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Memory => {
                f.write_str("the in-memory Pub/Sub (set PUBSUB_EMULATOR_HOST for the emulator)")
            }
            Self::Emulator(host) => write!(f, "Google's Pub/Sub emulator at {host}"),
            Self::RabbitMq(url) => write!(f, "RabbitMQ at {}", without_credentials(url)),
        }
    }
}

fn subscription(adapter: &str) -> String {
    format!("hyperfleet-dev-clusters-{adapter}-adapter")
}

/// On RabbitMQ a subscription is the queue `{topic}-{subscription}`, as hyperfleet-broker
/// names it.
#[cfg(feature = "rabbitmq")]
fn rabbitmq_queue(adapter: &str) -> String {
    hyperfleet_tracing::transport::rabbitmq::RabbitMqConfig::queue_name(
        TOPIC,
        &format!("{adapter}-adapter"),
    )
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let api = part(Component::Api)?;
    let sentinel = part(Component::Sentinel)?;
    let validation = part(Component::ValidationAdapter)?;
    let provisioning = part(Component::ProvisioningAdapter)?;
    let client = part(Component::custom("hyperfleet-client"))?;

    let backend = Backend::from_env()?;
    let store = store::Store::from_env(&api.provider).await?;
    println!(
        "running over {backend}; the API keeps its clusters in {}",
        store.describe()
    );
    let upstream = upstream(&sentinel.provider);
    let base = api::start(api.provider.clone(), api.logs.clone(), store, &CLUSTERS).await?;

    #[cfg(feature = "pubsub")]
    if let Backend::Emulator(_) = backend {
        use hyperfleet_tracing::transport::pubsub::{PubSubAdmin, PubSubConfig, PubSubTransport};
        let config = PubSubConfig::from_env(Some("hyperfleet-demo"))?;
        let admin = PubSubAdmin::connect(config.clone()).await?;
        admin.create_topic_if_missing(TOPIC).await?;
        for adapter in ADAPTERS {
            admin
                .create_subscription_if_missing(
                    &subscription(adapter),
                    TOPIC,
                    &SubscriptionConfig::default(),
                )
                .await?;
        }
        let transport = PubSubTransport::connect(config).await?;
        reconcile(
            transport,
            &base,
            &upstream,
            &sentinel,
            &validation,
            &provisioning,
            subscription,
        )
        .await?;
        return finish(
            &base,
            &[&api, &sentinel, &validation, &provisioning, &client],
            &client,
        )
        .await;
    }

    #[cfg(feature = "rabbitmq")]
    if let Backend::RabbitMq(url) = &backend {
        use hyperfleet_tracing::transport::rabbitmq::{
            QueueKind, RabbitMqAdmin, RabbitMqConfig, RabbitMqTransport,
        };
        let transport = RabbitMqTransport::connect(RabbitMqConfig::new(url)).await?;
        let admin = RabbitMqAdmin::new(&transport);
        admin.create_topic_if_missing(TOPIC).await?;
        for adapter in ADAPTERS {
            admin
                .create_subscription_if_missing(
                    &rabbitmq_queue(adapter),
                    TOPIC,
                    QueueKind::Classic,
                    &SubscriptionConfig::default(),
                )
                .await?;
        }
        reconcile(
            transport,
            &base,
            &upstream,
            &sentinel,
            &validation,
            &provisioning,
            rabbitmq_queue,
        )
        .await?;
        return finish(
            &base,
            &[&api, &sentinel, &validation, &provisioning, &client],
            &client,
        )
        .await;
    }

    let transport = MemoryTransport::new();
    transport.create_topic(TOPIC)?;
    for adapter in ADAPTERS {
        transport.create_subscription(
            &subscription(adapter),
            TOPIC,
            SubscriptionConfig::default(),
        )?;
    }
    reconcile(
        transport,
        &base,
        &upstream,
        &sentinel,
        &validation,
        &provisioning,
        subscription,
    )
    .await?;
    finish(
        &base,
        &[&api, &sentinel, &validation, &provisioning, &client],
        &client,
    )
    .await
}

/// The context the Sentinel's poll starts under. With tracing on, none: the poll starts the
/// trace. With tracing disabled, an upstream caller's, as if a `traceparent` had come in: no
/// span is recorded, yet every hop carries that trace on and every log line names it.
fn upstream(sentinel: &Spans) -> Context {
    if sentinel.is_recorded() {
        return Context::new();
    }
    let upstream = SpanContext::new(
        TraceId::from_bytes(UPSTREAM_TRACE_ID),
        SpanId::from_bytes(UPSTREAM_SPAN_ID),
        TraceFlags::SAMPLED,
        true,
        TraceState::default(),
    );
    println!(
        "tracing is disabled: no span is recorded, but trace context still travels. The \
         Sentinel runs under an upstream trace, {}; every log line below carries it on.",
        upstream.trace_id()
    );
    Context::new().with_remote_span_context(upstream)
}

/// The reconciliation flow: the Sentinel publishes, both adapters handle every event.
async fn reconcile<T: Transport + Clone>(
    transport: T,
    base: &str,
    upstream: &Context,
    sentinel: &Part,
    validation: &Part,
    provisioning: &Part,
    subscription_of: fn(&str) -> String,
) -> Result<(), Error> {
    let published = sentinel_poll(&transport, base, upstream, sentinel).await?;
    let (a, b) = tokio::join!(
        adapter(
            &transport,
            base,
            validation,
            ("validation", subscription_of("validation")),
            published
        ),
        adapter(
            &transport,
            base,
            provisioning,
            ("provisioning", subscription_of("provisioning")),
            published
        ),
    );
    a?;
    b
}

/// `sentinel.poll` → `GET` → `sentinel.evaluate` per cluster → publish when it needs work.
async fn sentinel_poll<T: Transport + Clone>(
    transport: &T,
    base: &str,
    upstream: &Context,
    sentinel: &Part,
) -> Result<usize, Error> {
    let tracer = sentinel.provider.tracer("hyperfleet-sentinel");
    let publisher = TracedPublisher::new(transport.clone(), TOPIC).settings(
        Settings::new()
            .tracer_provider(&sentinel.provider)
            .metrics(sentinel.metrics.clone()),
    );
    let http =
        HttpClientTracing::new().settings(Settings::new().tracer_provider(&sentinel.provider));
    let client = reqwest::Client::new();
    let poll = upstream.with_span(tracer.start_with_context("sentinel.poll", upstream));
    let published = async {
        let request = client
            .get(format!("{base}/clusters"))
            .bearer_auth(api::TOKEN)
            .build()?;
        let clusters: Value =
            serde_json::from_str(&http.send(&client, request).await?.text().await?)?;
        let mut published = 0;
        for cluster in clusters["items"].as_array().cloned().unwrap_or_default() {
            let id = cluster["id"].as_str().unwrap_or_default().to_owned();
            let generation = cluster["generation"].as_i64().unwrap_or_default();
            let reason = if cluster["status"]["validation"].is_null() {
                "never_reconciled"
            } else {
                "up_to_date"
            };
            let evaluate = tracer
                .span_builder("sentinel.evaluate")
                .with_attributes([
                    KeyValue::new(HYPERFLEET_RESOURCE_TYPE, "clusters"),
                    KeyValue::new(HYPERFLEET_RESOURCE_ID, id.clone()),
                    KeyValue::new(HYPERFLEET_CLUSTER_ID, id.clone()),
                    KeyValue::new(HYPERFLEET_DECISION_REASON, reason),
                ])
                .start_with_context(&tracer, &Context::current());
            let evaluate = Context::current().with_span(evaluate);
            if reason == "never_reconciled" {
                let event = EventBuilderV10::new()
                    .id(format!("0193a1b2-0000-7000-8000-00000000000{generation}"))
                    .source("hyperfleet-sentinel")
                    .ty("com.redhat.hyperfleet.cluster.reconcile")
                    .data(
                        "application/json",
                        serde_json::json!({
                            "id": id,
                            "kind": "Cluster",
                            "href": format!("{base}/clusters/{id}"),
                            "generation": generation,
                        }),
                    )
                    .build()?;
                let message = publisher
                    .publish_with(event, PublishOptions::new().parent(evaluate.clone()))
                    .await?;
                async {
                    tracing::info!(
                        cluster_id = id,
                        decision_reason = reason,
                        message_id = message.message_id,
                        topic = TOPIC,
                        "published reconcile event"
                    );
                }
                .with_context(evaluate.clone())
                .await;
                published += 1;
            }
            evaluate.span().end();
        }
        Ok::<usize, Error>(published)
    }
    .with_context(poll.clone())
    .with_subscriber(sentinel.logs.clone())
    .await;
    poll.span().end();
    published
}

/// `receive` → `adapter.process` → `PATCH /clusters/{id}/status`, for `expected` events.
async fn adapter<T: Transport + Clone>(
    transport: &T,
    base: &str,
    part: &Part,
    (name, subscription): (&'static str, String),
    expected: usize,
) -> Result<(), Error> {
    let http = HttpClientTracing::new().settings(Settings::new().tracer_provider(&part.provider));
    let client = reqwest::Client::new();
    let base = base.to_owned();
    let (done, mut handled) = tokio::sync::mpsc::unbounded_channel::<()>();
    let handler = move |received: Received| {
        let (http, client, base, done) = (http.clone(), client.clone(), base.clone(), done.clone());
        async move {
            let Some(cloudevents::Data::Json(data)) = received.event.data() else {
                return Err::<(), HandlerError>("the event has no JSON data".into());
            };
            let cluster = data["id"].as_str().unwrap_or_default().to_owned();
            let request = client
                .patch(format!("{base}/clusters/{cluster}/status"))
                .bearer_auth(api::TOKEN)
                .header("content-type", "application/json")
                .body(serde_json::json!({"adapter": name, "status": "ready", "observed_generation": data["generation"]}).to_string())
                .build()?;
            let response = http.send(&client, request).await?;
            if !response.status().is_success() {
                return Err(format!("status update answered {}", response.status()).into());
            }
            tracing::info!(
                cluster_id = cluster,
                adapter = name,
                observed_generation = data["generation"].as_i64(),
                "reconciled cluster"
            );
            let _ = done.send(());
            Ok(())
        }
    };
    TracedSubscriber::new(transport.clone(), subscription, TOPIC)
        .settings(
            Settings::new()
                .adapter(name)
                .tracer_provider(&part.provider)
                .metrics(part.metrics.clone()),
        )
        .run(handler, async move {
            for _ in 0..expected {
                handled.recv().await;
            }
        })
        .with_subscriber(part.logs.clone())
        .await?;
    Ok(())
}

/// The client's `GET /clusters/{id}`, then the waterfalls.
async fn finish(base: &str, parts: &[&Part], client_part: &Part) -> Result<(), Error> {
    let tracer = client_part.provider.tracer("hyperfleet-client");
    let root = Context::new().with_span(tracer.start("client.get_cluster"));
    let http =
        HttpClientTracing::new().settings(Settings::new().tracer_provider(&client_part.provider));
    let client = reqwest::Client::new();
    let request = client
        .get(format!("{base}/clusters/{}", CLUSTERS[0].0))
        .bearer_auth(api::TOKEN)
        .build()?;
    let cluster = http
        .send(&client, request)
        .with_context(root.clone())
        .await?
        .text()
        .await?;
    async { tracing::info!(cluster, "client read the cluster") }
        .with_context(root.clone())
        .with_subscriber(client_part.logs.clone())
        .await;
    root.span().end();

    let mut spans = Vec::new();
    for part in parts {
        part.provider.force_flush()?;
        for span in part.spans.get_finished_spans()? {
            spans.push(ServiceSpan {
                service: part.service.clone(),
                span,
            });
        }
    }
    if parts.iter().any(|part| part.provider.is_recorded()) {
        waterfall::print(&spans);
    } else {
        println!("no waterfall: tracing is disabled, so no span was recorded");
    }
    let registries: Vec<(&str, &Registry)> = parts
        .iter()
        .map(|part| (part.component.as_str(), &part.registry))
        .collect();
    summary::print(&registries);
    if let Some(path) = std::env::var_os("HYPERFLEET_RECONCILE_SPANS_JSON") {
        std::fs::write(path, waterfall::to_json(&spans).to_string())?;
    }
    Ok(())
}
