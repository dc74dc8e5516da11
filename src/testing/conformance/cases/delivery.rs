//! Delivery: fan-out, failures and redelivery, ordering keys, dead letters, leases.

#[allow(unused_imports)]
use super::*;

pub(super) async fn fan_out<T: ConformanceTarget>(target: &T) -> Result<(), String> {
    let h = Harness::new(target, "fan_out").await?;
    let first = h
        .subscription("validation", SubscriptionConfig::default())
        .await?;
    let second = h
        .subscription("provisioning", SubscriptionConfig::default())
        .await?;
    let root = h.root();
    h.publish_under(&root, "c1").await?;
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
pub(super) async fn failing_handler<T: ConformanceTarget>(
    target: &T,
    panic: bool,
) -> Result<(), String> {
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
    h.publish_under(&root, "c1").await?;
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
        attempts == vec![Some(1), Some(2)]
            || !target
                .capabilities()
                .contains(&Capability::DeliveryAttempts),
        "delivery attempts were {attempts:?}, expected [Some(1), Some(2)]"
    );
    ensure!(
        seen[0].received.message_id == seen[1].received.message_id,
        "the redelivery has another message id"
    );
    let expected_type = if panic { "panic" } else { OTHER_ERROR };
    check_failed_then_handled(&h, expected_type)
}
pub(super) async fn ordering_key<T: ConformanceTarget>(target: &T) -> Result<(), String> {
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
pub(super) async fn undecodable<T: ConformanceTarget>(target: &T) -> Result<(), String> {
    let h = Harness::new(target, "undecodable").await?;
    let (sub, dead_letters) = h.dead_lettering_subscription().await?;
    let transport = target.transport();
    transport
        .publish(&h.topic, Message::new("this is not a CloudEvent"))
        .await
        .map_err(|e| e.to_string())?;
    let calls = run_until_dead_lettered(&h, &sub, &dead_letters).await?;
    ensure!(
        calls == 0,
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
pub(super) async fn held_past_ack_deadline<T: ConformanceTarget>(target: &T) -> Result<(), String> {
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
    let handler = move |_: crate::Received| {
        let first = counted.fetch_add(1, Ordering::SeqCst) == 0;
        let finished = finished.clone();
        async move {
            if first {
                tokio::time::sleep(HOLD).await;
                let _ = finished.send(());
            }
            Ok::<(), crate::HandlerError>(())
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

/// Under the publish span, the first delivery's receive and process spans failed with
/// `expected_type`, and the second delivery's receive span did not.
fn check_failed_then_handled<T: ConformanceTarget>(
    h: &Harness<'_, T>,
    expected_type: &str,
) -> Result<(), String> {
    let spans = h.spans();
    let publish = single(&spans, &publish_name(h))?;
    let receives = children_of(&spans, publish);
    ensure!(
        receives.len() == 2,
        "{} receive spans under the publish span",
        receives.len()
    );
    // Pub/Sub's receive spans say their attempt; RabbitMQ's do not (the attribute is
    // Pub/Sub's), and there the first receive is the first attempt.
    let mut in_order = receives.clone();
    in_order.sort_by_key(|r| r.start_time);
    let by_attempt = |n: i64| {
        let attempted = |r: &&&SpanData| {
            attribute(r, MESSAGING_GCP_PUBSUB_MESSAGE_DELIVERY_ATTEMPT) == Some(&Value::I64(n))
        };
        match receives
            .iter()
            .any(|r| attribute(r, MESSAGING_GCP_PUBSUB_MESSAGE_DELIVERY_ATTEMPT).is_some())
        {
            true => receives.iter().find(attempted).copied(),
            false => usize::try_from(n - 1)
                .ok()
                .and_then(|i| in_order.get(i).copied()),
        }
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

/// Runs a subscriber on `sub` until a message reaches `dead_letters`; how many times the
/// handler was called meanwhile.
async fn run_until_dead_lettered<T: ConformanceTarget>(
    h: &Harness<'_, T>,
    sub: &str,
    dead_letters: &str,
) -> Result<usize, String> {
    let transport = h.target.transport();
    let mut dead = transport
        .subscribe(dead_letters)
        .await
        .map_err(|e| e.to_string())?;
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = std::sync::Arc::clone(&calls);
    let arrived = async move {
        if let Some(Ok(delivery)) = dead.next().await {
            let _ = delivery.ack().await;
        }
    };
    let run = h.subscriber(sub).run(
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
    Ok(calls.load(std::sync::atomic::Ordering::SeqCst))
}

/// A delivery dropped without being acked or nacked (a run aborted, a panic outside the
/// handler) comes again while the subscriber runs: the transport's acknowledger sends it back
/// when it is dropped, rather than holding it until its lease or channel ends.
pub(super) async fn abandoned_delivery_comes_again<T: ConformanceTarget>(
    target: &T,
) -> Result<(), String> {
    const WAIT: Duration = Duration::from_secs(30);
    let h = Harness::new(target, "abandoned").await?;
    let sub = h.subscription("a", SubscriptionConfig::default()).await?;
    let root = h.root();
    let published = h.publish_under(&root, "c1").await?;
    if h.is_push(&sub) {
        return abandoned_push_comes_again(&h, &sub, &published.message_id).await;
    }
    let transport = target.transport();
    let mut deliveries = transport
        .subscribe(&sub)
        .await
        .map_err(|e| format!("cannot subscribe: {e}"))?;
    let first = tokio::time::timeout(WAIT, deliveries.next())
        .await
        .map_err(|_| "the message was not delivered".to_owned())?
        .ok_or("the delivery stream ended")?
        .map_err(|e| format!("the delivery stream failed: {e}"))?;
    ensure!(
        first.message.id.as_deref() == Some(published.message_id.as_str()),
        "delivered {:?}, published {}",
        first.message.id,
        published.message_id
    );
    drop(first);
    let again = tokio::time::timeout(WAIT, deliveries.next())
        .await
        .map_err(|_| format!("a delivery dropped unsettled did not come again within {WAIT:?}"))?
        .ok_or("the delivery stream ended")?
        .map_err(|e| format!("the delivery stream failed: {e}"))?;
    ensure!(
        again.message.id.as_deref() == Some(published.message_id.as_str()),
        "delivered {:?} again, not the dropped {}",
        again.message.id,
        published.message_id
    );
    let _ = again.ack().await;
    deliveries.close().await;
    Ok(())
}

/// By push: an endpoint shut down while its handler runs (the instance going away) gives up
/// on the delivery at its shutdown timeout and answers 503, not 2xx: Pub/Sub pushes the
/// message again, to the next endpoint. Had it been acked, it would never come again.
async fn abandoned_push_comes_again<T: ConformanceTarget>(
    h: &Harness<'_, T>,
    sub: &str,
    message_id: &str,
) -> Result<(), String> {
    const WAIT: Duration = Duration::from_secs(30);
    let (called, mut first_call) = tokio::sync::mpsc::unbounded_channel();
    let holds = move |received: crate::Received| {
        let _ = called.send(received.message_id);
        std::future::pending::<Result<(), crate::HandlerError>>()
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let run = h
        .subscriber(sub)
        .shutdown_timeout(Duration::from_millis(100))
        .run(holds, async move {
            let _ = stopped.await;
        });
    let watch = async {
        let first = tokio::time::timeout(WAIT, first_call.recv()).await;
        let _ = stop.send(());
        first.ok().flatten().flatten()
    };
    let (ran, first) = tokio::join!(tokio::time::timeout(WAIT * 2, run), watch);
    ensure!(
        first.as_deref() == Some(message_id),
        "pushed {first:?}, published {message_id}"
    );
    ran.map_err(|_| "the push endpoint did not stop at its shutdown timeout".to_owned())??;
    let seen = h.consume(h.subscriber(sub), 1, |_, _| Ok(())).await?;
    let again = seen[0].received.message_id.as_deref();
    ensure!(
        again == Some(message_id),
        "pushed {again:?} again, not the abandoned {message_id}"
    );
    Ok(())
}

/// A message its handler keeps failing is dead-lettered whole: its trace context goes with it,
/// and the dead-letter subscription's consumer continues the publisher's trace.
pub(super) async fn dead_letter_keeps_trace<T: ConformanceTarget>(
    target: &T,
) -> Result<(), String> {
    let h = Harness::new(target, "dead_letter_trace").await?;
    let (sub, dead_letters) = h.dead_lettering_subscription().await?;
    let root = h.root();
    let published = h.publish_under(&root, "c1").await?;
    h.consume(h.subscriber(&sub), 5, |_, _| {
        Err("conformance: the handler always fails".into())
    })
    .await?;
    let seen = h
        .consume(h.subscriber(&dead_letters), 1, |_, _| Ok(()))
        .await?;
    let received = &seen[0].received;
    ensure!(
        received.event.id() == "event-c1",
        "the dead letter is event {:?}",
        received.event.id()
    );
    let trace = published.trace_context.trace_id();
    ensure!(
        seen[0].current.trace_id() == trace,
        "the dead letter's handler ran in trace {}, not the publisher's {trace}",
        seen[0].current.trace_id()
    );
    Ok(())
}
