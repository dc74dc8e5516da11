//! Memory over a long run: 1,000,000 messages through `TracedPublisher` → memory transport →
//! `TracedSubscriber` (8 handlers), every span sampled into a batch processor that drops them.
//! Reports resident memory after a 100,000-message warm-up and at the end (target: grows by
//! less than 10%), and the bytes allocated per message, counted by a wrapping allocator.
//!
//! `cargo bench --bench memory` (`HYPERFLEET_MEMORY_MESSAGES` changes the count)

mod common;

use common::{Discard, event, transport};
use hyperfleet_tracing::Settings;
use hyperfleet_tracing::settings::TracerSource;
use hyperfleet_tracing::settings::UnsampledParent;
use hyperfleet_tracing::{HandlerError, Received};
use hyperfleet_tracing::{TracedPublisher, TracedSubscriber};
use opentelemetry_sdk::trace::{BatchSpanProcessor, Sampler, SdkTracerProvider};
use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counts the bytes every allocation asks for, and those given back.
struct Counting;

static ALLOCATED: AtomicU64 = AtomicU64::new(0);
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static FREED: AtomicU64 = AtomicU64::new(0);

/// Bytes allocated and not yet freed: what the program holds, whatever the allocator keeps.
fn live() -> u64 {
    ALLOCATED.load(Ordering::Relaxed) - FREED.load(Ordering::Relaxed)
}

// SAFETY: forwards to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATED.fetch_add(layout.size() as u64, Ordering::Relaxed);
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract is passed on as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        FREED.fetch_add(layout.size() as u64, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATED.fetch_add(new_size as u64, Ordering::Relaxed);
        FREED.fetch_add(layout.size() as u64, Ordering::Relaxed);
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
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

/// Messages of each allocation-profile run.
const PROFILE_MESSAGES: u64 = 20_000;

/// Allocations and bytes per message through the traced publisher and subscriber (concurrency
/// 1, one thread) with `provider` and `unsampled`, after a short warm-up.
fn allocation_profile(provider: &impl TracerSource, unsampled: UnsampledParent) -> (u64, u64) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let transport = transport();
        let publisher = TracedPublisher::new(transport.clone(), "t").settings(
            Settings::new()
                .tracer_provider(provider)
                .unsampled_parent(unsampled),
        );
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
        let subscriber = TracedSubscriber::new(transport, "s", "t")
            .settings(
                Settings::new()
                    .tracer_provider(provider)
                    .unsampled_parent(unsampled),
            )
            .concurrency(1);
        let warm_up = PROFILE_MESSAGES / 10;
        let counted = async {
            for i in 0..warm_up {
                publisher.publish(event(i)).await.expect("published");
                rx.recv().await;
            }
            let (count, bytes) = (
                ALLOCATIONS.load(Ordering::Relaxed),
                ALLOCATED.load(Ordering::Relaxed),
            );
            for i in 0..PROFILE_MESSAGES {
                publisher.publish(event(i)).await.expect("published");
                rx.recv().await;
            }
            (
                (ALLOCATIONS.load(Ordering::Relaxed) - count) / PROFILE_MESSAGES,
                (ALLOCATED.load(Ordering::Relaxed) - bytes) / PROFILE_MESSAGES,
            )
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let run = subscriber.run(
            move |received: Received| {
                black_box(&received.event);
                let _ = tx.send(());
                async { Ok::<(), HandlerError>(()) }
            },
            async move {
                let _ = stopped.await;
            },
        );
        let (profile, ran) = tokio::join!(
            async {
                let profile = counted.await;
                let _ = stop.send(());
                profile
            },
            run
        );
        ran.expect("ran");
        profile
    })
}

fn main() {
    let off = opentelemetry::trace::noop::NoopTracerProvider::new();
    let sampled = SdkTracerProvider::builder()
        .with_span_processor(BatchSpanProcessor::builder(Discard).build())
        .build();
    let unsampled = SdkTracerProvider::builder()
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
            0.01,
        ))))
        .with_span_processor(BatchSpanProcessor::builder(Discard).build())
        .build();
    println!("per message (publish, receive, handle, ack; {PROFILE_MESSAGES} messages):");
    let ask = UnsampledParent::AskSampler;
    let (base_count, base_bytes) = allocation_profile(&off, ask);
    println!("  tracing off (no-op provider): {base_count} allocations, {base_bytes} bytes");
    for (name, provider, parents) in [
        ("sampled", &sampled, ask),
        ("unsampled (ratio 0.01)", &unsampled, ask),
        (
            "unsampled (ratio 0.01), unsampled parents followed",
            &unsampled,
            UnsampledParent::Follow,
        ),
    ] {
        let (count, bytes) = allocation_profile(provider, parents);
        println!(
            "  traced, {name}: {count} allocations (+{}), {bytes} bytes (+{})",
            count.saturating_sub(base_count),
            bytes.saturating_sub(base_bytes)
        );
    }

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
        let transport = transport();
        let (progress, mut handled) = tokio::sync::watch::channel(0u64);
        let subscriber = TracedSubscriber::new(transport.clone(), "s", "t")
            .settings(Settings::new().tracer_provider(&provider))
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
        let publisher = TracedPublisher::new(transport.clone(), "t")
            .settings(Settings::new().tracer_provider(&provider));

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
                    live(),
                ));
            }
            if published % SAMPLE_EVERY == 0 {
                samples.push((published, common::process::resident(), live()));
            }
        }
        running.await.expect("joined").expect("ran");
        let (warm_count, warm_rss, warm_allocated, warm_live) = warm.expect("warmed up");
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
        let mib = |bytes: u64| bytes as f64 / 1048576.0;
        println!(
            "live heap (allocated, not freed): {:.1} MiB after warm-up, {:.1} MiB at the end",
            mib(warm_live),
            mib(live())
        );
        let line: Vec<String> = samples
            .iter()
            .map(|(n, rss, live)| format!("{}k: {:.1} / {:.1}", n / 1000, mib(*rss), mib(*live)))
            .collect();
        println!(
            "resident / live heap (MiB) along the run: {}",
            line.join(", ")
        );
        println!(
            "allocated per message: {} bytes",
            allocated / measured.max(1)
        );
    });
}
