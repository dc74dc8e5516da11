//! `AttributeTiming::WhenRecording`: a root span's sampler, or one under an unsampled parent,
//! sees only the destination's attributes, while a span under a sampled parent is given the
//! message's at start; spans that are not sampled never have their per-message attributes
//! built; exported spans carry exactly what they carry under `AtStart`, whichever way they
//! got them.

mod support;

use hyperfleet_tracing::Settings;
use hyperfleet_tracing::settings::AttributeTiming;
use hyperfleet_tracing::settings::UnsampledParent;
use hyperfleet_tracing::{TracedPublisher, TracedSubscriber};
use opentelemetry::trace::{Link, SpanKind, TraceId};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::{
    InMemorySpanExporter, SamplingDecision, SamplingResult, SdkTracerProvider, ShouldSample,
    SimpleSpanProcessor, SpanData,
};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

const TOPIC: &str = "hyperfleet-clusters";
const SUBSCRIPTION: &str = "validation";

/// Each span's name, and the attribute keys its sampler was given.
type Seen = Vec<(String, Vec<String>)>;

/// Records the attribute keys each span was started with, and drops the spans whose name
/// contains `drop` (every span, when it is empty): a sampler that is not parent-based, so
/// one span of a message may record while another does not.
#[derive(Debug, Clone, Default)]
struct Watching {
    seen: Arc<Mutex<Seen>>,
    drop: &'static str,
}

impl ShouldSample for Watching {
    fn should_sample(
        &self,
        _parent: Option<&Context>,
        _trace_id: TraceId,
        name: &str,
        _kind: &SpanKind,
        attributes: &[KeyValue],
        _links: &[Link],
    ) -> SamplingResult {
        let keys = attributes.iter().map(|kv| kv.key.to_string()).collect();
        self.seen.lock().unwrap().push((name.to_owned(), keys));
        let decision = if name.contains(self.drop) {
            SamplingDecision::Drop
        } else {
            SamplingDecision::RecordAndSample
        };
        SamplingResult {
            decision,
            attributes: Vec::new(),
            trace_state: Default::default(),
        }
    }
}

/// One message published and handled under `timing`, with a sampler dropping the spans whose
/// name contains `drop`; returns the exported spans, what the sampler saw, and how often the
/// publisher's and the subscriber's attribute hooks ran.
async fn one_message(timing: AttributeTiming, drop: &'static str) -> (Vec<SpanData>, Seen, usize) {
    let sampler = Watching {
        drop,
        ..Watching::default()
    };
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_sampler(sampler.clone())
        .with_span_processor(SimpleSpanProcessor::new(exporter.clone()))
        .build();
    let hook_calls = Arc::new(AtomicUsize::new(0));
    let hook = |calls: &Arc<AtomicUsize>| {
        let calls = Arc::clone(calls);
        move |event: &cloudevents::Event| {
            calls.fetch_add(1, Ordering::SeqCst);
            hyperfleet_tracing::attributes::hyperfleet_resource(event)
        }
    };
    let transport = support::memory::with_subscription(TOPIC, SUBSCRIPTION);
    TracedPublisher::new(transport.clone(), TOPIC)
        .settings(
            Settings::new()
                .tracer_provider(&provider)
                .attribute_timing(timing)
                // The sampler decides by name, not by the parent: it is asked every time.
                .unsampled_parent(UnsampledParent::AskSampler)
                .attributes(hook(&hook_calls)),
        )
        .publish_with(
            support::events::reconcile_event("c1"),
            hyperfleet_tracing::PublishOptions::new().ordering_key("cluster-1"),
        )
        .await
        .unwrap();
    let subscriber = TracedSubscriber::new(transport, SUBSCRIPTION, TOPIC).settings(
        Settings::new()
            .tracer_provider(&provider)
            .attribute_timing(timing)
            .unsampled_parent(UnsampledParent::AskSampler)
            .attributes(hook(&hook_calls)),
    );
    support::memory::handle(subscriber, 1, |_| Ok(())).await;
    let spans = exporter.get_finished_spans().unwrap();
    let seen = sampler.seen.lock().unwrap().clone();
    (spans, seen, hook_calls.load(Ordering::SeqCst))
}

/// Each exported span's attributes, by span name.
fn attributes(spans: &[SpanData]) -> BTreeMap<String, BTreeMap<String, String>> {
    spans
        .iter()
        .map(|s| {
            let attributes = s
                .attributes
                .iter()
                .map(|kv| (kv.key.to_string(), kv.value.to_string()))
                .collect();
            (s.name.to_string(), attributes)
        })
        .collect()
}

fn keys_seen_by_sampler(seen: &[(String, Vec<String>)], name: &str) -> Vec<String> {
    seen.iter()
        .find(|(n, _)| n == name)
        .map(|(_, keys)| keys.clone())
        .unwrap_or_else(|| panic!("the sampler never saw {name}: {seen:?}"))
}

const PER_MESSAGE: [&str; 4] = [
    "cloudevents.event_id",
    "hyperfleet.cluster_id",
    "messaging.message.id",
    "messaging.gcp_pubsub.message.ordering_key",
];

#[tokio::test]
async fn exported_spans_carry_the_same_attributes_either_way() {
    let (at_start, _, _) = one_message(AttributeTiming::AtStart, "\u{0}").await;
    let (when_recording, _, _) = one_message(AttributeTiming::WhenRecording, "\u{0}").await;
    let at_start = attributes(&at_start);
    assert_eq!(at_start.len(), 3, "publish, receive, process: {at_start:?}");
    let receive = &at_start["hyperfleet-clusters receive"];
    for key in PER_MESSAGE {
        assert!(
            receive.contains_key(key),
            "receive span lacks {key}: {receive:?}"
        );
    }
    assert_eq!(attributes(&when_recording), at_start);
    // The receive span dropped: the process span records under a parent that does not, and
    // is given the message's attributes once it is known to record.
    let (at_start, _, _) = one_message(AttributeTiming::AtStart, "receive").await;
    let (when_recording, _, _) = one_message(AttributeTiming::WhenRecording, "receive").await;
    assert_eq!(
        attributes(&at_start).len(),
        2,
        "publish, process: {at_start:?}"
    );
    assert_eq!(attributes(&when_recording), attributes(&at_start));
}

/// Whether the sampler of span `name` saw the per-message attributes, or only the
/// destination's.
fn sampler_saw_the_message(seen: &[(String, Vec<String>)], name: &str) -> bool {
    let keys = keys_seen_by_sampler(seen, name);
    for key in ["messaging.system", "messaging.destination.name"] {
        assert!(
            keys.iter().any(|k| k == key),
            "{name} lacks {key}: {keys:?}"
        );
    }
    let has = |key: &str| keys.iter().any(|k| k == key);
    let saw = has("cloudevents.event_id") && has("hyperfleet.cluster_id");
    assert!(
        saw || !PER_MESSAGE.iter().any(|key| has(key)),
        "{name} saw some of the message's attributes only: {keys:?}"
    );
    saw
}

#[tokio::test]
async fn samplers_see_the_message_at_start_only_under_a_sampled_parent_when_attributes_wait() {
    let (_, at_start, _) = one_message(AttributeTiming::AtStart, "\u{0}").await;
    for name in ["hyperfleet-clusters publish", "hyperfleet-clusters receive"] {
        assert!(sampler_saw_the_message(&at_start, name), "{name} at start");
    }
    let (_, all_sampled, _) = one_message(AttributeTiming::WhenRecording, "\u{0}").await;
    // A root span waits; a span under a sampled parent is given them at start.
    assert!(!sampler_saw_the_message(
        &all_sampled,
        "hyperfleet-clusters publish"
    ));
    assert!(sampler_saw_the_message(
        &all_sampled,
        "hyperfleet-clusters receive"
    ));
    let (_, unsampled_parent, _) = one_message(AttributeTiming::WhenRecording, "publish").await;
    assert!(!sampler_saw_the_message(
        &unsampled_parent,
        "hyperfleet-clusters receive"
    ));
}

#[tokio::test]
async fn unsampled_spans_never_build_their_attributes() {
    let (spans, _, calls) = one_message(AttributeTiming::WhenRecording, "").await;
    assert!(spans.is_empty(), "every span was dropped: {spans:?}");
    assert_eq!(calls, 0, "the hooks ran for spans nobody records");
    let (_, _, calls) = one_message(AttributeTiming::AtStart, "").await;
    assert_eq!(
        calls, 2,
        "at start, the publisher's hook and the subscriber's run"
    );
}

#[tokio::test]
async fn a_recording_span_gets_its_attributes_when_its_parent_does_not_record() {
    let (spans, _, _) = one_message(AttributeTiming::WhenRecording, "receive").await;
    let exported = attributes(&spans);
    assert!(!exported.contains_key("hyperfleet-clusters receive"));
    let process = &exported["adapter.process"];
    for key in ["cloudevents.event_id", "hyperfleet.cluster_id"] {
        assert!(
            process.contains_key(key),
            "process span lacks {key}: {process:?}"
        );
    }
}
