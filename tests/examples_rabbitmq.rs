//! The `publish` and `subscribe` examples over RabbitMQ (`BROKER_TYPE=rabbitmq`), on a private
//! node: exchange `{topic}` and queue `{topic}-{subscription}` created, what one publishes the
//! other handles, and each handled event's log line names the trace the publisher printed.

mod support;

use std::process::Command;
use support::rabbitmq::RabbitNode;

fn run(name: &str, url: &str, vars: &[(&str, &str)]) -> (String, String) {
    let output = Command::new(support::examples::binary(name))
        .env("BROKER_TYPE", "rabbitmq")
        .env("BROKER_RABBITMQ_URL", url)
        .env("HYPERFLEET_TOPIC", "hyperfleet-clusters")
        .env("HYPERFLEET_CREATE_IF_MISSING", "true")
        .env("OTEL_TRACES_EXPORTER", "none")
        // No collector here: a failed metrics export would log into the output read below.
        .env("OTEL_METRICS_EXPORTER", "none")
        .env_remove("PUBSUB_EMULATOR_HOST")
        .envs(vars.iter().copied())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        output.status.success(),
        "{name} failed:\n{stdout}\n{stderr}"
    );
    (stdout, stderr)
}

#[test]
fn publish_then_subscribe_over_rabbitmq_carries_each_trace() {
    let node = RabbitNode::start();
    let subscriber = {
        let url = node.url.clone();
        std::thread::spawn(move || {
            run(
                "subscribe",
                &url,
                &[
                    ("HYPERFLEET_SUBSCRIPTION", "validation"),
                    ("HYPERFLEET_MAX_MESSAGES", "3"),
                ],
            )
        })
    };
    // The subscriber declares its queue; publishing before it is bound would be refused
    // (unroutable), so publish once the queue exists.
    let published = loop {
        let output = Command::new(support::examples::binary("publish"))
            .env("BROKER_TYPE", "rabbitmq")
            .env("BROKER_RABBITMQ_URL", &node.url)
            .env("HYPERFLEET_TOPIC", "hyperfleet-clusters")
            .env("HYPERFLEET_CREATE_IF_MISSING", "true")
            .env("HYPERFLEET_EVENT_COUNT", "3")
            .env("OTEL_TRACES_EXPORTER", "none")
            // No collector here: a failed metrics export would log into the output read below.
            .env("OTEL_METRICS_EXPORTER", "none")
            .output()
            .unwrap();
        if output.status.success() {
            break String::from_utf8_lossy(&output.stdout).into_owned();
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("not routed"), "publish failed: {stderr}");
        assert!(!subscriber.is_finished(), "the subscriber exited early");
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let (logs, stderr) = subscriber.join().unwrap();
    assert!(
        stderr.contains(&format!("running over RabbitMQ at 127.0.0.1:{}", node.port)),
        "{stderr}"
    );
    support::examples::assert_each_published_trace_handled(
        &published,
        &logs,
        "hyperfleet-clusters-validation",
        3,
    );
}
