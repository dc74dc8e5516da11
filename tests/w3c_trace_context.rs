//! W3C Trace Context (Level 2), rule by rule, on both carriers: HTTP headers through a
//! W3C-style test service (the crate's server glue in, its client glue out), and CloudEvent
//! extensions through the subscriber (its handler publishing on). Each case is what the W3C
//! validation suite sends, and what the service must send on.

mod support;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::post;
use cloudevents::event::ExtensionValue;
use cloudevents::{AttributesReader, Event};
use hyperfleet_tracing::Settings;
use hyperfleet_tracing::binding::{Encoding, decode, encode};
use hyperfleet_tracing::testing::TestTelemetry;
use hyperfleet_tracing::transport::memory::MemoryTransport;
use hyperfleet_tracing::transport::{SubscriptionConfig, Transport};
use hyperfleet_tracing::{HandlerError, Received, TracedPublisher, TracedSubscriber};
use opentelemetry_sdk::trace::Sampler;
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};

const TRACE_ID: &str = "12345678901234567890123456789012";
const TP: &str = "00-12345678901234567890123456789012-1234567890123456-01";
const TP_UNSAMPLED: &str = "00-12345678901234567890123456789012-1234567890123456-00";

/// What the service must send on.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Trace {
    /// The received trace, under a new parent id.
    Continued,
    /// A new trace: no trace id that appears in what was received.
    New,
}

#[derive(Debug, Clone)]
struct Case {
    name: String,
    fields: Vec<(String, String)>,
    trace: Trace,
    tracestate: String,
    random: bool,
    /// Outgoing calls the service makes; each must have its own parent id.
    calls: usize,
    /// Why the event carrier cannot express this case.
    http_only: Option<&'static str>,
}

fn case(name: &str, fields: &[(&str, &str)], trace: Trace, tracestate: &str) -> Case {
    Case {
        name: name.to_owned(),
        fields: fields
            .iter()
            .map(|&(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        trace,
        tracestate: tracestate.to_owned(),
        random: false,
        calls: 1,
        http_only: None,
    }
}

impl Case {
    fn http_only(mut self, reason: &'static str) -> Self {
        self.http_only = Some(reason);
        self
    }
    fn random(mut self) -> Self {
        self.random = true;
        self
    }
    fn calls(mut self, calls: usize) -> Self {
        self.calls = calls;
        self
    }
}

const ONE_EXTENSION: &str = "an event has one extension per name";
const LOWER_CASE: &str = "CloudEvents extension names are lower-case";
const NOT_A_NAME: &str = "not a CloudEvents extension name: the binding refuses to write it";

fn tp_cases() -> Vec<Case> {
    use Trace::*;
    let mut cases = vec![
        case("both missing", &[], New, ""),
        case(
            "traceparent, no tracestate",
            &[("traceparent", TP)],
            Continued,
            "",
        ),
        case(
            "traceparent duplicated",
            &[
                (
                    "traceparent",
                    "00-12345678901234567890123456789011-1234567890123456-01",
                ),
                ("traceparent", TP),
            ],
            New,
            "",
        )
        .http_only(ONE_EXTENSION),
        case("wrong name trace-parent", &[("trace-parent", TP)], New, "").http_only(NOT_A_NAME),
        case("wrong name trace.parent", &[("trace.parent", TP)], New, "").http_only(NOT_A_NAME),
    ];
    for name in ["TraceParent", "TrAcEpArEnT", "TRACEPARENT"] {
        cases.push(
            case(&format!("name casing {name}"), &[(name, TP)], Continued, "")
                .http_only(LOWER_CASE),
        );
    }
    let new_trace = [
        ("version 00 trailing dot", format!("{TP}.")),
        (
            "version 00 extra field",
            format!("{TP}-what-the-future-will-be-like"),
        ),
        (
            "version cc glued field",
            format!("cc{}.what-the-future-will-be-like", &TP[2..]),
        ),
        ("version ff", format!("ff{}", &TP[2..])),
        ("version .0", format!(".0{}", &TP[2..])),
        ("version 0.", format!("0.{}", &TP[2..])),
        ("version 000", format!("000{}", &TP[2..])),
        ("version 0000", format!("0000{}", &TP[2..])),
        ("version 0", format!("0{}", &TP[2..])),
        (
            "trace id zero",
            "00-00000000000000000000000000000000-1234567890123456-01".into(),
        ),
        (
            "trace id .",
            "00-.2345678901234567890123456789012-1234567890123456-01".into(),
        ),
        (
            "trace id trailing .",
            "00-1234567890123456789012345678901.-1234567890123456-01".into(),
        ),
        (
            "trace id 33",
            "00-123456789012345678901234567890123-1234567890123456-01".into(),
        ),
        (
            "trace id 31",
            "00-1234567890123456789012345678901-1234567890123456-01".into(),
        ),
        (
            "parent id zero",
            "00-12345678901234567890123456789012-0000000000000000-01".into(),
        ),
        (
            "parent id .",
            "00-12345678901234567890123456789012-.234567890123456-01".into(),
        ),
        (
            "parent id trailing .",
            "00-12345678901234567890123456789012-123456789012345.-01".into(),
        ),
        (
            "parent id 17",
            "00-12345678901234567890123456789012-12345678901234567-01".into(),
        ),
        (
            "parent id 15",
            "00-12345678901234567890123456789012-123456789012345-01".into(),
        ),
        (
            "flags .0",
            "00-12345678901234567890123456789012-1234567890123456-.0".into(),
        ),
        (
            "flags 0.",
            "00-12345678901234567890123456789012-1234567890123456-0.".into(),
        ),
        (
            "flags 001",
            "00-12345678901234567890123456789012-1234567890123456-001".into(),
        ),
        (
            "flags 1",
            "00-12345678901234567890123456789012-1234567890123456-1".into(),
        ),
    ];
    for (name, value) in new_trace {
        let mut c = case(name, &[("traceparent", &value)], New, "");
        // Whatever trace the service starts, it must not be one that reads as the input's.
        c.fields.push(("xunrelated".into(), TRACE_ID.into()));
        cases.push(c);
    }
    let upper = "0af7651916cd43dd8448eb211c80319c";
    let mut c = case(
        "upper-case hex",
        &[(
            "traceparent",
            &format!("00-{}-b7ad6b7169203331-01", upper.to_uppercase()),
        )],
        New,
        "",
    );
    c.fields.push(("xunrelated".into(), upper.into()));
    cases.push(c);
    let continued = [
        ("version cc", format!("cc{}", &TP[2..])),
        (
            "version cc extra field",
            format!("cc{}-what-the-future-will-be-like", &TP[2..]),
        ),
        ("leading space", format!(" {TP}")),
        ("leading tab", format!("\t{TP}")),
        ("trailing space", format!("{TP} ")),
        ("trailing tab", format!("{TP}\t")),
        ("both sides", format!("\t {TP} \t")),
    ];
    for (name, value) in continued {
        cases.push(case(name, &[("traceparent", &value)], Continued, ""));
    }
    cases
}

fn ts_cases() -> Vec<Case> {
    use Trace::*;
    let ts = |name: &str, values: &[&str], expected: &str| {
        let mut fields = vec![("traceparent", TP_UNSAMPLED)];
        fields.extend(values.iter().map(|v| ("tracestate", *v)));
        case(name, &fields, Continued, expected)
    };
    let mut cases = vec![
        case(
            "tracestate without traceparent",
            &[("tracestate", "foo=1")],
            New,
            "",
        ),
        case(
            "tracestate without traceparent, two",
            &[("tracestate", "foo=1,bar=2")],
            New,
            "",
        ),
        ts("tracestate inherited", &["foo=1,bar=2"], "foo=1,bar=2"),
        case(
            "wrong name trace-state",
            &[("traceparent", TP_UNSAMPLED), ("trace-state", "foo=1")],
            Continued,
            "",
        )
        .http_only(NOT_A_NAME),
        case(
            "wrong name trace.state",
            &[("traceparent", TP_UNSAMPLED), ("trace.state", "foo=1")],
            Continued,
            "",
        )
        .http_only(NOT_A_NAME),
        ts("empty", &[""], ""),
        ts("empty after", &["foo=1", ""], "foo=1"),
        ts("empty before", &["", "foo=1"], "foo=1"),
        ts(
            "three fields combine in order",
            &["foo=1,bar=2", "rojo=1,congo=2", "baz=3"],
            "foo=1,bar=2,rojo=1,congo=2,baz=3",
        ),
        ts("duplicate same value", &["foo=1,foo=1"], "foo=1"),
        ts("duplicate other value", &["foo=1,foo=2"], "foo=1"),
        ts("duplicate across fields", &["foo=1", "foo=1"], "foo=1"),
        ts(
            "duplicate across fields, other value",
            &["foo=1", "foo=2"],
            "foo=1",
        ),
        ts(
            "whitespace",
            &["foo=1 \t , \t bar=2, \t baz=3"],
            "foo=1,bar=2,baz=3",
        ),
        ts(
            "tabs and spaces",
            &["foo=1\t \t,\t \tbar=2,\t \tbaz=3"],
            "foo=1,bar=2,baz=3",
        ),
        ts("leading space", &[" foo=1"], "foo=1"),
        ts("leading tab", &["\tfoo=1"], "foo=1"),
        ts("trailing space", &["foo=1 "], "foo=1"),
        ts("trailing tab", &["foo=1\t"], "foo=1"),
        ts("both sides", &["\t foo=1 \t"], "foo=1"),
        ts("key with space", &["foo =1"], ""),
        ts("upper-case key", &["FOO=1"], ""),
        ts("key with dot", &["foo.bar=1"], ""),
        ts("key ending in @", &["foo@=1,bar=2"], "foo@=1,bar=2"),
        ts("key starting with @", &["@foo=1,bar=2"], ""),
        ts("key with @@", &["foo@@bar=1,bar=2"], "foo@@bar=1,bar=2"),
        ts(
            "key with two @",
            &["foo@bar@baz=1,bar=2"],
            "foo@bar@baz=1,bar=2",
        ),
        ts("value with =", &["foo=bar=baz"], ""),
        ts("empty value", &["foo=,bar=3"], ""),
    ];
    for name in ["TraceState", "TrAcEsTaTe", "TRACESTATE"] {
        cases.push(
            case(
                &format!("name casing {name}"),
                &[("traceparent", TP_UNSAMPLED), (name, "foo=1")],
                Continued,
                "foo=1",
            )
            .http_only(LOWER_CASE),
        );
    }
    let key_without_vendor = "abcdefghijklmnopqrstuvwxyz0123456789_-*/";
    let key_with_vendor = format!("{key_without_vendor}@a-z0-9_-*/");
    let value: String = (0x20u8..=0x7e)
        .filter(|b| *b != b',' && *b != b'=')
        .map(char::from)
        .collect();
    for key in [key_without_vendor, key_with_vendor.as_str()] {
        let member = format!("{key}={value}");
        cases.push(ts("all allowed characters", &[&member], &member));
    }
    let members: Vec<String> = (1..=33).map(|i| format!("bar{i:02}={i:02}")).collect();
    let fields32: Vec<String> = members[..32].chunks(10).map(|c| c.join(",")).collect();
    let fields32: Vec<&str> = fields32.iter().map(String::as_str).collect();
    cases.push(ts(
        "32 members in 4 fields",
        &fields32,
        &members[..32].join(","),
    ));
    let fields33: Vec<String> = members.chunks(10).map(|c| c.join(",")).collect();
    let fields33: Vec<&str> = fields33.iter().map(String::as_str).collect();
    cases.push(ts("33 members in 4 fields", &fields33, ""));
    for key in [
        "z".repeat(256),
        format!("{}@{}", "t".repeat(241), "v".repeat(14)),
        format!("{}@v", "t".repeat(242)),
        format!("t@{}", "v".repeat(15)),
    ] {
        let member = format!("{key}=1");
        cases.push(ts(
            "long key",
            &["foo=1", &member],
            &format!("foo=1,{member}"),
        ));
    }
    let too_long = format!("{}=1", "z".repeat(257));
    cases.push(ts("257-character key", &["foo=1", &too_long], ""));
    cases
}

fn level2_and_advanced_cases() -> Vec<Case> {
    use Trace::*;
    vec![
        case(
            "random flag",
            &[(
                "traceparent",
                "00-12345678901234567890123456789012-1234567890123456-02",
            )],
            Continued,
            "",
        )
        .random(),
        case(
            "random and sampled",
            &[(
                "traceparent",
                "00-12345678901234567890123456789012-1234567890123456-03",
            )],
            Continued,
            "",
        )
        .random(),
        case(
            "random, unknown flags zeroed",
            &[(
                "traceparent",
                "00-12345678901234567890123456789012-1234567890123456-fe",
            )],
            Continued,
            "",
        )
        .random(),
        case(
            "random with a tracestate the API cannot hold",
            &[
                (
                    "traceparent",
                    "00-12345678901234567890123456789012-1234567890123456-02",
                ),
                ("tracestate", "foo@@bar=1,baz=2"),
            ],
            Continued,
            "foo@@bar=1,baz=2",
        )
        .random(),
        case(
            "three calls, valid traceparent",
            &[("traceparent", TP)],
            Continued,
            "",
        )
        .calls(3),
        case("three calls, no traceparent", &[], New, "").calls(3),
        case(
            "three calls, invalid traceparent",
            &[(
                "traceparent",
                "00-00000000000000000000000000000000-1234567890123456-01",
            )],
            New,
            "",
        )
        .calls(3),
    ]
}

fn cases() -> Vec<Case> {
    let mut all = tp_cases();
    all.extend(ts_cases());
    all.extend(level2_and_advanced_cases());
    for (i, case) in all.iter_mut().enumerate() {
        case.name = format!("{i:02} {}", case.name);
    }
    all
}

/// What the service sent on for one outgoing call.
#[derive(Debug, Clone)]
struct Sent {
    traceparents: Vec<String>,
    tracestate: String,
}

/// Checks one case's outgoing calls; returns what is wrong.
fn check(case: &Case, sent: &[Sent]) -> Result<(), String> {
    if sent.len() != case.calls {
        return Err(format!("{} calls made, {} asked", sent.len(), case.calls));
    }
    let mut parents = HashSet::new();
    for call in sent {
        let [traceparent] = call.traceparents.as_slice() else {
            return Err(format!("traceparent sent {:?}", call.traceparents));
        };
        let fields: Vec<&str> = traceparent.split('-').collect();
        let layout = fields.len() == 4
            && [2, 32, 16, 2].iter().zip(&fields).all(|(len, f)| {
                f.len() == *len
                    && f.bytes()
                        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
            });
        if !layout || fields[0] != "00" {
            return Err(format!("sent {traceparent:?}"));
        }
        let (trace_id, parent_id, flags) = (fields[1], fields[2], fields[3]);
        match case.trace {
            Trace::Continued if trace_id != TRACE_ID => {
                return Err(format!("trace not continued: {traceparent}"));
            }
            Trace::New if case.fields.iter().any(|(_, v)| v.contains(trace_id)) => {
                return Err(format!("trace not new: {traceparent}"));
            }
            _ => {}
        }
        if trace_id.bytes().all(|b| b == b'0')
            || case.fields.iter().any(|(_, v)| v.contains(parent_id))
        {
            return Err(format!("parent id not new: {traceparent}"));
        }
        let flags = u8::from_str_radix(flags, 16).map_err(|e| e.to_string())?;
        if (flags & 0x02 != 0) != case.random || flags & !0x03 != 0 {
            return Err(format!(
                "flags {flags:02x}, random expected: {}",
                case.random
            ));
        }
        if call.tracestate != case.tracestate {
            return Err(format!(
                "tracestate {:?}, expected {:?}",
                call.tracestate, case.tracestate
            ));
        }
        parents.insert(parent_id.to_owned());
    }
    if parents.len() != sent.len() {
        return Err(format!("parent ids repeat: {parents:?}"));
    }
    Ok(())
}

fn report(carrier: &str, failures: Vec<String>, checked: usize) {
    assert!(checked > 70, "only {checked} cases checked");
    assert!(
        failures.is_empty(),
        "{carrier}: {} of {checked} cases fail:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The production default: the sampler follows the caller, so unsampled cases make no spans.
fn telemetry() -> TestTelemetry {
    TestTelemetry::with_sampler(Sampler::ParentBased(Box::new(Sampler::AlwaysOn)))
}

type Callbacks = Arc<Mutex<BTreeMap<(usize, usize), Sent>>>;

/// The harness side: records each callback's trace-context headers.
async fn harness() -> (String, Callbacks) {
    let callbacks: Callbacks = Arc::default();
    let app = Router::new()
        .route(
            "/callback/{case}/{call}",
            post(
                |State(callbacks): State<Callbacks>,
                 Path((case, call)): Path<(usize, usize)>,
                 headers: HeaderMap| async move {
                    let values = |name: &str| -> Vec<String> {
                        headers
                            .get_all(name)
                            .iter()
                            .map(|v| v.to_str().unwrap_or("<not text>").to_owned())
                            .collect()
                    };
                    let sent = Sent {
                        traceparents: values("traceparent"),
                        tracestate: values("tracestate").join(","),
                    };
                    callbacks.lock().unwrap().insert((case, call), sent);
                },
            ),
        )
        .with_state(callbacks.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{address}"), callbacks)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_headers_follow_every_rule() {
    let telemetry = telemetry();
    let service = support::trace_context_service::serve(&telemetry.provider).await;
    let (harness, callbacks) = harness().await;
    let client = reqwest::Client::new();
    let cases = cases();
    for (i, case) in cases.iter().enumerate() {
        let instructions: Vec<serde_json::Value> = (0..case.calls)
            .map(|call| serde_json::json!({"url": format!("{harness}/callback/{i}/{call}"), "arguments": []}))
            .collect();
        let mut request = client
            .post(format!("http://{service}/test"))
            .header("content-type", "application/json")
            .body(serde_json::Value::from(instructions).to_string());
        for (name, value) in &case.fields {
            request = request.header(name.as_str(), value.as_str());
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200, "{}", case.name);
    }
    let callbacks = callbacks.lock().unwrap().clone();
    let failures: Vec<String> = cases
        .iter()
        .enumerate()
        .filter_map(|(i, case)| {
            let sent: Vec<Sent> = callbacks
                .range((i, 0)..(i + 1, 0))
                .map(|(_, s)| s.clone())
                .collect();
            check(case, &sent)
                .err()
                .map(|e| format!("{}: {e}", case.name))
        })
        .collect();
    report("HTTP", failures, cases.len());
}

/// The case as an event: each field an extension (repeated ones combined, as a sender that
/// joins repeated headers would).
fn event_of(i: usize, case: &Case) -> Event {
    let mut event = support::events::reconcile_event(&format!("case-{i}"));
    let mut extensions: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (name, value) in &case.fields {
        extensions.entry(name).or_default().push(value);
    }
    for (name, values) in extensions {
        event.set_extension(name, values.join(","));
    }
    event
}

fn string_extension(event: &Event, name: &str) -> Option<String> {
    match event.extension(name)? {
        ExtensionValue::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_extensions_follow_every_rule() {
    let telemetry = telemetry();
    let transport = MemoryTransport::new();
    for (topic, subscription) in [("in", "in-sub"), ("out", "out-sub")] {
        transport.create_topic(topic).unwrap();
        transport
            .create_subscription(subscription, topic, SubscriptionConfig::default())
            .unwrap();
    }
    let cases: Vec<(usize, Case)> = cases()
        .into_iter()
        .enumerate()
        .filter(|(_, c)| c.http_only.is_none())
        .collect();
    for encoding in [Encoding::Structured, Encoding::Binary] {
        for (i, case) in &cases {
            transport
                .publish("in", encode(&event_of(*i, case), encoding).unwrap())
                .await
                .unwrap();
        }
    }
    let calls: BTreeMap<String, usize> = cases
        .iter()
        .map(|(i, c)| (format!("case-{i}"), c.calls))
        .collect();
    let publisher = Arc::new(
        TracedPublisher::new(transport.clone(), "out")
            .settings(Settings::new().tracer_provider(&telemetry.provider)),
    );
    let (done, mut all_done) = tokio::sync::mpsc::unbounded_channel();
    let expected = 2 * cases.len();
    TracedSubscriber::new(transport.clone(), "in-sub", "in")
        .settings(Settings::new().tracer_provider(&telemetry.provider))
        .run(
            move |received: Received| {
                let publisher = Arc::clone(&publisher);
                let done = done.clone();
                let id = received.event.id().to_owned();
                let calls = calls[&id];
                async move {
                    for call in 0..calls {
                        let out = support::events::reconcile_event(&format!("{id}/{call}"));
                        publisher.publish(out).await?;
                    }
                    let _ = done.send(());
                    Ok::<(), HandlerError>(())
                }
            },
            async move {
                for _ in 0..expected {
                    all_done.recv().await;
                }
            },
        )
        .await
        .unwrap();

    let mut out = transport.subscribe("out-sub").await.unwrap();
    let mut sent: BTreeMap<usize, Vec<Sent>> = BTreeMap::new();
    let total: usize = 2 * cases.iter().map(|(_, c)| c.calls).sum::<usize>();
    for _ in 0..total {
        let delivery = futures::StreamExt::next(&mut out).await.unwrap().unwrap();
        let event = decode(&delivery.message).unwrap();
        let case: usize = event.id()["case-".len()..]
            .split('/')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        sent.entry(case).or_default().push(Sent {
            traceparents: string_extension(&event, "traceparent")
                .into_iter()
                .collect(),
            tracestate: string_extension(&event, "tracestate").unwrap_or_default(),
        });
        delivery.ack().await.unwrap();
    }
    let failures: Vec<String> = cases
        .iter()
        .flat_map(|(i, case)| {
            let sent = sent.get(i).cloned().unwrap_or_default();
            // Each case went in twice (structured, binary): check each half.
            let (first, second) = sent.split_at(sent.len() / 2);
            [first.to_vec(), second.to_vec()]
                .into_iter()
                .filter_map(|half| {
                    check(case, &half)
                        .err()
                        .map(|e| format!("{}: {e}", case.name))
                })
                .collect::<Vec<_>>()
        })
        .collect();
    report("events", failures, cases.len());
}
