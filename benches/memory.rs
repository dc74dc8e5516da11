//! Memory over a long run: 1,000,000 messages through `TracedPublisher` → memory transport →
//! `TracedSubscriber` (8 handlers), every span sampled into a batch processor that drops them.
//! Reports resident memory after a 100,000-message warm-up and at the end (target: grows by
//! less than 10%), and the bytes allocated per message, counted by a wrapping allocator.
//!
//! `cargo bench --bench memory` (`HYPERFLEET_MEMORY_MESSAGES` changes the count)

mod common;

use common::{Discard, event};
use hyperfleet_tracing::subscriber::{HandlerError, Received};
use hyperfleet_tracing::transport::SubscriptionConfig;
use hyperfleet_tracing::transport::memory::MemoryTransport;
use hyperfleet_tracing::{TracedPublisher, TracedSubscriber};
use opentelemetry_sdk::trace::{BatchSpanProcessor, SdkTracerProvider};
use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counts the bytes every allocation asks for.
struct Counting;

static ALLOCATED: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATED.fetch_add(layout.size() as u64, Ordering::Relaxed);
        // SAFETY: the caller's contract is passed on as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATED.fetch_add(new_size as u64, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const WARM_UP: u64 = 100_000;
/// Messages published before waiting for the subscriber to catch up.
const CHUNK: u64 = 10_000;
/// Messages between two resident-memory samples in the report.
const SAMPLE_EVERY: u64 = 100_000;

fn main() {
    // `cargo bench` passes `--bench`; nothing else to parse.
    let total: u64 = std::env::var("HYPERFLEET_MEMORY_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let provider = SdkTracerProvider::builder()
        .with_span_processor(BatchSpanProcessor::builder(Discard).build())
        .build();

    runtime.block_on(async {
        let transport = MemoryTransport::new();
        transport.create_topic("t").expect("topic");
        transport
            .create_subscription("s", "t", SubscriptionConfig::default())
            .expect("subscription");
        let (progress, mut handled) = tokio::sync::watch::channel(0u64);
        let subscriber = TracedSubscriber::new(transport.clone(), "t", "s")
            .tracer_provider(&provider)
            .concurrency(8);
        let mut watch = handled.clone();
        let running = tokio::spawn(subscriber.run(
            move |received: Received| {
                black_box(&received.event);
                progress.send_modify(|n| *n += 1);
                async { Ok::<(), HandlerError>(()) }
            },
            async move {
                let _ = watch.wait_for(|n| *n >= total).await;
            },
        ));
        let publisher = TracedPublisher::new(transport.clone(), "t").tracer_provider(&provider);

        let mut warm = None;
        let mut samples = Vec::new();
        let mut published = 0;
        while published < total {
            let chunk_end = (published + CHUNK).min(total);
            for i in published..chunk_end {
                publisher.publish(event(i)).await.expect("published");
            }
            published = chunk_end;
            let _ = handled.wait_for(|n| *n >= published).await;
            if warm.is_none() && published >= WARM_UP.min(total) {
                warm = Some((
                    published,
                    common::process::resident(),
                    ALLOCATED.load(Ordering::Relaxed),
                ));
            }
            if published % SAMPLE_EVERY == 0 {
                samples.push((published, common::process::resident()));
            }
        }
        running.await.expect("joined").expect("ran");
        let (warm_count, warm_rss, warm_allocated) = warm.expect("warmed up");
        let end_rss = common::process::resident();
        let measured = total - warm_count;
        let allocated = ALLOCATED.load(Ordering::Relaxed) - warm_allocated;
        let growth = (end_rss as f64 - warm_rss as f64) / warm_rss as f64 * 100.0;
        println!("messages: {total} (warm-up {warm_count})");
        println!(
            "resident after warm-up: {:.1} MiB",
            warm_rss as f64 / 1048576.0
        );
        println!(
            "resident at the end:    {:.1} MiB",
            end_rss as f64 / 1048576.0
        );
        println!(
            "growth: {growth:+.1}% (target < 10%: {})",
            if growth < 10.0 { "met" } else { "MISSED" }
        );
        let line: Vec<String> = samples
            .iter()
            .map(|(n, rss)| format!("{}k: {:.1}", n / 1000, *rss as f64 / 1048576.0))
            .collect();
        println!("resident (MiB) along the run: {}", line.join(", "));
        println!(
            "allocated per message: {} bytes",
            allocated / measured.max(1)
        );
    });
}
