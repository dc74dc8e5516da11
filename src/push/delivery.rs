//! One push request read as a delivery, whichever of the three shapes it has.

use super::pubsub_message::{self, Envelope};
use super::{NotAPushDelivery, eventarc, unwrapped};
use crate::transport::Message;
use axum::http::HeaderMap;

/// How the delivery came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Shape {
    /// A push subscription's JSON envelope.
    Wrapped,
    /// A push subscription without the envelope: the body is the data, the attributes and
    /// metadata are headers.
    Unwrapped,
    /// An Eventarc `google.cloud.pubsub.topic.v1.messagePublished` CloudEvent, binary mode.
    EventarcBinary,
    /// The same, structured mode.
    EventarcStructured,
}

/// A push request, read.
#[derive(Debug)]
pub(super) struct PushDelivery {
    pub(super) shape: Shape,
    pub(super) message: Message,
    /// The subscription's short name, when the delivery names it.
    pub(super) subscription: Option<String>,
    pub(super) delivery_attempt: Option<u32>,
    /// The `traceparent` and `tracestate` of Eventarc's own CloudEvent: its delivery's
    /// context, not the producer's.
    pub(super) outer_context: Vec<(String, String)>,
}

/// Reads a push request: Eventarc (by its `ce-type`, or a structured CloudEvent body), then
/// unwrapped (by its `x-goog-pubsub-message-id` header), else the wrapped envelope.
pub(super) fn read(headers: &HeaderMap, body: &[u8]) -> Result<PushDelivery, NotAPushDelivery> {
    if let Some(delivery) = eventarc::read(headers, body)? {
        return Ok(delivery);
    }
    if let Some(delivery) = unwrapped::read(headers, body)? {
        return Ok(delivery);
    }
    let envelope = pubsub_message::envelope(body)?;
    from_envelope(Shape::Wrapped, envelope)
}

/// The delivery an envelope (or Eventarc's `MessagePublishedData`) describes.
pub(super) fn from_envelope(
    shape: Shape,
    envelope: Envelope<'_>,
) -> Result<PushDelivery, NotAPushDelivery> {
    let message = envelope.message.ok_or(NotAPushDelivery::NoMessage)?;
    Ok(PushDelivery {
        shape,
        message: message.into_message()?,
        subscription: envelope
            .subscription
            .as_deref()
            .map(|s| pubsub_message::short_subscription(s).to_owned()),
        delivery_attempt: envelope.delivery_attempt.filter(|n| *n > 0),
        outer_context: Vec::new(),
    })
}
