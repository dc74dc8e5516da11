//! The `publish` and `subscribe` examples work as documented against the emulator: what one
//! publishes, the other handles, and each handled event's log line names the trace the
//! publisher printed. The examples are built by `cargo test` next to this test.

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_then_subscribe_carries_each_trace() {
    let emulator = tokio::task::spawn_blocking(Emulator::start_fresh)
        .await
        .unwrap();
    let host = emulator.host.clone();
    let admin = PubSubAdmin::connect(PubSubConfig::new("hyperfleet-examples").emulator(&host))
        .await
        .unwrap();
    admin
        .create_topic_if_missing("hyperfleet-clusters")
        .await
        .unwrap();
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
