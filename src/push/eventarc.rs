//! Eventarc deliveries: a `google.cloud.pubsub.topic.v1.messagePublished` CloudEvent over
//! HTTP whose data (`MessagePublishedData`) is the Pub/Sub message.

use super::NotAPushDelivery;
use super::delivery::{self, PushDelivery, Shape};
use super::pubsub_message::{self, Envelope, JsonMessage};
use axum::http::HeaderMap;
use serde::Deserialize;

/// The CloudEvent type Eventarc gives a published Pub/Sub message.
pub const MESSAGE_PUBLISHED: &str = "google.cloud.pubsub.topic.v1.messagePublished";

/// The outer CloudEvent of a structured-mode delivery: only what is needed.
#[derive(Debug, Deserialize)]
struct StructuredEvent {
    #[serde(rename = "type")]
    ty: String,
    #[serde(default)]
    data: Option<serde_json::Value>,
    #[serde(default)]
    traceparent: Option<String>,
    #[serde(default)]
    tracestate: Option<String>,
}

/// The delivery, when the request is an Eventarc one: binary (its `ce-type` header) or
/// structured (a `application/cloudevents+json` body of that type).
pub(super) fn read(
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Option<PushDelivery>, NotAPushDelivery> {
    let ce_type = headers.get("ce-type").map(|v| v.as_bytes());
    if ce_type == Some(MESSAGE_PUBLISHED.as_bytes()) {
        let envelope = pubsub_message::envelope(body)?;
        let mut delivery = delivery::from_envelope(Shape::EventarcBinary, envelope)?;
        delivery.outer_context = [
            ("traceparent", "ce-traceparent"),
            ("tracestate", "ce-tracestate"),
        ]
        .into_iter()
        .filter_map(|(key, header)| {
            let value = headers.get(header)?.to_str().ok()?;
            Some((key.to_owned(), value.to_owned()))
        })
        .collect();
        return Ok(Some(delivery));
    }
    if !is_structured_cloudevent(headers) {
        return Ok(None);
    }
    let event: StructuredEvent =
        serde_json::from_slice(body).map_err(|e| NotAPushDelivery::NotJson(e.to_string()))?;
    if event.ty != MESSAGE_PUBLISHED {
        return Ok(None);
    }
    let data = event.data.ok_or(NotAPushDelivery::NoMessage)?;
    let mut delivery = delivery::from_envelope(Shape::EventarcStructured, published_data(data)?)?;
    delivery.outer_context = [
        ("traceparent", event.traceparent),
        ("tracestate", event.tracestate),
    ]
    .into_iter()
    .filter_map(|(key, value)| Some((key.to_owned(), value?)))
    .collect();
    Ok(Some(delivery))
}

fn is_structured_cloudevent(headers: &HeaderMap) -> bool {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| {
            essence
                .trim()
                .eq_ignore_ascii_case("application/cloudevents+json")
        })
}

/// `MessagePublishedData`: `{"subscription", "message": {...}}`; Google's structured example
/// also shows the message itself as the data, which is read as well.
fn published_data(data: serde_json::Value) -> Result<Envelope<'static>, NotAPushDelivery> {
    use serde::Deserialize as _;
    let not_json = |e: serde_json::Error| NotAPushDelivery::NotJson(e.to_string());
    if data.get("message").is_some() {
        return Envelope::deserialize(data).map_err(not_json);
    }
    let message = JsonMessage::deserialize(data).map_err(not_json)?;
    Ok(Envelope {
        message: Some(message),
        subscription: None,
        delivery_attempt: None,
    })
}
