//! The message path on the in-memory transport: publish → receive → handle → ack through
//! `TracedPublisher`/`TracedSubscriber`, with tracing sampled, unsampled, and off (a no-op
//! provider: the same path untraced), plus the raw transport loop as the floor, in one run,
//! on the system allocator. Traced runs send spans to a batch processor with an exporter that
//! drops them; "sampled" samples everything, "unsampled" uses the production ratio 0.01; one
//! more sampled run drops the spans on the message path's own thread. The `otlp-*`
//! variants export through the crate's own telemetry set-up to a collector that is down (a
//! closed port) or stalled (accepts, never answers): their latency is compared with "sampled".
//!
//! `cargo bench --bench message_path`

mod common;
#[path = "message_path/runs.rs"]
mod runs;

use criterion::{Criterion, criterion_group, criterion_main};

fn message_path(c: &mut Criterion) {
    runs::message_path(c, "system allocator");
}

criterion_group!(benches, message_path);
criterion_main!(benches);
