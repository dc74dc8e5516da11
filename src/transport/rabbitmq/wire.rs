//! A message on the AMQP wire, as hyperfleet-broker sends and reads it, and as the
//! CloudEvents AMQP binding writes binary mode.
//!
//! Out: the body as it is, persistent, every attribute a string header; binary-mode `ce-*`
//! attributes become `cloudEvents_*` headers and `content-type` the content-type property;
//! `_watermill_message_uuid` is the event id. In: the reverse, reading `cloudEvents_` and
//! `cloudEvents:` alike and skipping headers that are not strings (`x-death`, …), which the
//! broker adds.

use crate::transport::Message;
use lapin::BasicProperties;
use lapin::types::{AMQPValue, FieldTable, ShortString};

/// The header hyperfleet-broker (watermill) keeps the message id in.
pub const WATERMILL_UUID: &str = "_watermill_message_uuid";
/// Quorum queues count earlier deliveries here.
const DELIVERY_COUNT: &str = "x-delivery-count";
const CE_PREFIX: &str = "ce-";
const AMQP_PREFIX: &str = "cloudEvents_";
const AMQP_PREFIX_COLON: &str = "cloudEvents:";
const CONTENT_TYPE: &str = "content-type";
/// AMQP delivery mode 2: the broker writes the message to disk.
const PERSISTENT: u8 = 2;

/// The properties (headers included) a message is published with, `id` its event's id
/// ([`event_id`]).
pub(super) fn properties(message: &Message, id: Option<&str>) -> BasicProperties {
    let mut headers = FieldTable::default();
    let mut properties = BasicProperties::default().with_delivery_mode(PERSISTENT);
    for (key, value) in &message.attributes {
        if key.eq_ignore_ascii_case(CONTENT_TYPE) {
            properties = properties.with_content_type(ShortString::from(value.clone()));
            continue;
        }
        let name = match key.strip_prefix(CE_PREFIX) {
            Some(attribute) => format!("{AMQP_PREFIX}{attribute}"),
            None => key.clone(),
        };
        headers.insert(name.into(), AMQPValue::LongString(value.clone().into()));
    }
    if let Some(id) = id {
        headers.insert(WATERMILL_UUID.into(), AMQPValue::LongString(id.into()));
    }
    properties.with_headers(headers)
}

/// The message a delivery carries, its id from `_watermill_message_uuid` (else the AMQP
/// message id).
pub(super) fn message(data: Vec<u8>, properties: &BasicProperties) -> Message {
    let mut message = Message::new(data);
    let headers = properties.headers().as_ref().map(FieldTable::inner);
    for (key, value) in headers.into_iter().flatten() {
        let Some(value) = text(value) else { continue };
        let key = key.as_str();
        if key == WATERMILL_UUID {
            message.id = Some(value);
            continue;
        }
        let name = match key
            .strip_prefix(AMQP_PREFIX)
            .or_else(|| key.strip_prefix(AMQP_PREFIX_COLON))
        {
            Some(attribute) => format!("{CE_PREFIX}{attribute}"),
            None => key.to_owned(),
        };
        message.attributes.insert(name, value);
    }
    if let Some(content_type) = properties.content_type() {
        message
            .attributes
            .insert(CONTENT_TYPE.to_owned(), content_type.to_string());
    }
    if message.id.is_none() {
        message.id = properties.message_id().as_ref().map(ToString::to_string);
    }
    message
}

/// Which delivery this is: from a quorum queue's `x-delivery-count`; a first delivery
/// (`redelivered` unset) is 1; a classic queue's redelivery only says "at least 2": `None`.
pub(super) fn delivery_attempt(properties: &BasicProperties, redelivered: bool) -> Option<u32> {
    let count = properties
        .headers()
        .as_ref()
        .and_then(|h| h.inner().get(DELIVERY_COUNT))
        .and_then(integer);
    match count {
        Some(count) => u32::try_from(count).ok().map(|c| c.saturating_add(1)),
        None if !redelivered => Some(1),
        None => None,
    }
}

/// A header's value when it is a string.
fn text(value: &AMQPValue) -> Option<String> {
    match value {
        AMQPValue::LongString(s) => String::from_utf8(s.as_bytes().to_vec()).ok(),
        AMQPValue::ShortString(s) => Some(s.as_str().to_owned()),
        _ => None,
    }
}

fn integer(value: &AMQPValue) -> Option<i64> {
    match value {
        AMQPValue::ShortShortInt(n) => Some(i64::from(*n)),
        AMQPValue::ShortShortUInt(n) => Some(i64::from(*n)),
        AMQPValue::ShortInt(n) => Some(i64::from(*n)),
        AMQPValue::ShortUInt(n) => Some(i64::from(*n)),
        AMQPValue::LongInt(n) => Some(i64::from(*n)),
        AMQPValue::LongUInt(n) => Some(i64::from(*n)),
        AMQPValue::LongLongInt(n) => Some(*n),
        _ => None,
    }
}

/// The CloudEvent id: the `ce-id` attribute in binary mode, else the structured body's `id`.
pub(super) fn event_id(message: &Message) -> Option<String> {
    if let Some(id) = message.attributes.get("ce-id") {
        return Some(id.clone());
    }
    #[derive(serde::Deserialize)]
    struct Id {
        id: String,
    }
    serde_json::from_slice::<Id>(&message.data)
        .ok()
        .map(|e| e.id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use lapin::types::FieldArray;

    fn headers(pairs: Vec<(&str, AMQPValue)>) -> BasicProperties {
        let mut table = FieldTable::default();
        for (key, value) in pairs {
            table.insert(key.into(), value);
        }
        BasicProperties::default().with_headers(table)
    }

    #[test]
    fn both_amqp_binding_spellings_read_as_ce_attributes_and_non_strings_are_skipped() {
        let properties = headers(vec![
            ("cloudEvents_id", AMQPValue::LongString("1".into())),
            ("cloudEvents:type", AMQPValue::LongString("t".into())),
            ("x-death", AMQPValue::FieldArray(FieldArray::default())),
            ("x-delivery-count", AMQPValue::LongLongInt(2)),
            (WATERMILL_UUID, AMQPValue::LongString("uuid-1".into())),
        ])
        .with_content_type("application/json".into());
        let message = message(b"{}".to_vec(), &properties);
        assert_eq!(
            message.attributes.get("ce-id").map(String::as_str),
            Some("1")
        );
        assert_eq!(
            message.attributes.get("ce-type").map(String::as_str),
            Some("t")
        );
        assert_eq!(
            message.attributes.get("content-type").map(String::as_str),
            Some("application/json")
        );
        assert!(!message.attributes.contains_key("x-death"));
        assert!(!message.attributes.contains_key("x-delivery-count"));
        assert_eq!(message.id.as_deref(), Some("uuid-1"));
        assert_eq!(delivery_attempt(&properties, true), Some(3));
    }

    #[test]
    fn the_attempt_is_known_on_a_first_delivery_and_unknown_on_a_classic_redelivery() {
        let none = BasicProperties::default();
        assert_eq!(delivery_attempt(&none, false), Some(1));
        assert_eq!(delivery_attempt(&none, true), None);
    }

    #[test]
    fn outgoing_headers_are_strings_with_the_event_id() {
        let mut binary = Message::new(b"{}".to_vec());
        binary.attributes.insert("ce-id".into(), "e-1".into());
        binary
            .attributes
            .insert("content-type".into(), "application/json".into());
        let properties = properties(&binary, event_id(&binary).as_deref());
        let table = properties.headers().clone().unwrap_or_default();
        assert!(
            table
                .inner()
                .values()
                .all(|v| matches!(v, AMQPValue::LongString(_)))
        );
        assert!(table.inner().contains_key("cloudEvents_id"));
        assert_eq!(
            table.inner().get(WATERMILL_UUID).and_then(text).as_deref(),
            Some("e-1")
        );
        assert_eq!(properties.delivery_mode(), &Some(PERSISTENT));
        assert_eq!(
            properties.content_type().as_ref().map(|c| c.as_str()),
            Some("application/json")
        );
        let structured = Message::new(br#"{"id":"e-2","data":{"id":"inner"}}"#.to_vec());
        assert_eq!(event_id(&structured).as_deref(), Some("e-2"));
    }
}
