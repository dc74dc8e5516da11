//! Trace context: continuity, tracestate, sampling, invalid and existing `traceparent`.

#[allow(unused_imports)]
use super::*;

pub(super) async fn trace_continuity<T: ConformanceTarget>(target: &T) -> Result<(), String> {
    let h = Harness::new(target, "trace_continuity").await?;
    let sub = h.subscription("a", SubscriptionConfig::default()).await?;
    let root = h.root();
    h.publish_under(&root, "c1").await?;
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
pub(super) async fn tracestate_round_trip<T: ConformanceTarget>(target: &T) -> Result<(), String> {
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
    h.publish_under(&parent, "c1").await?;
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
pub(super) async fn unsampled_parent<T: ConformanceTarget>(target: &T) -> Result<(), String> {
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
    h.publish_under(&parent, "c1").await?;
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
pub(super) async fn invalid_traceparent<T: ConformanceTarget>(target: &T) -> Result<(), String> {
    let h = Harness::new(target, "invalid_traceparent").await?;
    let sub = h.subscription("a", SubscriptionConfig::default()).await?;
    let variants = invalid_traceparents();
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
pub(super) async fn existing_traceparent<T: ConformanceTarget>(
    target: &T,
    policy: OverwritePolicy,
) -> Result<(), String> {
    let h = Harness::new(target, "existing_traceparent").await?;
    let sub = h.subscription("a", SubscriptionConfig::default()).await?;
    let root = h.root();
    let mut event = reconcile_event("c1")?;
    event.set_extension("traceparent", EXISTING_TRACEPARENT);
    let published = h
        .publisher()
        .overwrite_policy(policy)
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

/// Trace contexts a receiver must ignore, each named: missing, empty, not a string, or not in
/// the W3C layout.
fn invalid_traceparents() -> Vec<(&'static str, Option<ExtensionValue>)> {
    vec![
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
    ]
}

/// Under `ParentMode::Link` the consumer starts a new trace linked to the producer's, and the
/// handler still sees the producer's baggage (users of other libraries lose it there).
pub(super) async fn link_mode_keeps_baggage<T: ConformanceTarget>(
    target: &T,
) -> Result<(), String> {
    use crate::settings::ParentMode;
    use opentelemetry::baggage::BaggageExt;
    use opentelemetry::propagation::TextMapCompositePropagator;
    use opentelemetry_sdk::propagation::BaggagePropagator;
    let propagator = || {
        TextMapCompositePropagator::new(vec![
            Box::new(crate::carrier::W3cTraceContext),
            Box::new(BaggagePropagator::new()),
        ])
    };
    let h = Harness::new(target, "link_baggage").await?;
    let sub = h.subscription("a", SubscriptionConfig::default()).await?;
    let root = h
        .root()
        .with_baggage(vec![opentelemetry::KeyValue::new("tenant", "acme")]);
    let event = crate::testing::reconcile_event("event-c1", "c1").map_err(|e| e.to_string())?;
    h.publisher()
        .settings(h.settings().propagator(propagator()))
        .publish_with(event, PublishOptions::new().parent(root.clone()))
        .await
        .map_err(|e| e.to_string())?;
    let subscriber = h.subscriber(&sub).settings(
        h.settings()
            .propagator(propagator())
            .parent_mode(ParentMode::Link),
    );
    let seen = h.consume(subscriber, 1, |_, _| Ok(())).await?;
    let tenant = seen[0]
        .received
        .context
        .baggage()
        .get("tenant")
        .map(|v| v.to_string());
    ensure!(
        tenant.as_deref() == Some("acme"),
        "the handler saw baggage tenant = {tenant:?}, the producer sent acme"
    );
    let producer = root.span().span_context().trace_id();
    ensure!(
        seen[0].current.trace_id() != producer,
        "under ParentMode::Link the handler runs in the producer's trace"
    );
    let spans = h.spans();
    let receive = single(&spans, &receive_name(&h))?;
    ensure!(
        receive
            .links
            .iter()
            .any(|l| l.span_context.trace_id() == producer),
        "the receive span does not link the producer's trace"
    );
    Ok(())
}
