//! A real Prometheus server scrapes the running `push` example, configured only by the
//! environment: its query API returns the counts of what was delivered, its stored exemplars
//! name traces the example exported, and `promtool` accepts the exposition.

mod support;

use cloudevents::event::ExtensionValue;
use hyperfleet_tracing::binding::{self, Encoding};
use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use support::otlp_receiver::OtlpReceiver;
use support::prometheus::{PrometheusServer, promtool};

fn free_address() -> String {
    format!("127.0.0.1:{}", support::free_port())
}

/// A wrapped push body carrying a structured event in trace `trace_id`.
fn delivery(id: &str, trace_id: &str) -> Vec<u8> {
    let mut event = support::events::reconcile_event(id);
    event.set_extension(
        "traceparent",
        ExtensionValue::String(format!("00-{trace_id}-00f067aa0ba902b7-01")),
    );
    let message = binding::encode_owned(event, Encoding::Structured).unwrap();
    let attributes: serde_json::Map<String, serde_json::Value> = message
        .attributes
        .into_iter()
        .map(|(k, v)| (k, serde_json::Value::String(v)))
        .collect();
    support::push::wrapped_body(&message.data, attributes.into(), serde_json::json!({}))
}

struct Example(Child);

impl Example {
    fn interrupt_and_wait(mut self) -> String {
        // SAFETY: signalling the child this test started.
        unsafe {
            libc::kill(self.0.id() as i32, libc::SIGINT);
        }
        let output = std::mem::replace(&mut self.0, Command::new("true").spawn().unwrap())
            .wait_with_output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        String::from_utf8_lossy(&output.stderr).into_owned()
    }
}

impl Drop for Example {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_the_push_example_and_its_exemplars_open_exported_traces() {
    let receiver = OtlpReceiver::start().await;
    let push = free_address();
    let metrics = free_address();
    let (metrics_host, metrics_port) = metrics.split_once(':').unwrap();
    let example = Example(
        Command::new(support::examples::binary("push"))
            .env("HYPERFLEET_PUSH_ADDR", &push)
            .env("OTEL_METRICS_EXPORTER", "prometheus")
            .env("OTEL_EXPORTER_PROMETHEUS_HOST", metrics_host)
            .env("OTEL_EXPORTER_PROMETHEUS_PORT", metrics_port)
            .env(
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                format!("http://{}", receiver.grpc_address),
            )
            .env("HYPERFLEET_LOG_OUTPUT", "stderr")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let url = format!("http://{push}/");
    // The example listens once telemetry is up; deliveries before that are refused.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while tokio::net::TcpStream::connect(&push).await.is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "the push example did not listen"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    let traces: Vec<String> = (0..6)
        .map(|i| format!("4bf92f3577b34da6a3ce929d0e0e47{i:02x}"))
        .collect();
    for (i, trace) in traces.iter().enumerate() {
        let (status, body) = support::push::post(
            &url,
            &support::push::json_headers(),
            delivery(&format!("c{i}"), trace),
        )
        .await;
        assert_eq!(status, 204, "{body}");
    }
    let garbage = support::push::wrapped_body(
        b"not an event",
        serde_json::json!({}),
        serde_json::json!({}),
    );
    let (status, _) = support::push::post(&url, &support::push::json_headers(), garbage).await;
    assert_eq!(status, 500, "an undecodable delivery is nacked");

    // A scraper that knows only the classic format gets it, and promtool accepts it.
    let (classic, content_type) = support::metrics::scrape_classic(metrics.parse().unwrap()).await;
    assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
    assert!(
        classic.contains("hyperfleet_broker_messages_consumed_total{"),
        "{classic}"
    );
    let mut check = promtool()
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    check
        .stdin
        .take()
        .unwrap()
        .write_all(classic.as_bytes())
        .unwrap();
    let checked = check.wait_with_output().unwrap();
    assert!(
        checked.status.success(),
        "promtool: {}{}\n{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr),
        classic
    );
    // OpenMetrics, with exemplars, to a scraper that asks for it.
    let exposition = support::metrics::scrape(metrics.parse().unwrap()).await;
    assert!(
        !exposition
            .exemplars("hyperfleet_broker_message_duration_seconds")
            .is_empty()
    );

    let prometheus = PrometheusServer::start(&metrics).await;
    for (query, expected) in [
        (
            "sum(hyperfleet_broker_messages_consumed_total{topic=\"hyperfleet-clusters\",component=\"adapter-validation\"})",
            7.0,
        ),
        (
            "sum(hyperfleet_broker_errors_total{error_type=\"conversion\"})",
            1.0,
        ),
        ("sum(hyperfleet_broker_message_duration_seconds_count)", 6.0),
        (
            "sum(messaging_client_consumed_messages_total{messaging_destination_subscription_name=\"validation-push\"})",
            7.0,
        ),
        (
            "sum(messaging_process_duration_seconds_count{messaging_operation_name=\"process\"})",
            6.0,
        ),
    ] {
        assert_eq!(
            prometheus.wait_for_value(query, expected).await,
            Some(expected),
            "{query}"
        );
    }
    let stored: BTreeSet<String> = prometheus
        .exemplar_trace_ids("hyperfleet_broker_message_duration_seconds_bucket")
        .await
        .into_iter()
        .collect();
    assert!(!stored.is_empty(), "Prometheus stored no exemplar");

    let logs = example.interrupt_and_wait();
    let exported: BTreeSet<String> = receiver
        .wait_for(12, std::time::Duration::from_secs(10))
        .await
        .iter()
        .map(|s| s.trace_id())
        .collect();
    for trace in &stored {
        assert!(traces.contains(trace), "{trace} is no delivered trace");
        assert!(
            exported.contains(trace),
            "{trace} was not exported; logs:\n{logs}"
        );
    }
}
