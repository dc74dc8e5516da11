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

/// Both metric families count exactly the deliveries and publishes the spans show, labelled
/// with the transport's system, the topic and the subscription.
pub(super) async fn metrics_match_spans<T: ConformanceTarget>(target: &T) -> Result<(), String> {
    use crate::metrics::names::*;
    let h = Harness::new(target, "metrics").await?;
    let sub = h.subscription("m", SubscriptionConfig::default()).await?;
    let root = h.root();
    for cluster in ["c1", "c2", "c3"] {
        h.publish_under(&root, cluster).await?;
    }
    h.consume(h.subscriber(&sub), 3, |_, _| Ok(())).await?;
    let spans = h.spans();
    let published = named(&spans, &publish_name(&h)).len() as u64;
    let received = named(&spans, &receive_name(&h)).len() as u64;
    let processed = named(&spans, "adapter.process").len() as u64;
    ensure!(published == 3, "{published} publish spans for 3 publishes");
    let transport = target.transport();
    let topic = h.topic.as_str();
    let m = &h.metrics;
    let producer = Site::of(&transport, topic, None);
    let consumer = Site::of(&transport, topic, Some(&sub));
    let on_topic = producer.attributes();
    let on_subscription = consumer.attributes();
    let broker = [(TOPIC, topic)];
    let counts = [
        (
            "messaging.client.sent.messages",
            m.counter(MESSAGING_CLIENT_SENT_MESSAGES, &on_topic),
            published,
        ),
        (
            "hyperfleet_broker_messages_published_total",
            m.counter(HYPERFLEET_BROKER_MESSAGES_PUBLISHED_TOTAL, &broker),
            published,
        ),
        (
            "messaging.client.consumed.messages",
            m.counter(MESSAGING_CLIENT_CONSUMED_MESSAGES, &on_subscription),
            received,
        ),
        (
            "hyperfleet_broker_messages_consumed_total",
            m.counter(HYPERFLEET_BROKER_MESSAGES_CONSUMED_TOTAL, &broker),
            received,
        ),
        (
            "messaging.process.duration",
            m.histogram_count(MESSAGING_PROCESS_DURATION, &on_subscription)
                .0,
            processed,
        ),
        (
            "hyperfleet_broker_message_duration_seconds",
            m.histogram_count(HYPERFLEET_BROKER_MESSAGE_DURATION_SECONDS, &broker)
                .0,
            processed,
        ),
        (
            "messaging.client.operation.duration{ack}",
            m.histogram_count(
                MESSAGING_CLIENT_OPERATION_DURATION,
                &[(MESSAGING_OPERATION_NAME, "ack")],
            )
            .0,
            received,
        ),
    ];
    for (name, counted, spans) in counts {
        ensure!(
            counted == spans,
            "{name} counted {counted}, the spans show {spans}"
        );
    }
    Ok(())
}

/// With the current messaging conventions opted in (`messaging` and `messaging/dup` alike):
/// `send {topic}` PRODUCER → `receive {subscription}` CLIENT → `subscribe {subscription}`
/// CONSUMER, an `ack {subscription}` CLIENT span linked to the receive span, body sizes, and the
/// metrics' operation names to match.
pub(super) async fn current_conventions<T: ConformanceTarget>(target: &T) -> Result<(), String> {
    use crate::settings::Conventions;
    for conventions in [Conventions::Messaging, Conventions::MessagingDup] {
        let h = Harness::new(target, "conventions").await?;
        let sub = h.subscription("v", SubscriptionConfig::default()).await?;
        let root = h.root();
        h.publisher()
            .settings(h.settings().conventions(conventions))
            .publish_with(reconcile_event("c1")?, under(&root))
            .await
            .map_err(|e| e.to_string())?;
        let subscriber = h
            .subscriber(&sub)
            .settings(h.settings().conventions(conventions));
        h.consume(subscriber, 1, |_, _| Ok(())).await?;
        let spans = h.spans();
        let topic = h.topic.as_str();
        let transport = target.transport();
        // Spans are named after the destination: the topic when publishing; when consuming,
        // the subscription, or the system's own name that takes it in (RabbitMQ's).
        let producer = Site::of(&transport, topic, None);
        let consumer = Site::of(&transport, topic, Some(&sub));
        let send = single(&spans, &format!("send {}", producer.named()))?;
        let receive = single(&spans, &format!("receive {}", consumer.named()))?;
        let process = single(&spans, &format!("subscribe {}", consumer.named()))?;
        let ack = named(&spans, &format!("ack {}", consumer.named()));
        let op = |t, n| [(MESSAGING_OPERATION_TYPE, t), (MESSAGING_OPERATION_NAME, n)];
        expect_span(
            send,
            SpanKind::Producer,
            [&producer.attributes()[..], &op("send", "send")].concat(),
        )?;
        expect_span(
            receive,
            SpanKind::Client,
            [&consumer.attributes()[..], &op("receive", "receive")].concat(),
        )?;
        expect_span(
            process,
            SpanKind::Consumer,
            [&consumer.attributes()[..], &op("process", "subscribe")].concat(),
        )?;
        // `messaging/dup` keeps the standard's subscription attribute where the system's own
        // destination name took it in (RabbitMQ's); `messaging` drops it.
        if consumer.own_name.is_some() {
            let kept = attribute_str(receive, MESSAGING_DESTINATION_SUBSCRIPTION_NAME);
            let expected = (conventions == Conventions::MessagingDup).then(|| sub.clone());
            ensure!(
                kept == expected,
                "{conventions:?}: the receive span's subscription attribute is {kept:?}"
            );
        }
        ensure!(!ack.is_empty(), "{conventions:?}: no ack span");
        for ack in &ack {
            expect_span(
                ack,
                SpanKind::Client,
                [&consumer.attributes()[..], &op("settle", "ack")].concat(),
            )?;
            ensure!(
                ack.links
                    .iter()
                    .any(|l| l.span_context.span_id() == receive.span_context.span_id()),
                "{conventions:?}: the ack span does not link the receive span"
            );
        }
        ensure!(
            receive.parent_span_id == send.span_context.span_id()
                && process.parent_span_id == receive.span_context.span_id(),
            "{conventions:?}: not one chain send → receive → subscribe"
        );
        for span in [send, receive] {
            let size = attribute(span, MESSAGING_MESSAGE_BODY_SIZE);
            ensure!(
                matches!(size, Some(Value::I64(n)) if *n > 0),
                "{conventions:?}: {}: messaging.message.body.size = {size:?}",
                span.name
            );
        }
        let legacy = [format!("{topic} publish"), format!("{topic} receive")];
        ensure!(
            spans
                .iter()
                .all(|s| !legacy.contains(&s.name.to_string()) && s.name != "adapter.process"),
            "{conventions:?}: a span still has the standard's name"
        );
        let m = &h.metrics;
        let send_op = [(MESSAGING_OPERATION_NAME, "send")];
        ensure!(
            m.counter(
                crate::metrics::names::MESSAGING_CLIENT_SENT_MESSAGES,
                &send_op
            ) == 1,
            "{conventions:?}: messaging.client.sent.messages has no `send` point"
        );
        let process_op = [(MESSAGING_OPERATION_NAME, "subscribe")];
        ensure!(
            m.histogram_count(
                crate::metrics::names::MESSAGING_PROCESS_DURATION,
                &process_op
            )
            .0 >= 1,
            "{conventions:?}: messaging.process.duration has no `subscribe` point"
        );
    }
    Ok(())
}

/// Where a span or metric point is, as the conventions name it on a transport: its system,
/// its destination, and the subscription apart unless the system's own destination name
/// takes it in ([`Transport::destination_name`]).
struct Site<'a> {
    system: &'static str,
    topic: &'a str,
    subscription: Option<&'a str>,
    own_name: Option<String>,
}

impl<'a> Site<'a> {
    fn of<T: Transport>(transport: &T, topic: &'a str, subscription: Option<&'a str>) -> Self {
        Self {
            system: transport.system(),
            topic,
            subscription,
            own_name: transport.destination_name(topic, subscription),
        }
    }

    /// What the current conventions' span names name.
    fn named(&self) -> &str {
        self.own_name
            .as_deref()
            .or(self.subscription)
            .unwrap_or(self.topic)
    }

    /// `messaging.system`, `messaging.destination.name` and, apart, the subscription.
    fn attributes(&self) -> Vec<(&'static str, &str)> {
        let mut attributes = vec![
            (MESSAGING_SYSTEM, self.system),
            (
                MESSAGING_DESTINATION_NAME,
                self.own_name.as_deref().unwrap_or(self.topic),
            ),
        ];
        if let (None, Some(subscription)) = (&self.own_name, self.subscription) {
            attributes.push((MESSAGING_DESTINATION_SUBSCRIPTION_NAME, subscription));
        }
        attributes
    }
}
