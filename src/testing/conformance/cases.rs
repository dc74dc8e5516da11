//! The checks. Each returns `Err` with what it found wrong.

use super::ConformanceTarget;
use super::harness::{Harness, Seen};
use crate::OverwritePolicy;
use crate::attributes::*;
use crate::binding::{self, Encoding};
use crate::publisher::PublishOptions;
use crate::testing::spans::{attribute, attribute_str, children_of, is_root, named, single};
use crate::transport::{DeadLetterPolicy, Message, SubscriptionConfig, Transport};
use cloudevents::event::ExtensionValue;
use cloudevents::{AttributesReader, AttributesWriter, Event, EventBuilder, EventBuilderV10};
use futures::StreamExt;
use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceContextExt, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{Context, Value};
use opentelemetry_sdk::trace::SpanData;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

macro_rules! ensure {
    ($cond:expr, $($why:tt)+) => {
        if !$cond {
            return Err(format!($($why)+));
        }
    };
}

#[derive(Debug, Clone, Copy)]
pub(super) enum Case {
    TraceContinuity,
    TracestateRoundTrip,
    UnsampledParent,
    InvalidTraceparent,
    PreserveExisting,
    OverwriteExisting,
    StructuredEncoding,
    BinaryEncoding,
    FanOut,
    HandlerErrorRedelivery,
    HandlerPanic,
    SpanNamesKindsAttributes,
    OrderingKey,
    NoPayloadInAttributes,
    UndecodableMessage,
    HeldPastAckDeadline,
}

pub(super) const ALL: &[(&str, Case)] = &[
    ("trace_continuity", Case::TraceContinuity),
    ("tracestate_round_trip", Case::TracestateRoundTrip),
    ("unsampled_parent_honoured", Case::UnsampledParent),
    (
        "invalid_traceparent_starts_new_trace",
        Case::InvalidTraceparent,
    ),
    ("preserve_existing_traceparent", Case::PreserveExisting),
    ("overwrite_existing_traceparent", Case::OverwriteExisting),
    ("structured_encoding", Case::StructuredEncoding),
    ("binary_encoding", Case::BinaryEncoding),
    ("fan_out_to_two_subscriptions", Case::FanOut),
    (
        "handler_error_nacks_and_redelivers",
        Case::HandlerErrorRedelivery,
    ),
    ("handler_panic_is_caught", Case::HandlerPanic),
    (
        "span_names_kinds_attributes",
        Case::SpanNamesKindsAttributes,
    ),
    ("ordering_key", Case::OrderingKey),
    ("no_payload_in_attributes", Case::NoPayloadInAttributes),
    ("undecodable_message_is_nacked", Case::UndecodableMessage),
    (
        "held_message_outlives_its_ack_deadline",
        Case::HeldPastAckDeadline,
    ),
];

pub(super) async fn dispatch<T: ConformanceTarget>(case: Case, target: &T) -> Result<(), String> {
    match case {
        Case::TraceContinuity => trace_continuity(target).await,
        Case::TracestateRoundTrip => tracestate_round_trip(target).await,
        Case::UnsampledParent => unsampled_parent(target).await,
        Case::InvalidTraceparent => invalid_traceparent(target).await,
        Case::PreserveExisting => existing_traceparent(target, OverwritePolicy::Preserve).await,
        Case::OverwriteExisting => existing_traceparent(target, OverwritePolicy::Overwrite).await,
        Case::StructuredEncoding => encoding(target, Encoding::Structured).await,
        Case::BinaryEncoding => encoding(target, Encoding::Binary).await,
        Case::FanOut => fan_out(target).await,
        Case::HandlerErrorRedelivery => failing_handler(target, false).await,
        Case::HandlerPanic => failing_handler(target, true).await,
        Case::SpanNamesKindsAttributes => names_kinds_attributes(target).await,
        Case::OrderingKey => ordering_key(target).await,
        Case::NoPayloadInAttributes => no_payload(target).await,
        Case::UndecodableMessage => undecodable(target).await,
        Case::HeldPastAckDeadline => held_past_ack_deadline(target).await,
    }
}

const EXISTING_TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// A HyperFleet cluster reconcile event, as the Sentinel publishes it.
fn reconcile_event(cluster: &str) -> Result<Event, String> {
    EventBuilderV10::new()
        .id(format!("event-{cluster}"))
        .source("hyperfleet-sentinel")
        .ty("com.redhat.hyperfleet.cluster.reconcile")
        .data(
            "application/json",
            serde_json::json!({
                "id": cluster,
                "kind": "Cluster",
                "href": format!("/api/hyperfleet/v1/clusters/{cluster}"),
                "generation": 1,
            }),
        )
        .build()
        .map_err(|e| format!("cannot build the test event: {e}"))
}

fn under(parent: &Context) -> PublishOptions {
    PublishOptions::new().parent(parent.clone())
}

fn root_span_id(cx: &Context) -> SpanId {
    cx.span().span_context().span_id()
}

fn text(event: &Event, name: &str) -> Option<String> {
    match event.extension(name) {
        Some(ExtensionValue::String(s)) => Some(s.clone()),
        _ => None,
    }
}

fn receive_name<T: ConformanceTarget>(h: &Harness<'_, T>) -> String {
    format!("{} receive", h.topic)
}

fn publish_name<T: ConformanceTarget>(h: &Harness<'_, T>) -> String {
    format!("{} publish", h.topic)
}

/// The receive span is the publish span's child, the process span the receive span's, and
/// the handler runs in the process span's context.
fn check_chain(
    spans: &[SpanData],
    publish: &SpanData,
    seen: &Seen,
    receive_name: &str,
) -> Result<(), String> {
    let receives = children_of(spans, publish)
        .into_iter()
        .filter(|s| s.name == receive_name)
        .collect::<Vec<_>>();
    ensure!(
        !receives.is_empty(),
        "no {receive_name:?} span is a child of the publish span"
    );
    let trace_id = publish.span_context.trace_id();
    let process = spans
        .iter()
        .find(|s| s.span_context.span_id() == seen.current.span_id())
        .ok_or("the handler's current context is not an exported span")?;
    ensure!(
        process.name == "adapter.process",
        "the handler ran in {:?}, not adapter.process",
        process.name
    );
    ensure!(
        receives
            .iter()
            .any(|r| r.span_context.span_id() == process.parent_span_id),
        "the process span's parent is not a receive span under the publish span"
    );
    ensure!(
        process.span_context.trace_id() == trace_id,
        "the process span is in another trace"
    );
    ensure!(
        seen.received.context.span().span_context().span_id() == process.span_context.span_id(),
        "Received::context is not the process span"
    );
    Ok(())
}

async fn trace_continuity<T: ConformanceTarget>(target: &T) -> Result<(), String> {
    let h = Harness::new(target, "trace_continuity").await?;
    let sub = h.subscription("a", SubscriptionConfig::default()).await?;
    let root = h.root();
    h.publisher()
        .publish_with(reconcile_event("c1")?, under(&root))
        .await
        .map_err(|e| e.to_string())?;
    let seen = h.consume(h.subscriber(&sub), 1, |_, _| Ok(())).await?;
    let spans = h.spans();
    let publish = single(&spans, &publish_name(&h))?;
    ensure!(
        publish.parent_span_id == root_span_id(&root),
        "the publish span is not a child of the caller's span"
    );
    let receive = single(&spans, &receive_name(&h))?;
    ensure!(
        receive.span_context.trace_id() == root.span().span_context().trace_id(),
        "the receive span is in trace {}, the publisher's is {}",
        receive.span_context.trace_id(),
        root.span().span_context().trace_id()
    );
    check_chain(&spans, publish, &seen[0], &receive_name(&h))
}

async fn tracestate_round_trip<T: ConformanceTarget>(target: &T) -> Result<(), String> {
    let h = Harness::new(target, "tracestate").await?;
    let sub = h.subscription("a", SubscriptionConfig::default()).await?;
    let state = TraceState::from_str("vendor=abc,other=1").map_err(|e| e.to_string())?;
    let parent = Context::new().with_remote_span_context(SpanContext::new(
        TraceId::from(0x0af7_6519_16cd_43dd_8448_eb21_1c80_319c),
        SpanId::from(0xb7ad_6b71_6920_3331),
        TraceFlags::SAMPLED,
        true,
        state,
    ));
    h.publisher()
        .publish_with(reconcile_event("c1")?, under(&parent))
        .await
        .map_err(|e| e.to_string())?;
    let seen = h.consume(h.subscriber(&sub), 1, |_, _| Ok(())).await?;
    let carried = text(&seen[0].received.event, "tracestate");
    ensure!(
        carried.as_deref() == Some("vendor=abc,other=1"),
        "the event carried tracestate {carried:?}"
    );
    let spans = h.spans();
    let receive = single(&spans, &receive_name(&h))?;
    ensure!(
        receive.span_context.trace_state().get("vendor") == Some("abc"),
        "the receive span lost the tracestate: {:?}",
        receive.span_context.trace_state().header()
    );
    ensure!(
        seen[0].current.trace_state().get("other") == Some("1"),
        "the handler's context lost the tracestate"
    );
    Ok(())
}

async fn unsampled_parent<T: ConformanceTarget>(target: &T) -> Result<(), String> {
    let h = Harness::new(target, "unsampled").await?;
    let sub = h.subscription("a", SubscriptionConfig::default()).await?;
    let trace_id = TraceId::from(0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736);
    let parent = Context::new().with_remote_span_context(SpanContext::new(
        trace_id,
        SpanId::from(0x00f0_67aa_0ba9_02b7),
        TraceFlags::default(),
        true,
        TraceState::default(),
    ));
    h.publisher()
        .publish_with(reconcile_event("c1")?, under(&parent))
        .await
        .map_err(|e| e.to_string())?;
    let seen = h.consume(h.subscriber(&sub), 1, |_, _| Ok(())).await?;
    let spans = h.spans();
    ensure!(
        spans.is_empty(),
        "an unsampled trace recorded spans: {:?}",
        spans.iter().map(|s| s.name.as_ref()).collect::<Vec<_>>()
    );
    let traceparent = text(&seen[0].received.event, "traceparent").unwrap_or_default();
    ensure!(
        traceparent.starts_with(&format!("00-{trace_id}-")) && traceparent.ends_with("-00"),
        "the event should carry the unsampled trace on, it carried {traceparent:?}"
    );
    ensure!(
        seen[0].current.trace_id() == trace_id && !seen[0].current.is_sampled(),
        "the handler's context should continue the unsampled trace"
    );
    Ok(())
}

async fn invalid_traceparent<T: ConformanceTarget>(target: &T) -> Result<(), String> {
    let h = Harness::new(target, "invalid_traceparent").await?;
    let sub = h.subscription("a", SubscriptionConfig::default()).await?;
    let variants: Vec<(&str, Option<ExtensionValue>)> = vec![
        ("missing", None),
        ("empty", Some(ExtensionValue::from("".to_owned()))),
        ("integer", Some(ExtensionValue::Integer(1))),
        ("boolean", Some(ExtensionValue::Boolean(true))),
        (
            "garbage",
            Some(ExtensionValue::from("not-a-traceparent".to_owned())),
        ),
        (
            "uppercase",
            Some(ExtensionValue::from(
                "00-0AF7651916CD43DD8448EB211C80319C-B7AD6B7169203331-01".to_owned(),
            )),
        ),
        (
            "zero-trace-id",
            Some(ExtensionValue::from(
                "00-00000000000000000000000000000000-b7ad6b7169203331-01".to_owned(),
            )),
        ),
        (
            "long-span-id",
            Some(ExtensionValue::from(
                "00-0af7651916cd43dd8448eb211c80319c-00ad6b716920333100-01".to_owned(),
            )),
        ),
    ];
    let transport = target.transport();
    for (name, value) in &variants {
        let mut event = reconcile_event(name)?;
        if let Some(value) = value {
            event.set_extension("traceparent", value.clone());
        }
        let message = binding::encode(&event, Encoding::Structured).map_err(|e| e.to_string())?;
        transport
            .publish(&h.topic, message)
            .await
            .map_err(|e| e.to_string())?;
    }
    let seen = h
        .consume(h.subscriber(&sub), variants.len(), |_, _| Ok(()))
        .await?;
    ensure!(
        seen.len() == variants.len(),
        "{} calls for {} messages",
        seen.len(),
        variants.len()
    );
    let spans = h.spans();
    let receives = named(&spans, &receive_name(&h));
    ensure!(
        receives.len() == variants.len(),
        "{} receive spans for {} messages",
        receives.len(),
        variants.len()
    );
    for receive in &receives {
        let id = attribute_str(receive, CLOUDEVENTS_EVENT_ID).unwrap_or_default();
        ensure!(
            is_root(receive),
            "event {id}: the receive span has a parent"
        );
        ensure!(
            !matches!(receive.status, Status::Error { .. }),
            "event {id}: the receive span failed: {:?}",
            receive.status
        );
    }
    let mut traces: Vec<_> = receives.iter().map(|r| r.span_context.trace_id()).collect();
    traces.sort_unstable_by_key(|t| t.to_bytes());
    traces.dedup();
    ensure!(
        traces.len() == variants.len(),
        "the new root traces are not distinct"
    );
    ensure!(
        seen.iter()
            .all(|s| s.received.delivery_attempt.unwrap_or(1) == 1),
        "a message with an invalid traceparent was redelivered"
    );
    Ok(())
}

async fn existing_traceparent<T: ConformanceTarget>(
    target: &T,
    policy: OverwritePolicy,
) -> Result<(), String> {
    let h = Harness::new(target, "existing_traceparent").await?;
    let sub = h.subscription("a", SubscriptionConfig::default()).await?;
    let root = h.root();
    let mut event = reconcile_event("c1")?;
    event.set_extension("traceparent", EXISTING_TRACEPARENT);
    let published = h
        .publisher_builder()
        .overwrite_policy(policy)
        .build()
        .publish_with(event, under(&root))
        .await
        .map_err(|e| e.to_string())?;
    let seen = h.consume(h.subscriber(&sub), 1, |_, _| Ok(())).await?;
    let spans = h.spans();
    let publish = single(&spans, &publish_name(&h))?;
    let receive = single(&spans, &receive_name(&h))?;
    let carried = text(&seen[0].received.event, "traceparent");
    let existing_span = SpanId::from(0x00f0_67aa_0ba9_02b7);
    match policy {
        OverwritePolicy::Preserve => {
            ensure!(
                carried.as_deref() == Some(EXISTING_TRACEPARENT),
                "Preserve rewrote the traceparent to {carried:?}"
            );
            ensure!(
                publish
                    .links
                    .iter()
                    .any(|l| l.span_context.span_id() == existing_span),
                "the publish span does not link to the preserved context"
            );
            ensure!(
                receive.parent_span_id == existing_span
                    && receive.span_context.trace_id().to_string()
                        == "4bf92f3577b34da6a3ce929d0e0e4736",
                "the receive span does not continue the preserved context"
            );
            ensure!(
                published.trace_context.span_id() == existing_span,
                "Published::trace_context is not the preserved context"
            );
        }
        OverwritePolicy::Overwrite => {
            ensure!(
                carried.as_deref() != Some(EXISTING_TRACEPARENT),
                "Overwrite kept the old traceparent"
            );
            ensure!(
                receive.parent_span_id == publish.span_context.span_id(),
                "the receive span is not a child of the publish span"
            );
        }
    }
    Ok(())
}

async fn encoding<T: ConformanceTarget>(target: &T, encoding: Encoding) -> Result<(), String> {
    let h = Harness::new(target, "encoding").await?;
    let sub = h.subscription("a", SubscriptionConfig::default()).await?;
    let root = h.root();
    let event = reconcile_event("c1")?;
    h.publisher_builder()
        .encoding(encoding)
        .build()
        .publish_with(event.clone(), under(&root))
        .await
        .map_err(|e| e.to_string())?;
    let seen = h.consume(h.subscriber(&sub), 1, |_, _| Ok(())).await?;
    let mut received = seen[0].received.event.clone();
    received.remove_extension("traceparent");
    ensure!(
        received == event,
        "{encoding:?}: sent {event:?}, received {received:?}"
    );
    let spans = h.spans();
    let publish = single(&spans, &publish_name(&h))?;
    check_chain(&spans, publish, &seen[0], &receive_name(&h))
}

async fn fan_out<T: ConformanceTarget>(target: &T) -> Result<(), String> {
    let h = Harness::new(target, "fan_out").await?;
    let first = h
        .subscription("validation", SubscriptionConfig::default())
        .await?;
    let second = h
        .subscription("provisioning", SubscriptionConfig::default())
        .await?;
    let root = h.root();
    h.publisher()
        .publish_with(reconcile_event("c1")?, under(&root))
        .await
        .map_err(|e| e.to_string())?;
    let a = h.consume(h.subscriber(&first), 1, |_, _| Ok(())).await?;
    let b = h.consume(h.subscriber(&second), 1, |_, _| Ok(())).await?;
    let spans = h.spans();
    let publish = single(&spans, &publish_name(&h))?;
    let receives = children_of(&spans, publish);
    ensure!(
        receives.len() == 2,
        "{} receive spans under the publish span, expected 2",
        receives.len()
    );
    let mut subscriptions: Vec<_> = receives
        .iter()
        .filter_map(|r| attribute_str(r, MESSAGING_DESTINATION_SUBSCRIPTION_NAME))
        .collect();
    subscriptions.sort();
    let mut expected = vec![first, second];
    expected.sort();
    ensure!(
        subscriptions == expected,
        "receive spans name subscriptions {subscriptions:?}"
    );
    check_chain(&spans, publish, &a[0], &receive_name(&h))?;
    check_chain(&spans, publish, &b[0], &receive_name(&h))
}

async fn failing_handler<T: ConformanceTarget>(target: &T, panic: bool) -> Result<(), String> {
    let h = Harness::new(
        target,
        if panic {
            "handler_panic"
        } else {
            "handler_error"
        },
    )
    .await?;
    let dead_letter = DeadLetterPolicy::new(format!("{}-dlq", h.topic), 5);
    let sub = h
        .subscription("a", SubscriptionConfig::default().dead_letter(dead_letter))
        .await?;
    let root = h.root();
    h.publisher()
        .publish_with(reconcile_event("c1")?, under(&root))
        .await
        .map_err(|e| e.to_string())?;
    let seen = h
        .consume(h.subscriber(&sub), 2, move |index, _| {
            if index == 0 {
                if panic {
                    panic!("conformance: handler panics on the first delivery");
                }
                return Err("conformance: handler fails on the first delivery".into());
            }
            Ok(())
        })
        .await?;
    let attempts: Vec<_> = seen.iter().map(|s| s.received.delivery_attempt).collect();
    ensure!(
        attempts == vec![Some(1), Some(2)],
        "delivery attempts were {attempts:?}, expected [Some(1), Some(2)]"
    );
    ensure!(
        seen[0].received.message_id == seen[1].received.message_id,
        "the redelivery has another message id"
    );
    let spans = h.spans();
    let publish = single(&spans, &publish_name(&h))?;
    let receives = children_of(&spans, publish);
    ensure!(
        receives.len() == 2,
        "{} receive spans under the publish span",
        receives.len()
    );
    let expected_type = if panic { "panic" } else { "_OTHER" };
    let by_attempt = |n: i64| {
        receives
            .iter()
            .find(|r| {
                attribute(r, MESSAGING_GCP_PUBSUB_MESSAGE_DELIVERY_ATTEMPT) == Some(&Value::I64(n))
            })
            .copied()
            .ok_or(format!("no receive span for delivery attempt {n}"))
    };
    let failed = by_attempt(1)?;
    let succeeded = by_attempt(2)?;
    for (span, what) in [(failed, "receive")].into_iter().chain(
        children_of(&spans, failed)
            .into_iter()
            .map(|s| (s, "process")),
    ) {
        ensure!(
            matches!(span.status, Status::Error { .. }),
            "the failed {what} span has status {:?}",
            span.status
        );
        ensure!(
            attribute_str(span, ERROR_TYPE).as_deref() == Some(expected_type),
            "the failed {what} span has error.type {:?}, expected {expected_type}",
            attribute_str(span, ERROR_TYPE)
        );
    }
    ensure!(
        !children_of(&spans, failed).is_empty(),
        "the failed delivery has no process span"
    );
    ensure!(
        !matches!(succeeded.status, Status::Error { .. }),
        "the successful redelivery is marked as an error"
    );
    Ok(())
}

async fn names_kinds_attributes<T: ConformanceTarget>(target: &T) -> Result<(), String> {
    let h = Harness::new(target, "attributes").await?;
    let sub = h.subscription("a", SubscriptionConfig::default()).await?;
    let system = target.transport().system();
    let mut event = reconcile_event("c1")?;
    event.set_subject(Some("clusters/c1"));
    let root = h.root();
    let published = h
        .publisher()
        .publish_with(event, under(&root))
        .await
        .map_err(|e| e.to_string())?;
    h.consume(h.subscriber(&sub), 1, |_, _| Ok(())).await?;
    let spans = h.spans();
    let publish = single(&spans, &publish_name(&h))?;
    let receive = single(&spans, &receive_name(&h))?;
    let process = single(&spans, "adapter.process")?;
    let id = published.message_id.as_str();
    let topic = h.topic.as_str();
    let common = [
        (MESSAGING_SYSTEM, system),
        (MESSAGING_DESTINATION_NAME, topic),
        (CLOUDEVENTS_EVENT_ID, "event-c1"),
        (HYPERFLEET_RESOURCE_TYPE, "clusters"),
        (HYPERFLEET_RESOURCE_ID, "c1"),
        (HYPERFLEET_CLUSTER_ID, "c1"),
    ];
    let event_attributes = [
        (CLOUDEVENTS_EVENT_SOURCE, "hyperfleet-sentinel"),
        (
            CLOUDEVENTS_EVENT_TYPE,
            "com.redhat.hyperfleet.cluster.reconcile",
        ),
        (CLOUDEVENTS_EVENT_SPEC_VERSION, "1.0"),
        (CLOUDEVENTS_EVENT_SUBJECT, "clusters/c1"),
    ];
    let publish_only = [
        (MESSAGING_OPERATION_TYPE, "publish"),
        (MESSAGING_OPERATION_NAME, "publish"),
        (MESSAGING_MESSAGE_ID, id),
    ];
    let receive_only = [
        (MESSAGING_OPERATION_TYPE, "receive"),
        (MESSAGING_OPERATION_NAME, "receive"),
        (MESSAGING_MESSAGE_ID, id),
        (MESSAGING_DESTINATION_SUBSCRIPTION_NAME, sub.as_str()),
    ];
    let process_only = [
        (MESSAGING_OPERATION_TYPE, "process"),
        (MESSAGING_OPERATION_NAME, "process"),
        (MESSAGING_DESTINATION_SUBSCRIPTION_NAME, sub.as_str()),
    ];
    expect_span(
        publish,
        SpanKind::Producer,
        [&common[..], &event_attributes, &publish_only].concat(),
    )?;
    expect_span(
        receive,
        SpanKind::Consumer,
        [&common[..], &event_attributes, &receive_only].concat(),
    )?;
    expect_span(
        process,
        SpanKind::Internal,
        [&common[..], &process_only].concat(),
    )
}

/// `span` has this kind, these attribute values, no ordering key and no failure.
fn expect_span(span: &SpanData, kind: SpanKind, pairs: Vec<(&str, &str)>) -> Result<(), String> {
    ensure!(
        span.span_kind == kind,
        "{}: kind {:?}, expected {kind:?}",
        span.name,
        span.span_kind
    );
    for (key, value) in pairs {
        let found = attribute_str(span, key);
        ensure!(
            found.as_deref() == Some(value),
            "{}: {key} = {found:?}, expected {value:?}",
            span.name
        );
    }
    ensure!(
        attribute(span, MESSAGING_GCP_PUBSUB_MESSAGE_ORDERING_KEY).is_none(),
        "{}: ordering key attribute without an ordering key",
        span.name
    );
    ensure!(
        attribute(span, ERROR_TYPE).is_none() && !matches!(span.status, Status::Error { .. }),
        "{}: marked as failed",
        span.name
    );
    Ok(())
}

async fn ordering_key<T: ConformanceTarget>(target: &T) -> Result<(), String> {
    let h = Harness::new(target, "ordering_key").await?;
    let sub = h
        .subscription("a", SubscriptionConfig::default().message_ordering(true))
        .await?;
    let publisher = h.publisher();
    let ids = ["c1", "c2", "c3", "c4", "c5"];
    for id in ids {
        publisher
            .publish_with(
                reconcile_event(id)?,
                PublishOptions::new().ordering_key("cluster-1"),
            )
            .await
            .map_err(|e| e.to_string())?;
    }
    let seen = h
        .consume(h.subscriber(&sub).concurrency(4), ids.len(), |_, _| Ok(()))
        .await?;
    let order: Vec<String> = seen
        .iter()
        .map(|s| s.received.event.id().to_owned())
        .collect();
    let expected: Vec<String> = ids.iter().map(|id| format!("event-{id}")).collect();
    ensure!(
        order == expected,
        "delivered in order {order:?}, published {expected:?}"
    );
    let spans = h.spans();
    for span in named(&spans, &publish_name(&h))
        .into_iter()
        .chain(named(&spans, &receive_name(&h)))
    {
        let key = attribute_str(span, MESSAGING_GCP_PUBSUB_MESSAGE_ORDERING_KEY);
        ensure!(
            key.as_deref() == Some("cluster-1"),
            "{}: ordering key attribute {key:?}",
            span.name
        );
    }
    Ok(())
}

async fn no_payload<T: ConformanceTarget>(target: &T) -> Result<(), String> {
    let h = Harness::new(target, "no_payload").await?;
    let sub = h.subscription("a", SubscriptionConfig::default()).await?;
    let marker = format!("secret-{}", h.topic);
    let mut event = reconcile_event("c1")?;
    let mut data = serde_json::json!({"id": "c1", "kind": "Cluster", "generation": 1});
    data["token"] = serde_json::Value::String(marker.clone());
    event.set_data("application/json", data);
    h.publisher()
        .publish(event)
        .await
        .map_err(|e| e.to_string())?;
    h.consume(h.subscriber(&sub), 1, |_, _| Ok(())).await?;
    let spans = h.spans();
    ensure!(
        spans.len() >= 3,
        "expected publish, receive and process spans"
    );
    for span in &spans {
        for kv in &span.attributes {
            ensure!(
                !kv.value.as_str().contains(&marker),
                "{}: attribute {} carries payload",
                span.name,
                kv.key
            );
        }
    }
    Ok(())
}

async fn undecodable<T: ConformanceTarget>(target: &T) -> Result<(), String> {
    let h = Harness::new(target, "undecodable").await?;
    let dead_letter_topic = format!("{}-dlq", h.topic);
    let sub = h
        .subscription(
            "a",
            SubscriptionConfig::default().dead_letter(DeadLetterPolicy::new(&dead_letter_topic, 5)),
        )
        .await?;
    let dead_letters = format!("{dead_letter_topic}-sub");
    target
        .create_subscription(
            &dead_letters,
            &dead_letter_topic,
            &SubscriptionConfig::default(),
        )
        .await
        .map_err(|e| e.to_string())?;
    let transport = target.transport();
    transport
        .publish(&h.topic, Message::new("this is not a CloudEvent"))
        .await
        .map_err(|e| e.to_string())?;
    let mut dead = transport
        .subscribe(&dead_letters)
        .await
        .map_err(|e| e.to_string())?;
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = std::sync::Arc::clone(&calls);
    let arrived = async move {
        if let Some(Ok(delivery)) = dead.next().await {
            let _ = delivery.ack().await;
        }
    };
    let run = h.subscriber(&sub).run(
        move |_| {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async { Ok(()) }
        },
        arrived,
    );
    tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .map_err(|_| "the undecodable message never reached the dead-letter topic".to_owned())?
        .map_err(|e| e.to_string())?;
    ensure!(
        calls.load(std::sync::atomic::Ordering::SeqCst) == 0,
        "the handler was called for an undecodable message"
    );
    let spans = h.spans();
    let receives = named(&spans, &receive_name(&h));
    ensure!(
        receives.len() == 5,
        "{} receive spans, expected one per attempt (5)",
        receives.len()
    );
    for receive in receives {
        ensure!(
            attribute_str(receive, ERROR_TYPE).as_deref() == Some("not_a_cloudevent"),
            "error.type {:?}",
            attribute_str(receive, ERROR_TYPE)
        );
    }
    Ok(())
}

/// A handler that runs past the subscription's ack deadline keeps its message: the transport
/// extends the lease while the delivery is held, as Google's clients do, so the message is not
/// delivered again meanwhile.
async fn held_past_ack_deadline<T: ConformanceTarget>(target: &T) -> Result<(), String> {
    const ACK_DEADLINE: Duration = Duration::from_secs(10);
    // The slow handler's own run time, the behaviour under test: past the deadline by more than
    // a redelivery takes.
    const HOLD: Duration = Duration::from_secs(15);
    let h = Harness::new(target, "held_past_deadline").await?;
    let sub = h
        .subscription(
            "a",
            SubscriptionConfig::default().ack_deadline(ACK_DEADLINE),
        )
        .await?;
    h.publisher()
        .publish(reconcile_event("c1")?)
        .await
        .map_err(|e| e.to_string())?;
    let calls = Arc::new(AtomicUsize::new(0));
    let (finished, mut slow_done) = tokio::sync::mpsc::unbounded_channel::<()>();
    let counted = Arc::clone(&calls);
    let handler = move |_: crate::subscriber::Received| {
        let first = counted.fetch_add(1, Ordering::SeqCst) == 0;
        let finished = finished.clone();
        async move {
            if first {
                tokio::time::sleep(HOLD).await;
                let _ = finished.send(());
            }
            Ok::<(), crate::subscriber::HandlerError>(())
        }
    };
    let shutdown = async move {
        slow_done.recv().await;
    };
    match tokio::time::timeout(HOLD * 4, h.subscriber(&sub).run(handler, shutdown)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(format!("subscriber failed: {e}")),
        Err(_) => return Err("the slow handler never finished".to_owned()),
    }
    let calls = calls.load(Ordering::SeqCst);
    ensure!(
        calls == 1,
        "the message was handled {calls} times while its first delivery was held for {HOLD:?}, \
         past its {ACK_DEADLINE:?} ack deadline"
    );
    Ok(())
}
