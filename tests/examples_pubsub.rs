//! The `publish`, `subscribe` and `push` examples work as documented against the emulator:
//! what one publishes, the others handle (pulled, or pushed by the emulator), and each handled
//! event's log line names the trace the publisher printed. The examples are built by `cargo test` next to this test.

mod support;

use hyperfleet_tracing::transport::SubscriptionConfig;
use hyperfleet_tracing::transport::pubsub::{PubSubAdmin, PubSubConfig};
use std::process::Command;
use support::emulator::Emulator;

fn run(name: &str, emulator: &str, vars: &[(&str, &str)]) -> String {
    let output = Command::new(support::examples::binary(name))
        .env("PUBSUB_EMULATOR_HOST", emulator)
        .env("GOOGLE_CLOUD_PROJECT", "hyperfleet-examples")
        .env("HYPERFLEET_TOPIC", "hyperfleet-clusters")
        .env("OTEL_TRACES_EXPORTER", "none")
        // No collector here: a failed metrics export would log into the output read below.
        .env("OTEL_METRICS_EXPORTER", "none")
        .envs(vars.iter().copied())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{name} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// A fresh emulator with the examples' topic.
async fn emulator_with_topic() -> (Emulator, PubSubAdmin) {
    let emulator = tokio::task::spawn_blocking(Emulator::start_fresh)
        .await
        .unwrap();
    let admin =
        PubSubAdmin::connect(PubSubConfig::new("hyperfleet-examples").emulator(&emulator.host))
            .await
            .unwrap();
    admin
        .create_topic_if_missing("hyperfleet-clusters")
        .await
        .unwrap();
    (emulator, admin)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_then_subscribe_carries_each_trace() {
    let (emulator, admin) = emulator_with_topic().await;
    let host = emulator.host.clone();
    admin
        .create_subscription_if_missing(
            "examples-sub",
            "hyperfleet-clusters",
            &SubscriptionConfig::default(),
        )
        .await
        .unwrap();

    let (published, logs) = tokio::task::spawn_blocking(move || {
        let published = run(
            "publish",
            &host,
            &[
                ("HYPERFLEET_EVENT_COUNT", "3"),
                ("HYPERFLEET_ENCODING", "binary"),
            ],
        );
        let logs = run(
            "subscribe",
            &host,
            &[
                ("HYPERFLEET_SUBSCRIPTION", "examples-sub"),
                ("HYPERFLEET_MAX_MESSAGES", "3"),
            ],
        );
        (published, logs)
    })
    .await
    .unwrap();

    let mut published_traces: Vec<String> = published
        .lines()
        .map(|line| {
            let (id, traceparent) = line.split_once(' ').unwrap_or_else(|| panic!("{line}"));
            assert!(!id.is_empty());
            traceparent[3..35].to_owned()
        })
        .collect();
    assert_eq!(published_traces.len(), 3, "{published}");
    let mut handled_traces: Vec<String> = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|l| l["message"] == "handled event")
        .map(|l| {
            assert_eq!(l["subscription"], "examples-sub");
            assert_eq!(l["component"], "adapter-validation");
            l["trace_id"].as_str().unwrap().to_owned()
        })
        .collect();
    published_traces.sort();
    handled_traces.sort();
    assert_eq!(handled_traces, published_traces, "logs:\n{logs}");
}

/// The `push` example behind a real push subscription: what the publisher sends is handled,
/// and each handled event's log line names the publisher's trace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_serves_the_emulator_and_logs_each_trace() {
    use hyperfleet_tracing::transport::pubsub::PushSubscription;
    let (emulator, admin) = emulator_with_topic().await;
    let host = emulator.host.clone();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let address = format!("127.0.0.1:{port}");
    admin
        .create_push_subscription_if_missing(
            "examples-push",
            "hyperfleet-clusters",
            &PushSubscription::unwrapped(format!("http://{address}/")),
            &SubscriptionConfig::default(),
        )
        .await
        .unwrap();
    let server = {
        let (host, address) = (host.clone(), address.clone());
        tokio::task::spawn_blocking(move || {
            run(
                "push",
                &host,
                &[
                    ("HYPERFLEET_PUSH_ADDR", address.as_str()),
                    ("HYPERFLEET_MAX_MESSAGES", "2"),
                ],
            )
        })
    };
    // Publish once the example listens (its deliveries are retried until then anyway).
    while tokio::net::TcpStream::connect(&address).await.is_err() {
        assert!(
            !server.is_finished(),
            "the push example exited before it listened"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let published = tokio::task::spawn_blocking(move || {
        run("publish", &host, &[("HYPERFLEET_EVENT_COUNT", "2")])
    })
    .await
    .unwrap();
    let logs = server.await.unwrap();

    support::examples::assert_each_published_trace_handled(&published, &logs, "examples-push", 2);
}
