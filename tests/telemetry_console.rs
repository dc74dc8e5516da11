//! OTEL_TRACES_EXPORTER=console prints the spans on standard output. The exporter prints to
//! the process's stdout, so the test runs itself as a child process and reads its output.

use cloudevents::{EventBuilder, EventBuilderV10};
use hyperfleet_tracing::Settings;
use hyperfleet_tracing::TracedPublisher;
use hyperfleet_tracing::telemetry::{self, Component, Config};
use hyperfleet_tracing::transport::memory::MemoryTransport;
use std::process::Command;

const CHILD: &str = "HYPERFLEET_TRACING_CONSOLE_TEST_CHILD";

#[test]
fn console_exporter_prints_spans() {
    if std::env::var_os(CHILD).is_some() {
        return child();
    }
    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "console_exporter_prints_spans",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "child failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("Name         : hyperfleet-clusters publish"),
        "no publish span printed:\n{stdout}"
    );
    assert!(
        stdout.contains("Kind         : Producer"),
        "no span kind printed:\n{stdout}"
    );
    assert!(
        stdout.contains("service.name") && stdout.contains("hyperfleet-sentinel"),
        "no resource printed:\n{stdout}"
    );
    assert!(
        stdout.contains("messaging.destination.name"),
        "no attributes printed:\n{stdout}"
    );
}

fn child() {
    let config = Config::from_lookup("hyperfleet-sentinel", |k| {
        (k == "OTEL_TRACES_EXPORTER").then(|| "console".to_owned())
    })
    .unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let telemetry = telemetry::builder(Component::Sentinel)
            .config(config)
            .log_writer(std::io::sink)
            .build()
            .unwrap();
        let provider = telemetry.tracer_provider().unwrap().clone();
        let (_dispatch, mut guard) = telemetry.into_subscriber();
        let transport = MemoryTransport::new();
        transport.create_topic("hyperfleet-clusters").unwrap();
        let event = EventBuilderV10::new()
            .id("1")
            .source("hyperfleet-sentinel")
            .ty("t")
            .build()
            .unwrap();
        TracedPublisher::new(transport, "hyperfleet-clusters")
            .settings(Settings::new().tracer_provider(&provider))
            .publish(event)
            .await
            .unwrap();
        drop(provider);
        guard.shutdown().unwrap();
    });
}
