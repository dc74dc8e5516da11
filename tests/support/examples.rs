//! The example binaries `cargo test` builds next to the test binaries.

use std::path::PathBuf;

/// Path of example `name`; fails with a hint when it was not built.
pub fn binary(name: &str) -> PathBuf {
    let deps = std::env::current_exe().expect("the test binary's path");
    let path = deps
        .parent()
        .and_then(|d| d.parent())
        .expect("target/<profile>/deps")
        .join("examples")
        .join(name);
    assert!(
        path.exists(),
        "{} missing: run through `cargo test --all-features`",
        path.display()
    );
    path
}

/// Checks that the `count` events the `publish` example printed (`message_id traceparent`
/// lines) are exactly those whose "handled event" log lines name their trace, each under
/// `subscription`.
pub fn assert_each_published_trace_handled(
    published: &str,
    logs: &str,
    subscription: &str,
    count: usize,
) {
    let mut published_traces: Vec<String> = published
        .lines()
        .filter_map(|line| line.split_once(' '))
        .map(|(_, traceparent)| traceparent[3..35].to_owned())
        .collect();
    let mut handled_traces: Vec<String> = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|l| l["message"] == "handled event")
        .map(|l| {
            assert_eq!(l["subscription"], subscription, "{l}");
            l["trace_id"].as_str().unwrap().to_owned()
        })
        .collect();
    published_traces.sort();
    handled_traces.sort();
    assert_eq!(published_traces.len(), count, "{published}");
    assert_eq!(handled_traces, published_traces, "logs:\n{logs}");
}
