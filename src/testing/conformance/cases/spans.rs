//! Span names, kinds and attributes, and no payload in them.

#[allow(unused_imports)]
use super::*;

pub(super) async fn names_kinds_attributes<T: ConformanceTarget>(target: &T) -> Result<(), String> {
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
pub(super) fn expect_span(
    span: &SpanData,
    kind: SpanKind,
    pairs: Vec<(&str, &str)>,
) -> Result<(), String> {
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
pub(super) async fn no_payload<T: ConformanceTarget>(target: &T) -> Result<(), String> {
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
