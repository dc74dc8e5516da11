//! Unwrapped push deliveries (`no_wrapper` with `write_metadata`): the body is the data, each
//! message attribute is a header of the same name, `x-goog-pubsub-*` headers carry the
//! metadata.

use super::delivery::{PushDelivery, Shape};
use super::{NotAPushDelivery, pubsub_message};
use crate::transport::Message;
use axum::http::HeaderMap;

const MESSAGE_ID: &str = "x-goog-pubsub-message-id";
const SUBSCRIPTION: &str = "x-goog-pubsub-subscription-name";
const ORDERING_KEY: &str = "x-goog-pubsub-ordering-key";

/// Headers that belong to the HTTP request, not to the message: they never become
/// attributes. `authorization` carries the push credentials; `traceparent` and `tracestate`
/// are the delivery's own context.
const REQUEST_HEADERS: [&str; 22] = [
    "accept",
    "accept-encoding",
    "accept-language",
    "authorization",
    "connection",
    "content-encoding",
    "content-length",
    "cookie",
    "expect",
    "forwarded",
    "from",
    "host",
    "keep-alive",
    "proxy-authorization",
    "te",
    "trailer",
    "traceparent",
    "tracestate",
    "transfer-encoding",
    "upgrade",
    "user-agent",
    "via",
];

/// The content type the emulator sends when the message has no `content-type` attribute:
/// not the message's.
const FILLER_CONTENT_TYPE: &str = "application/x-www-form-urlencoded";

/// The delivery, when the request is an unwrapped push (it has the message-id header).
pub(super) fn read(
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Option<PushDelivery>, NotAPushDelivery> {
    let Some(id) = headers.get(MESSAGE_ID) else {
        return Ok(None);
    };
    let text = |name: &'static str, value: &axum::http::HeaderValue| {
        std::str::from_utf8(value.as_bytes())
            .map(str::to_owned)
            .map_err(|_| NotAPushDelivery::HeaderNotText(name))
    };
    let mut message = Message::new(body.to_vec());
    message.id = Some(text(MESSAGE_ID, id)?).filter(|id| !id.is_empty());
    message.ordering_key = match headers.get(ORDERING_KEY) {
        Some(key) => Some(text(ORDERING_KEY, key)?).filter(|key| !key.is_empty()),
        None => None,
    };
    let subscription = match headers.get(SUBSCRIPTION) {
        Some(name) => {
            Some(pubsub_message::short_subscription(&text(SUBSCRIPTION, name)?).to_owned())
        }
        None => None,
    };
    message.attributes = headers
        .iter()
        .filter(|(name, value)| is_attribute(name.as_str(), value.as_bytes()))
        // Attribute values are UTF-8; one that is not cannot have come from Pub/Sub.
        .filter_map(|(name, value)| {
            let value = std::str::from_utf8(value.as_bytes()).ok()?;
            Some((name.as_str().to_owned(), value.to_owned()))
        })
        .collect();
    Ok(Some(PushDelivery {
        shape: Shape::Unwrapped,
        message,
        subscription,
        delivery_attempt: None,
        outer_context: Vec::new(),
    }))
}

/// Whether a header of an unwrapped delivery is a message attribute.
fn is_attribute(name: &str, value: &[u8]) -> bool {
    if REQUEST_HEADERS.contains(&name)
        || name.starts_with("x-goog-")
        || name.starts_with("x-forwarded-")
        || name == "x-cloud-trace-context"
    {
        return false;
    }
    !(name == "content-type" && value.eq_ignore_ascii_case(FILLER_CONTENT_TYPE.as_bytes()))
}
