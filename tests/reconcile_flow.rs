//! `cargo run --example reconcile` shows the whole reconciliation trace: one trace id from
//! `sentinel.poll` to the adapters' status updates in the API and its database, with the exact
//! parent chain and kinds, both adapters under the same publish span, the four service names,
//! the standard's attributes, and log lines that carry the same trace ids.

mod support;

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

struct Run {
    spans: Vec<Value>,
    logs: Vec<Value>,
}

/// The start of the example's Pub/Sub subscription names.
const PUBSUB: &str = "hyperfleet-dev-clusters-";

/// What the example's events cross (the Pub/Sub and RabbitMQ runs need their features).
#[cfg_attr(not(all(feature = "pubsub", feature = "rabbitmq")), allow(dead_code))]
enum Broker<'a> {
    Memory,
    Emulator(&'a str),
    RabbitMq(&'a str, u16),
}

/// Runs the example over `broker`; the API on SQLite, or on the PostgreSQL at `database`.
fn run(broker: Broker<'_>, database: Option<&str>) -> Run {
    let file = std::env::temp_dir().join(format!(
        "reconcile-spans-{}-{:?}.json",
        std::process::id(),
        std::thread::current().id()
    ));
    let mut command = Command::new(support::examples::binary("reconcile"));
    command
        .env_remove("PUBSUB_EMULATOR_HOST")
        .env_remove("BROKER_TYPE");
    let backend = match broker {
        Broker::Memory => "running over the in-memory Pub/Sub".to_owned(),
        Broker::Emulator(host) => {
            command.env("PUBSUB_EMULATOR_HOST", host);
            format!("running over Google's Pub/Sub emulator at {host}")
        }
        Broker::RabbitMq(url, port) => {
            command
                .env("BROKER_TYPE", "rabbitmq")
                .env("BROKER_RABBITMQ_URL", url);
            format!("running over RabbitMQ at 127.0.0.1:{port}")
        }
    };
    match database {
        Some(url) => command.env("DATABASE_URL", url),
        None => command.env_remove("DATABASE_URL"),
    };
    let output = command
        .env("HYPERFLEET_RECONCILE_SPANS_JSON", &file)
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env_remove("OTEL_TRACES_EXPORTER")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("waterfall"),
        "no waterfall printed:\n{stdout}"
    );
    // The metrics summary counts what crossed: 3 events published, each consumed by both.
    let summary = |component: &str| {
        stdout
            .lines()
            .find(|l| l.trim_start().starts_with(component))
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .unwrap_or_else(|| panic!("no metrics line for {component}:\n{stdout}"))
    };
    assert_eq!(
        summary("sentinel ")[1..7],
        ["published", "3", "consumed", "0", "errors", "0"]
    );
    for adapter in ["adapter-validation ", "adapter-provisioning "] {
        assert_eq!(
            summary(adapter)[1..7],
            ["published", "0", "consumed", "3", "errors", "0"]
        );
    }
    let store = match database {
        Some(_) => "the API keeps its clusters in PostgreSQL at",
        None => "the API keeps its clusters in an embedded SQLite database",
    };
    assert!(
        stdout
            .lines()
            .next()
            .is_some_and(|l| l.starts_with(&backend) && l.contains(store)),
        "the example does not say first what it runs over ({backend}; {store}):\n{stdout}"
    );
    let spans: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let _ = std::fs::remove_file(&file);
    let logs = stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    Run { spans, logs }
}

fn by_id(spans: &[Value]) -> BTreeMap<String, &Value> {
    spans
        .iter()
        .map(|s| (s["span_id"].as_str().unwrap().to_owned(), s))
        .collect()
}

fn parent<'a>(index: &BTreeMap<String, &'a Value>, span: &Value) -> Option<&'a Value> {
    index.get(span["parent_span_id"].as_str().unwrap()).copied()
}

fn expect(span: &Value, name: &str, kind: &str, service: &str) {
    assert_eq!(span["name"], name, "{span}");
    assert_eq!(span["kind"], kind, "{span}");
    assert_eq!(span["service"], service, "{span}");
}

#[test]
fn the_reconciliation_is_one_trace_across_every_component() {
    check(run(Broker::Memory, None), "sqlite", PUBSUB);
}

/// The API on a real PostgreSQL (`DATABASE_URL`, default this machine's local server): the
/// same trace, with `postgresql` database spans.
#[test]
fn the_reconciliation_on_postgresql_has_the_standards_database_spans() {
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let config: tokio_postgres::Config = url.parse().expect("DATABASE_URL is a postgres:// URL");
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
        _ => "127.0.0.1".to_owned(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    assert!(
        std::net::TcpStream::connect((host.as_str(), port)).is_ok(),
        "no PostgreSQL at {host}:{port} (DATABASE_URL={url}). Start the local server with \
         `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start` (Debian's \
         postgresql package), or set DATABASE_URL to a reachable postgres:// URL."
    );
    check(run(Broker::Memory, Some(&url)), "postgresql", PUBSUB);
}

/// The same flow with the events crossing Google's Pub/Sub emulator.
#[cfg(feature = "pubsub")]
#[test]
fn the_reconciliation_over_the_pubsub_emulator_is_the_same_trace() {
    let emulator = support::emulator::Emulator::start_fresh();
    check(
        run(Broker::Emulator(&emulator.host), None),
        "sqlite",
        PUBSUB,
    );
}

/// The same flow over RabbitMQ (`BROKER_TYPE=rabbitmq`), on a private node.
#[cfg(feature = "rabbitmq")]
#[test]
fn the_reconciliation_over_rabbitmq_is_the_same_trace() {
    let node = support::rabbitmq::RabbitNode::start();
    // RabbitMQ queues are `{topic}-{subscription}`, as hyperfleet-broker names them.
    check(
        run(Broker::RabbitMq(&node.url, node.port), None),
        "sqlite",
        "hyperfleet-clusters-",
    );
}

/// Checks the flow's trace; `database` is the API's `db.system`, `subscriptions` what each
/// adapter's subscription name starts with.
fn check(Run { spans, logs }: Run, database: &str, subscriptions: &str) {
    let index = by_id(&spans);
    let poll: Vec<&Value> = spans
        .iter()
        .filter(|s| s["name"] == "sentinel.poll")
        .collect();
    assert_eq!(poll.len(), 1);
    let trace_id = poll[0]["trace_id"].as_str().unwrap();
    let trace: Vec<&Value> = spans.iter().filter(|s| s["trace_id"] == trace_id).collect();

    // Sentinel: poll → GET → API server span → token + SELECT.
    let list = trace
        .iter()
        .find(|s| s["name"] == "GET /clusters")
        .expect("API list span");
    expect(list, "GET /clusters", "Server", "hyperfleet-api");
    let get = parent(&index, list).unwrap();
    expect(get, "GET", "Client", "hyperfleet-sentinel");
    assert_eq!(parent(&index, get).unwrap()["name"], "sentinel.poll");
    for child in ["api.validate_token", "SELECT clusters"] {
        let span = trace
            .iter()
            .find(|s| s["name"] == child && s["parent_span_id"] == list["span_id"]);
        assert!(span.is_some(), "{child} is not under GET /clusters");
    }
    let select = trace
        .iter()
        .find(|s| s["name"] == "SELECT clusters")
        .unwrap();
    assert_eq!(select["attributes"]["db.system"], database);
    assert_eq!(select["attributes"]["db.system.name"], database);
    assert_eq!(select["attributes"]["db.operation.name"], "SELECT");
    assert_eq!(select["attributes"]["db.collection.name"], "clusters");
    assert_eq!(select["attributes"]["db.query.summary"], "SELECT clusters");
    assert_eq!(list["attributes"]["http.route"], "/clusters");
    assert_eq!(list["attributes"]["http.request.method"], "GET");
    assert_eq!(list["attributes"]["http.response.status_code"], "200");
    assert!(
        list["attributes"].get("url.path").is_some()
            && list["attributes"].get("server.address").is_some()
    );
    let token = trace
        .iter()
        .find(|s| s["name"] == "api.validate_token")
        .unwrap();
    assert!(
        !token.to_string().contains("hyperfleet-demo-token"),
        "the token leaked into a span"
    );

    // Per cluster: evaluate → publish → two receives (one per adapter) → process → PATCH →
    // API PATCH server span → UPDATE.
    let publishes: Vec<&&Value> = trace
        .iter()
        .filter(|s| s["name"] == "hyperfleet-clusters publish")
        .collect();
    assert_eq!(publishes.len(), 3, "one event per cluster");
    for publish in publishes {
        expect(
            publish,
            "hyperfleet-clusters publish",
            "Producer",
            "hyperfleet-sentinel",
        );
        let evaluate = parent(&index, publish).unwrap();
        expect(
            evaluate,
            "sentinel.evaluate",
            "Internal",
            "hyperfleet-sentinel",
        );
        assert_eq!(
            evaluate["attributes"]["hyperfleet.resource_type"],
            "clusters"
        );
        assert_eq!(
            evaluate["attributes"]["hyperfleet.decision_reason"],
            "never_reconciled"
        );
        let cluster = evaluate["attributes"]["hyperfleet.cluster_id"]
            .as_str()
            .unwrap();
        assert_eq!(evaluate["attributes"]["hyperfleet.resource_id"], cluster);
        assert_eq!(parent(&index, evaluate).unwrap()["name"], "sentinel.poll");
        assert_eq!(publish["attributes"]["messaging.operation.type"], "publish");
        assert_eq!(publish["attributes"]["hyperfleet.cluster_id"], cluster);

        let receives: Vec<&&Value> = trace
            .iter()
            .filter(|s| s["parent_span_id"] == publish["span_id"])
            .collect();
        let services: BTreeSet<&str> = receives
            .iter()
            .map(|r| r["service"].as_str().unwrap())
            .collect();
        assert_eq!(
            services,
            BTreeSet::from([
                "hyperfleet-adapter-provisioning",
                "hyperfleet-adapter-validation"
            ]),
            "both adapters under the same publish span"
        );
        for receive in receives {
            let service = receive["service"].as_str().unwrap();
            let adapter = service.trim_start_matches("hyperfleet-adapter-");
            expect(receive, "hyperfleet-clusters receive", "Consumer", service);
            assert_eq!(
                receive["attributes"]["messaging.destination.subscription.name"],
                format!("{subscriptions}{adapter}-adapter")
            );
            let process = trace
                .iter()
                .find(|s| s["parent_span_id"] == receive["span_id"])
                .unwrap();
            expect(process, "adapter.process", "Internal", service);
            assert_eq!(process["attributes"]["hyperfleet.adapter"], adapter);
            let patch = trace
                .iter()
                .find(|s| s["parent_span_id"] == process["span_id"])
                .unwrap();
            expect(patch, "PATCH", "Client", service);
            let server = trace
                .iter()
                .find(|s| s["parent_span_id"] == patch["span_id"])
                .unwrap();
            expect(
                server,
                "PATCH /clusters/{id}/status",
                "Server",
                "hyperfleet-api",
            );
            assert_eq!(
                server["attributes"]["url.path"],
                format!("/clusters/{cluster}/status")
            );
            let update = trace
                .iter()
                .find(|s| {
                    s["parent_span_id"] == server["span_id"] && s["name"] == "UPDATE clusters"
                })
                .expect("database update under the status update");
            expect(update, "UPDATE clusters", "Client", "hyperfleet-api");
        }
    }
    assert!(trace.iter().all(|s| s["error"] == false), "a span failed");

    let services: BTreeSet<&str> = trace
        .iter()
        .map(|s| s["service"].as_str().unwrap())
        .collect();
    assert_eq!(
        services,
        BTreeSet::from([
            "hyperfleet-adapter-provisioning",
            "hyperfleet-adapter-validation",
            "hyperfleet-api",
            "hyperfleet-sentinel",
        ])
    );

    // The client's request is its own trace: client span → API server span.
    let show = spans
        .iter()
        .find(|s| s["name"] == "GET /clusters/{id}")
        .expect("client flow");
    assert_ne!(show["trace_id"], trace_id);
    assert_eq!(
        parent(&index, show).unwrap()["service"],
        "hyperfleet-client"
    );

    // Log lines written during the flow carry its trace ids.
    let reconciled: Vec<&Value> = logs
        .iter()
        .filter(|l| l["message"] == "reconciled cluster")
        .collect();
    assert_eq!(reconciled.len(), 6, "three clusters, two adapters");
    for line in &reconciled {
        assert_eq!(line["trace_id"], trace_id);
        let span = index
            .get(line["span_id"].as_str().unwrap())
            .expect("log span_id is an exported span");
        assert_eq!(span["name"], "adapter.process");
        assert!(line["event_id"].is_string() && line["subscription"].is_string());
    }
    let updates: Vec<&Value> = logs
        .iter()
        .filter(|l| l["message"] == "status updated")
        .collect();
    assert_eq!(updates.len(), 6);
    assert!(
        updates
            .iter()
            .all(|l| l["trace_id"] == trace_id && l["component"] == "api")
    );
    let published: Vec<&Value> = logs
        .iter()
        .filter(|l| l["message"] == "published reconcile event")
        .collect();
    assert_eq!(published.len(), 3);
    assert!(
        published
            .iter()
            .all(|l| l["trace_id"] == trace_id && l["component"] == "sentinel")
    );
}

#[test]
fn with_tracing_disabled_the_flow_runs_and_the_upstream_trace_travels_in_the_log_lines() {
    const UPSTREAM: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    let file = std::env::temp_dir().join(format!("reconcile-off-{}.json", std::process::id()));
    let output = Command::new(support::examples::binary("reconcile"))
        .env("TRACING_ENABLED", "false")
        .env("HYPERFLEET_RECONCILE_SPANS_JSON", &file)
        .env_remove("PUBSUB_EMULATOR_HOST")
        .env_remove("BROKER_TYPE")
        .env_remove("DATABASE_URL")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env_remove("OTEL_TRACES_EXPORTER")
        .env_remove("HYPERFLEET_TRACING_ENABLED")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("tracing is disabled"), "{stdout}");
    let spans: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let _ = std::fs::remove_file(&file);
    assert!(spans.is_empty(), "spans were recorded: {spans:?}");
    let logs: Vec<Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let reconciled: Vec<&Value> = logs
        .iter()
        .filter(|l| l["message"] == "reconciled cluster")
        .collect();
    assert_eq!(reconciled.len(), 6, "{stdout}");
    for line in reconciled.iter().chain(
        logs.iter()
            .filter(|l| l["message"] == "published reconcile event")
            .collect::<Vec<_>>()
            .iter(),
    ) {
        assert_eq!(line["trace_id"], UPSTREAM, "{line}");
    }
}
