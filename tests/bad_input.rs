//! Bad input through the whole receive path: every message is either handled or nacked until the
//! dead-letter policy takes it — never a panic, never a lost message — and bad trace context
//! only costs the parent, never the message.

mod support;

use cloudevents::{AttributesReader, AttributesWriter, Event};
use hyperfleet_tracing::Settings;
use hyperfleet_tracing::TracedSubscriber;
use hyperfleet_tracing::binding::{Encoding, decode, encode};
use hyperfleet_tracing::testing::TestTelemetry;
use hyperfleet_tracing::testing::spans::{attribute_str, is_root, named};
use hyperfleet_tracing::transport::memory::{DEAD_LETTER_SOURCE_DELIVERY_COUNT, MemoryTransport};
use hyperfleet_tracing::transport::{DeadLetterPolicy, Message, SubscriptionConfig, Transport};
use hyperfleet_tracing::{HandlerError, Received};
use opentelemetry::Value;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use tracing::instrument::WithSubscriber;

const TOPIC: &str = "hyperfleet-clusters";
const SUBSCRIPTION: &str = "validation";
const DEAD_LETTERS: &str = "validation-dlq";
/// Most bytes of one attribute value on a span.
const ATTRIBUTE_LIMIT: usize = 256;
/// Marks event data that must never reach a span.
const PAYLOAD: &str = "PAYLOAD-MUST-NOT-LEAK";

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_ID: &str = "00f067aa0ba902b7";

fn traceparent() -> String {
    format!("00-{TRACE_ID}-{PARENT_ID}-01")
}

fn event(id: &str) -> Event {
    support::events::reconcile_event(id)
}

fn with_extension(id: &str, name: &str, value: &str) -> Event {
    let mut event = event(id);
    event.set_extension(name, value);
    event
}

/// Messages that are no CloudEvent at all, by name.
fn undecodable() -> Vec<(&'static str, Message)> {
    let structured = "application/cloudevents+json; charset=UTF-8";
    vec![
        (
            "invalid UTF-8 in a structured body",
            Message::new(vec![b'{', 0xff, 0xfe, b'}']).with_attribute("content-type", structured),
        ),
        (
            "invalid UTF-8 inside a JSON string",
            Message::new(
                [
                    &br#"{"specversion":"1.0","id":""#[..],
                    &[0xc3, 0x28],
                    &br#"","source":"s","type":"t"}"#[..],
                ]
                .concat(),
            )
            .with_attribute("content-type", structured),
        ),
        (
            "binary garbage without attributes",
            Message::new((0..=255u8).cycle().take(64 * 1024).collect::<Vec<_>>()),
        ),
        (
            "binary mode without the required attributes",
            Message::new("{}").with_attribute("ce-specversion", "1.0"),
        ),
        (
            "a structured body nested ten thousand levels deep",
            Message::new("[".repeat(10_000)).with_attribute("content-type", structured),
        ),
        (
            "a spec version as long as Pub/Sub allows, in binary mode",
            Message::new("{}").with_attribute("ce-specversion", "9".repeat(1024)),
        ),
        (
            "a structured content type as long as Pub/Sub allows",
            Message::new("{}").with_attribute(
                "content-type",
                format!("application/cloudevents+{}", "x".repeat(1000)),
            ),
        ),
        (
            "a batch content type as long as Pub/Sub allows",
            Message::new("[]").with_attribute(
                "content-type",
                format!("application/cloudevents-batch+json;{}", "x".repeat(980)),
            ),
        ),
        (
            "event data that is not base64, quoted by the parser",
            Message::new(format!(
                r#"{{"specversion":"1.0","id":"1","source":"s","type":"t","data_base64":"{PAYLOAD}!{}"}}"#,
                "x".repeat(1 << 20)
            ))
            .with_attribute("content-type", structured),
        ),
        (
            "event data of the wrong type, quoted by the parser",
            Message::new(format!(
                r#"{{"specversion":"1.0","id":"1","source":"s","type":"t","datacontenttype":"application/json","data_base64":["{PAYLOAD}"]}}"#
            ))
            .with_attribute("content-type", structured),
        ),
        (
            "a structured event with an invalid time",
            Message::new(r#"{"specversion":"1.0","id":"1","source":"s","type":"t","time":"soon"}"#)
                .with_attribute("content-type", structured),
        ),
    ]
}

/// Events whose trace context or attributes are bad, but which are still events, with the
/// parent span id the receive span must end up with (`None`: a new root).
fn decodable() -> Vec<(&'static str, Message, Option<&'static str>)> {
    let members: Vec<String> = (0..33).map(|i| format!("k{i}=v")).collect();
    let long_member = format!("k={}", "v".repeat(600));
    let structured = |event: Event| encode(&event, Encoding::Structured).expect("encodable");
    let binary = |event: Event| encode(&event, Encoding::Binary).expect("encodable");
    let huge = "x".repeat(1 << 20);
    let mut huge_attributes = event("huge-attributes");
    huge_attributes.set_source(huge.clone());
    huge_attributes.set_type(huge.clone());
    huge_attributes.set_subject(Some(huge.clone()));
    let mut huge_tracestate = event("tracestate-33-members");
    huge_tracestate.set_extension("traceparent", traceparent());
    huge_tracestate.set_extension("tracestate", members.join(","));
    let mut long_tracestate = event("tracestate-600-chars");
    long_tracestate.set_extension("traceparent", traceparent());
    long_tracestate.set_extension("tracestate", long_member);
    vec![
        ("tracestate of 33 members", structured(huge_tracestate), Some(PARENT_ID)),
        ("tracestate over 512 characters", binary(long_tracestate), Some(PARENT_ID)),
        (
            "a one-megabyte traceparent",
            structured(with_extension("huge-traceparent", "traceparent", &huge)),
            None,
        ),
        (
            "control characters in traceparent",
            binary(with_extension(
                "control-traceparent",
                "traceparent",
                "00-\u{0}\u{1}\u{7f}-\u{1b}[2J-01",
            )),
            None,
        ),
        (
            "megabyte source, type and subject",
            structured(huge_attributes),
            None,
        ),
        (
            "binary attribute values on the message",
            binary(event("binary-attributes"))
                .with_attribute("googclient_traceparent", "\u{0}\u{ff}\u{fffd}")
                .with_attribute("x-blob", String::from_utf8_lossy(&[0, 159, 146, 150])),
            None,
        ),
        (
            "an extension name with upper case and an underscore, in binary mode",
            binary(event("binary-bad-extension-name"))
                .with_attribute("ce-Trace_Parent", traceparent()),
            None,
        ),
        (
            "an extension name with upper case and an underscore, in a structured body",
            Message::new(format!(
                r#"{{"specversion":"1.0","id":"structured-bad-extension-name","source":"s","type":"t","Trace_Parent":"{}"}}"#,
                traceparent()
            ))
            .with_attribute("content-type", "application/cloudevents+json"),
            None,
        ),
    ]
}

/// The telemetry log layer in its text format, writing to memory.
fn text_logs() -> (tracing::Dispatch, support::capture::Captured) {
    use hyperfleet_tracing::telemetry::{self, Component, Config};
    let captured = support::capture::Captured::default();
    let config = Config::from_lookup("hyperfleet-adapter-validation", |k| match k {
        "HYPERFLEET_LOG_FORMAT" => Some("text".to_owned()),
        "OTEL_TRACES_EXPORTER" => Some("none".to_owned()),
        _ => None,
    })
    .unwrap();
    let (dispatch, _guard) = telemetry::builder(Component::ValidationAdapter)
        .config(config)
        .log_writer(captured.clone())
        .build()
        .unwrap()
        .into_subscriber();
    (dispatch, captured)
}

fn setup() -> (MemoryTransport, TestTelemetry) {
    let transport = MemoryTransport::new();
    transport.create_topic(TOPIC).unwrap();
    transport.create_topic(DEAD_LETTERS).unwrap();
    transport
        .create_subscription(
            SUBSCRIPTION,
            TOPIC,
            SubscriptionConfig::default().dead_letter(DeadLetterPolicy::new(DEAD_LETTERS, 5)),
        )
        .unwrap();
    transport
        .create_subscription("dead-letters", DEAD_LETTERS, SubscriptionConfig::default())
        .unwrap();
    (transport, TestTelemetry::new())
}

/// Completes once the subscription has nothing left: all handled or dead-lettered.
async fn drained(transport: MemoryTransport) {
    while transport.backlog(SUBSCRIPTION).unwrap() > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_message_is_handled_or_dead_lettered_and_none_is_lost() {
    let (transport, telemetry) = setup();
    let bad = undecodable();
    let good = decodable();
    for message in bad
        .iter()
        .map(|(_, m)| m)
        .chain(good.iter().map(|(_, m, _)| m))
    {
        transport.publish(TOPIC, message.clone()).await.unwrap();
    }

    let handled = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&handled);
    let (logs, log_lines) = text_logs();
    TracedSubscriber::new(transport.clone(), SUBSCRIPTION, TOPIC)
        .settings(Settings::new().tracer_provider(&telemetry.provider))
        .concurrency(4)
        .run(
            move |received: Received| {
                seen.lock().unwrap().push(received.event.id().to_owned());
                tracing::info!(source = %received.event.source(), "handled");
                async { Ok::<(), HandlerError>(()) }
            },
            drained(transport.clone()),
        )
        .with_subscriber(logs)
        .await
        .expect("the loop survives bad input");
    // One line per handled event, whatever the event held: nothing forged a line, and the
    // message fields the loop adds (event_id) are bounded.
    let lines = log_lines.lines();
    assert_eq!(lines.len(), handled.lock().unwrap().len(), "{lines:#?}");
    for line in &lines {
        assert!(!line.chars().any(char::is_control), "{line:?}");
        let event_id = line
            .split(" event_id=")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .unwrap_or_else(|| panic!("no event_id in {line}"));
        assert!(event_id.len() <= ATTRIBUTE_LIMIT + 2, "{event_id}");
    }

    // Every event was handled exactly once.
    let mut handled = handled.lock().unwrap().clone();
    handled.sort();
    let mut expected: Vec<String> = good
        .iter()
        .map(|(name, message, _)| {
            decode(message)
                .unwrap_or_else(|e| panic!("{name}: {e}"))
                .id()
                .to_owned()
        })
        .collect();
    expected.sort();
    assert_eq!(handled, expected);

    // Every message that is no event went to the dead-letter topic, intact, after 5 attempts.
    let mut letters = transport.subscribe("dead-letters").await.unwrap();
    let mut dead = BTreeMap::new();
    for _ in 0..bad.len() {
        let letter = futures::StreamExt::next(&mut letters)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            letter.message.attributes[DEAD_LETTER_SOURCE_DELIVERY_COUNT],
            "5"
        );
        dead.insert(letter.message.data.to_vec(), ());
        letter.ack().await.unwrap();
    }
    for (name, message) in &bad {
        assert!(dead.contains_key(&message.data.to_vec()), "{name} was lost");
    }
    assert_eq!(transport.backlog("dead-letters").unwrap(), 0);

    let spans = telemetry.spans();
    // Five recorded failures per undecodable message, each a root receive span.
    let failures: Vec<_> = spans
        .iter()
        .filter(|s| attribute_str(s, "error.type").is_some())
        .collect();
    assert_eq!(failures.len(), bad.len() * 5);
    assert!(failures.iter().all(|s| is_root(s)));

    // Bad trace context costs the parent and nothing else.
    let receives = named(&spans, "hyperfleet-clusters receive");
    for (name, message, parent) in &good {
        let id = decode(message).unwrap().id().to_owned();
        let receive = receives
            .iter()
            .find(|s| attribute_str(s, "cloudevents.event_id").as_deref() == Some(id.as_str()))
            .unwrap_or_else(|| panic!("{name}: no receive span"));
        match parent {
            Some(parent) => {
                assert_eq!(receive.parent_span_id.to_string(), *parent, "{name}");
                assert_eq!(
                    receive.span_context.trace_id().to_string(),
                    TRACE_ID,
                    "{name}"
                );
                assert_eq!(receive.span_context.trace_state().header(), "", "{name}");
            }
            None => assert!(is_root(receive), "{name}: got a parent from bad context"),
        }
    }

    // No text on any span (name, attributes, events, links, status) exceeds the bound,
    // however big the input, and none quotes event data.
    for span in &spans {
        let oversized = hyperfleet_tracing::testing::spans::oversized(span, ATTRIBUTE_LIMIT);
        assert!(oversized.is_empty(), "{oversized:#?}");
        for (place, text) in hyperfleet_tracing::testing::spans::texts(span) {
            assert!(
                !text.contains(PAYLOAD),
                "{}: {place} quotes event data: {text}",
                span.name
            );
        }
    }
    for span in &spans {
        for kv in &span.attributes {
            if let Value::String(s) = &kv.value {
                assert!(
                    s.as_str().len() <= ATTRIBUTE_LIMIT,
                    "{} on {} has {} bytes",
                    kv.key,
                    span.name,
                    s.as_str().len()
                );
            }
        }
    }
}

/// Whatever decodes can be forwarded: a decoded event encodes again in either mode.
#[test]
fn every_event_that_decodes_encodes_again() {
    for (name, message, _) in decodable() {
        let event = decode(&message).unwrap_or_else(|e| panic!("{name}: {e}"));
        for encoding in [Encoding::Structured, Encoding::Binary] {
            if let Err(error) = encode(&event, encoding) {
                panic!("{name}: decoded, but cannot be sent on in {encoding:?}: {error}");
            }
        }
    }
}
