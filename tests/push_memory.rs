//! The push endpoint's memory budget under the largest requests Pub/Sub sends, as many at once
//! as its concurrency admits: the `push` example, with its default settings, in a process of
//! its own whose peak resident memory is read from the kernel.

mod support;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The `push` example serving on `port`, telemetry off so that only the endpoint is measured.
fn serve(port: u16) -> Child {
    Command::new(support::examples::binary("push"))
        .env("HYPERFLEET_PUSH_ADDR", format!("127.0.0.1:{port}"))
        .env("OTEL_TRACES_EXPORTER", "none")
        .env("OTEL_METRICS_EXPORTER", "none")
        .env("HYPERFLEET_LOG_LEVEL", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the push example starts")
}

/// The peak resident memory of process `pid` so far, in bytes.
fn peak_resident(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM");
    kib * 1024
}

/// A wrapped push delivery of a structured CloudEvent whose message is Pub/Sub's largest:
/// 10 MB of data, base64-encoded in the body.
fn largest_delivery() -> Vec<u8> {
    let blob = "a".repeat(9_999_700);
    let event = serde_json::json!({
        "specversion": "1.0", "id": "largest", "source": "hyperfleet-sentinel",
        "type": "com.redhat.hyperfleet.cluster.reconcile",
        "datacontenttype": "application/json", "data": { "blob": blob },
    })
    .to_string();
    assert!(event.len() <= 10_000_000);
    support::push::wrapped_body(
        event.as_bytes(),
        serde_json::json!({}),
        serde_json::json!({}),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_largest_deliveries_at_once_stay_within_an_instances_memory() {
    let port = support::free_port();
    let mut child = serve(port);
    let url = format!("http://127.0.0.1:{port}/");
    let client = reqwest::Client::new();
    let started = std::time::Instant::now();
    while client.get(&url).send().await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the example did not serve"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let idle = peak_resident(child.id());

    // As many at once as the endpoint's concurrency (64) admits, each of the largest size.
    let body = bytes::Bytes::from(largest_delivery());
    let requests = (0..64).map(|_| {
        let (client, url, body) = (client.clone(), url.clone(), body.clone());
        tokio::spawn(async move {
            let sent = client
                .post(url)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await;
            match sent {
                Ok(response) => response.status().as_u16(),
                // Refused before its body was read: the endpoint answered 429 and closed the
                // connection while the body was still being written (Pub/Sub nacks both).
                Err(error) if error.is_request() => 429,
                Err(error) => panic!("no answer: {error}"),
            }
        })
    });
    let statuses: Vec<u16> = futures::future::join_all(requests)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let peak = peak_resident(child.id());
    assert!(
        child.try_wait().unwrap().is_none(),
        "the endpoint's process is still running"
    );
    let _ = child.kill();
    let _ = child.wait();

    let handled = statuses.iter().filter(|s| **s == 204).count();
    let refused = statuses.iter().filter(|s| **s == 429).count();
    eprintln!(
        "64 deliveries of {} bytes: {handled} handled, {refused} answered 429; peak resident {} MiB (idle {} MiB)",
        body.len(),
        peak / (1024 * 1024),
        idle / (1024 * 1024)
    );
    assert_eq!(
        handled + refused,
        64,
        "every answer is 204 or 429: {statuses:?}"
    );
    assert!(handled >= 1, "at least one of the largest deliveries fits");
    // A 512 MiB instance keeps most of its memory for the application.
    assert!(
        peak < 256 * 1024 * 1024,
        "peak resident {} MiB under the largest deliveries",
        peak / (1024 * 1024)
    );
}
