//! Both encodings carry the event and its context.

#[allow(unused_imports)]
use super::*;

pub(super) async fn encoding<T: ConformanceTarget>(
    target: &T,
    encoding: Encoding,
) -> Result<(), String> {
    let h = Harness::new(target, "encoding").await?;
    let sub = h.subscription("a", SubscriptionConfig::default()).await?;
    let root = h.root();
    let event = reconcile_event("c1")?;
    h.publisher()
        .encoding(encoding)
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
