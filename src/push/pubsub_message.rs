//! The JSON form of a Pub/Sub message, as wrapped push deliveries and Eventarc's
//! `MessagePublishedData` carry it.

use super::NotAPushDelivery;
use crate::transport::Message;
use base64::Engine as _;
use serde::Deserialize;
use std::borrow::Cow;
use std::collections::BTreeMap;

/// `{"message": {...}, "subscription": "...", "deliveryAttempt": n}`: a wrapped push body, and
/// (without `deliveryAttempt`) Eventarc's `MessagePublishedData`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Envelope<'a> {
    #[serde(borrow)]
    pub(super) message: Option<JsonMessage<'a>>,
    #[serde(default)]
    pub(super) subscription: Option<String>,
    #[serde(default)]
    pub(super) delivery_attempt: Option<u32>,
}

/// A `PubsubMessage` in its JSON form; both spellings of the id are sent. The data is borrowed
/// from the body when it can be (base64 has nothing JSON escapes), so a body is not held twice.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct JsonMessage<'a> {
    #[serde(default, borrow)]
    data: Option<Cow<'a, str>>,
    #[serde(default)]
    attributes: BTreeMap<String, String>,
    #[serde(default)]
    message_id: Option<String>,
    /// The emulator and Google send the id in both spellings.
    #[serde(default, rename = "message_id")]
    message_id_snake: Option<String>,
    #[serde(default)]
    ordering_key: Option<String>,
}

impl JsonMessage<'_> {
    /// The message, its data decoded from base64.
    pub(super) fn into_message(self) -> Result<Message, NotAPushDelivery> {
        let data = match self.data {
            Some(data) => base64::engine::general_purpose::STANDARD
                .decode(data.as_bytes())
                .map_err(|e| NotAPushDelivery::DataNotBase64(e.to_string()))?,
            None => Vec::new(),
        };
        let mut message = Message::new(data);
        message.attributes = self.attributes;
        message.id = self
            .message_id
            .or(self.message_id_snake)
            .filter(|id| !id.is_empty());
        message.ordering_key = self.ordering_key.filter(|key| !key.is_empty());
        Ok(message)
    }
}

/// Reads `body` as an envelope.
pub(super) fn envelope(body: &[u8]) -> Result<Envelope<'_>, NotAPushDelivery> {
    serde_json::from_slice(body).map_err(|e| NotAPushDelivery::NotJson(e.to_string()))
}

/// The short name of `projects/P/subscriptions/S` (a short name stays as it is).
pub(super) fn short_subscription(name: &str) -> &str {
    name.rsplit_once("/subscriptions/")
        .map_or(name, |(_, short)| short)
}
