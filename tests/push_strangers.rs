//! The push endpoint under callers that name a new subscription in every request: what they
//! choose cannot grow the process's memory, the span names it exports or the pipelines it
//! builds, and every well-formed delivery is still handled.

mod support;

use hyperfleet_tracing::push::PushEndpoint;
use hyperfleet_tracing::settings::Conventions;
use hyperfleet_tracing::testing::TestTelemetry;
use hyperfleet_tracing::{HandlerError, Received, Settings};
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use support::push::{json_headers, serve, wrapped_body};

/// The system allocator, counting the bytes live.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const TOPIC: &str = "hyperfleet-clusters";

/// A wrapped push delivery of a reconcile event that names subscription `name`.
fn delivery_naming(name: &str) -> Vec<u8> {
    let event = serde_json::json!({
        "specversion": "1.0", "id": "e-1", "source": "hyperfleet-sentinel",
        "type": "com.redhat.hyperfleet.cluster.reconcile",
    });
    wrapped_body(
        event.to_string().as_bytes(),
        serde_json::json!({}),
        serde_json::json!({ "subscription": format!("projects/p/subscriptions/{name}") }),
    )
}

/// POSTs `body` on `client`'s kept-alive connection; the status.
async fn post(client: &reqwest::Client, url: &str, body: Vec<u8>) -> u16 {
    let mut request = client.post(url).body(body);
    for (name, value) in json_headers() {
        request = request.header(name, value);
    }
    request.send().await.unwrap().status().as_u16()
}

/// What a counting handler saw: its calls, and the subscriptions it was told (the first 1,000).
#[derive(Clone, Default)]
struct Seen {
    calls: Arc<AtomicUsize>,
    subscriptions: Arc<Mutex<BTreeSet<String>>>,
}

/// A handler that counts its calls into `seen` and succeeds.
fn counting(
    seen: &Seen,
) -> impl Fn(Received) -> std::future::Ready<Result<(), HandlerError>> + Send + Sync + 'static {
    let seen = seen.clone();
    move |received: Received| {
        seen.calls.fetch_add(1, Ordering::SeqCst);
        let mut told = seen.subscriptions.lock().unwrap();
        if told.len() < 1000 {
            told.insert(received.subscription);
        }
        std::future::ready(Ok::<(), HandlerError>(()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_subscription_in_every_request_costs_no_memory_that_stays() {
    // The current conventions name spans after the subscription: the case where every
    // request's name could become a span name.
    let provider = SdkTracerProvider::builder()
        .with_sampler(Sampler::AlwaysOff)
        .build();
    let settings = Settings::new()
        .tracer_provider(&provider)
        .conventions(Conventions::Messaging);
    let endpoint = PushEndpoint::new("default-push", TOPIC).settings(settings);
    let seen = Seen::default();
    let served = serve(endpoint, counting(&seen)).await;
    let client = reqwest::Client::new();

    let (warm_up, total) = (2_000, 20_000);
    for i in 0..warm_up {
        assert_eq!(
            post(&client, &served.url, delivery_naming(&format!("s-{i}"))).await,
            204
        );
    }
    let before = LIVE.load(Ordering::Relaxed);
    // CPU time (this process: client and endpoint) per request, over the first and the last
    // 2,000 requests: a cost that grew with the names seen would show between the two.
    let window = 2_000;
    let mut cpu = Vec::new();
    let mut started = support::process::process_cpu_time();
    for i in warm_up..total {
        assert_eq!(
            post(&client, &served.url, delivery_naming(&format!("s-{i}"))).await,
            204
        );
        let done = i + 1 - warm_up;
        if done == window || done == total - warm_up {
            cpu.push((support::process::process_cpu_time() - started) / window as u32);
        }
        if done == total - warm_up - window {
            started = support::process::process_cpu_time();
        }
    }
    let grown = LIVE.load(Ordering::Relaxed) - before;
    let (first, last) = (cpu[0], cpu[1]);
    eprintln!(
        "{} requests each naming a new subscription: the live heap grew by {grown} bytes; \
         CPU per request {first:?} over the first {window}, {last:?} over the last {window}",
        total - warm_up
    );
    // A loose bound: growth with the names seen (a scan, a rebuilt pipeline) would be many
    // times over 16,000 names; noise is well within it.
    assert!(
        last < first * 3,
        "CPU per request grew from {first:?} to {last:?} as names were seen"
    );

    assert_eq!(
        seen.calls.load(Ordering::SeqCst),
        total,
        "every delivery handled"
    );
    // 18,000 requests that each named a new subscription: a few bytes kept per name would be
    // megabytes; what is left is the allocator's and the runtime's noise.
    assert!(
        grown < 256 * 1024,
        "the live heap grew by {grown} bytes over {} requests",
        total - warm_up
    );
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn span_names_stay_bounded_and_handlers_see_the_subscription_the_delivery_named() {
    for conventions in [Conventions::HyperFleet, Conventions::Messaging] {
        let telemetry = TestTelemetry::new();
        let settings = Settings::new()
            .tracer_provider(&telemetry.provider)
            .conventions(conventions);
        let endpoint = PushEndpoint::new("default-push", TOPIC).settings(settings);
        let seen = Seen::default();
        let served = serve(endpoint, counting(&seen)).await;
        let client = reqwest::Client::new();
        let requests = 300;
        for i in 0..requests {
            assert_eq!(
                post(&client, &served.url, delivery_naming(&format!("s-{i}"))).await,
                204
            );
        }
        served.stop().await;
        assert_eq!(seen.calls.load(Ordering::SeqCst), requests);
        // Each delivery's handler was told the subscription its delivery named.
        assert_eq!(seen.subscriptions.lock().unwrap().len(), requests);

        let spans = telemetry.spans();
        let distinct: BTreeSet<&str> = spans.iter().map(|s| s.name.as_ref()).collect();
        // At most the 64 subscriptions kept and the one stand-in, with their receive, process
        // and (under the current conventions) settle spans.
        assert!(
            distinct.len() <= 3 * 65,
            "{} distinct span names under {conventions:?}",
            distinct.len()
        );
        // Their receive spans still say which subscription each delivery named (a bounded
        // value, not a name): the stand-in's template leaves that attribute to the delivery.
        let named: BTreeSet<String> = spans
            .iter()
            .filter(|s| {
                support_attribute(s, "messaging.operation.type").as_deref() == Some("receive")
            })
            .filter_map(|s| support_attribute(s, "messaging.destination.subscription.name"))
            .collect();
        let expected: BTreeSet<String> = (0..requests).map(|i| format!("s-{i}")).collect();
        assert_eq!(named, expected);
    }
}

fn support_attribute(span: &opentelemetry_sdk::trace::SpanData, key: &str) -> Option<String> {
    hyperfleet_tracing::testing::spans::attribute_str(span, key).map(|v| v.to_string())
}
