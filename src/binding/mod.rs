//! CloudEvents ↔ Pub/Sub message binding.
//!
//! [`encode`] writes one of the two modes of Google's CloudEvents Pub/Sub binding:
//!
//! - [`Encoding::Structured`] (default): the event as JSON in `data`, attribute
//!   `content-type: application/cloudevents+json; charset=UTF-8`;
//! - [`Encoding::Binary`]: every context attribute and extension as a `ce-<name>` attribute
//!   (`ce-traceparent`, …), `content-type` = `datacontenttype`, `data` = the event data.
//!
//! [`decode`] reads every encoding found in the wild: Google's binding (`content-type`), the
//! CloudEvents sdk-go (`Content-Type`, binary by default) and the hyperfleet-broker wire format
//! (structured JSON with no content type at all). The content type is looked up ignoring case; a
//! CloudEvents media type means structured; otherwise a `ce-specversion` attribute means binary;
//! otherwise a body that is a CloudEvent JSON object is structured; anything else is a
//! [`BindingError`].
//!
//! Binary mode carries every attribute as a string, as the binding defines: a boolean or
//! integer extension comes back as its string form. Data comes back as JSON when
//! `datacontenttype` is a JSON type, as a string for `text/*`, and as bytes otherwise.
//!
//! ```
//! use cloudevents::{EventBuilder, EventBuilderV10};
//! use hyperfleet_tracing::binding::{decode, encode, Encoding};
//! use hyperfleet_tracing::transport::Message;
//!
//! let event = EventBuilderV10::new()
//!     .id("00000000-0000-0000-0000-000000000000")
//!     .source("hyperfleet-sentinel")
//!     .ty("com.redhat.hyperfleet.cluster.reconcile")
//!     .data("application/json", serde_json::json!({"id": "c1", "kind": "Cluster", "generation": 5}))
//!     .extension("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
//!     .build()?;
//!
//! let binary = encode(&event, Encoding::Binary)?;
//! assert_eq!(binary.attributes["ce-traceparent"], "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
//! assert_eq!(decode(&binary)?, event);
//!
//! // What hyperfleet-broker publishes: the JSON event, no content type.
//! let broker = Message::new(serde_json::to_vec(&event)?)
//!     .with_attribute("_watermill_message_uuid", "00000000-0000-0000-0000-000000000000");
//! assert_eq!(decode(&broker)?, event);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod deserializer;
mod serializer;

use crate::message::Message;
use crate::message::names;
use cloudevents::event::{Data, SpecVersion};
use cloudevents::message::{BinaryDeserializer, StructuredDeserializer, StructuredSerializer};
use cloudevents::{AttributesReader, AttributesWriter, Event};
use deserializer::BinaryMessage;
use serializer::MessageBuilder;

/// The `content-type` attribute, as Google's binding spells it.
pub const CONTENT_TYPE: &str = "content-type";
/// Prefix of binary-mode attribute keys.
pub const BINARY_PREFIX: &str = "ce-";
/// The content type of structured mode.
pub const STRUCTURED_CONTENT_TYPE: &str = "application/cloudevents+json; charset=UTF-8";

const CLOUDEVENTS_MEDIA_TYPE: &str = "application/cloudevents";
const OCTET_STREAM: &str = "application/octet-stream";
const CLOUDEVENTS_BATCH_MEDIA_TYPE: &str = "application/cloudevents-batch";

/// How an event is laid out in a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Encoding {
    /// The whole event as JSON in the message data.
    #[default]
    Structured,
    /// Context attributes as `ce-*` message attributes, the event data as the message data.
    Binary,
}

/// Why an event could not be encoded or a message could not be decoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BindingError {
    /// The message is in no known CloudEvents encoding.
    #[error(
        "not a CloudEvent: {reason} (expected a `content-type: application/cloudevents+json` \
         attribute, a `ce-specversion` attribute, or a CloudEvent JSON object as the data)"
    )]
    NotACloudEvent {
        /// What was found instead.
        reason: String,
    },
    /// A structured-mode content type other than JSON (e.g. `application/cloudevents+avro`).
    #[error("unsupported structured content type {0:?}: only JSON is supported")]
    UnsupportedFormat(String),
    /// A batch of events (`application/cloudevents-batch+json`); Pub/Sub carries one per message.
    #[error("batched CloudEvents ({0:?}) are not supported: send one event per message")]
    Batch(String),
    /// The structured-mode body is not a valid CloudEvent JSON document.
    #[error("invalid structured CloudEvent: {0}")]
    Structured(#[source] serde_json::Error),
    /// The `ce-specversion` attribute names no known version.
    #[error("unknown CloudEvents spec version {0:?} in attribute `ce-specversion`")]
    SpecVersion(String),
    /// The binary-mode attributes do not make a valid event (missing id, bad time, …).
    #[error("invalid binary-mode CloudEvent: {0}")]
    Binary(#[source] cloudevents::message::Error),
    /// An extension name breaks the CloudEvents naming rule (`a-z0-9`, at most 20 characters)
    /// or is a context attribute's name (`id`, `source`, …), which it would collide with.
    #[error(
        "invalid extension name {0:?}: CloudEvents allows a-z and 0-9, at most 20 characters, \
         and no context attribute's name"
    )]
    ExtensionName(String),
    /// A CloudEvents 0.3 structured event cannot carry bytes whose content type says JSON
    /// when they are not JSON: its readers decode such data as JSON and fail.
    #[error("data typed {0:?} is not JSON and cannot be written in a 0.3 structured event")]
    NotJsonData(String),
    /// Binary mode cannot carry this data content type: a receiver would read the
    /// `content-type` attribute as a structured-mode event.
    #[error("data content type {0:?} cannot be sent in binary mode; use structured mode")]
    BinaryContentType(String),
    /// The event could not be serialized.
    #[error("cannot serialize the event: {0}")]
    Serialize(#[source] cloudevents::message::Error),
}

impl BindingError {
    /// A low-cardinality name of the failure, recorded as `error.type` on spans.
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::NotACloudEvent { .. } => "not_a_cloudevent",
            Self::UnsupportedFormat(_) => "unsupported_format",
            Self::Batch(_) => "cloudevents_batch",
            Self::Structured(_) => "invalid_structured_event",
            Self::SpecVersion(_) => "unknown_spec_version",
            Self::Binary(_) => "invalid_binary_event",
            Self::ExtensionName(_) => "invalid_extension_name",
            Self::BinaryContentType(_) => "binary_content_type",
            Self::NotJsonData(_) => "not_json_data",
            Self::Serialize(_) => "serialize_error",
        }
    }
}

pub use crate::message::names::CONTEXT_ATTRIBUTE_NAMES;

/// Encodes `event` as a Pub/Sub message in the given mode.
///
/// Fails when an extension name breaks the CloudEvents naming rule, since peers may drop or
/// reject such events.
pub fn encode(event: &Event, encoding: Encoding) -> Result<Message, BindingError> {
    check_encodable(event, encoding)?;
    match encoding {
        // Serializing reads the event; no copy needed unless its bytes must be typed.
        Encoding::Structured if implied_content_type(event, encoding).is_none() => {
            let json = serde_json::to_vec(event).map_err(|e| BindingError::Serialize(e.into()))?;
            StructuredSerializer::set_structured_event(MessageBuilder::default(), json)
                .map_err(BindingError::Serialize)
        }
        // The SDK's binary serializer consumes the event.
        _ => serialize_owned(event.clone(), encoding),
    }
}

/// [`encode`] for an event the caller no longer needs: binary mode then moves the attributes
/// and data instead of copying them.
pub fn encode_owned(event: Event, encoding: Encoding) -> Result<Message, BindingError> {
    check_encodable(&event, encoding)?;
    serialize_owned(event, encoding)
}

/// Whether `event` has a faithful form in `encoding`.
fn check_encodable(event: &Event, encoding: Encoding) -> Result<(), BindingError> {
    check_extension_names(event)?;
    match encoding {
        Encoding::Binary => check_binary_content_type(event),
        Encoding::Structured => check_structured_data(event),
    }
}

/// Serializes an event [`check_encodable`] accepted.
fn serialize_owned(mut event: Event, encoding: Encoding) -> Result<Message, BindingError> {
    if let Some(content_type) = implied_content_type(&event, encoding) {
        event.set_datacontenttype(Some(content_type));
    }
    let builder = MessageBuilder::default();
    match encoding {
        Encoding::Structured => StructuredDeserializer::deserialize_structured(event, builder),
        Encoding::Binary => BinaryDeserializer::deserialize_binary(event, builder),
    }
    .map_err(BindingError::Serialize)
}

/// The content type to declare for data that has none, so that it reads back as the same
/// kind of data: the JSON format takes untyped data for JSON, so bytes need
/// `application/octet-stream` there; binary mode takes untyped data for bytes, so JSON and text
/// need theirs.
fn implied_content_type(event: &Event, encoding: Encoding) -> Option<&'static str> {
    if event.datacontenttype().is_some() {
        return None;
    }
    match (encoding, event.data()?) {
        (Encoding::Structured, Data::Binary(_)) => Some(OCTET_STREAM),
        (Encoding::Binary, Data::Json(_)) => Some("application/json"),
        (Encoding::Binary, Data::String(_)) => Some("text/plain"),
        _ => None,
    }
}

/// Bytes typed as JSON that are not JSON (binary mode delivers them so) have no 0.3 structured
/// form: the format base64-encodes them and its readers then parse them as JSON.
fn check_structured_data(event: &Event) -> Result<(), BindingError> {
    match (event.specversion(), event.datacontenttype(), event.data()) {
        (SpecVersion::V03, Some(ct), Some(Data::Binary(bytes)))
            if read_as_json(ct) && !is_json(bytes) =>
        {
            Err(BindingError::NotJsonData(excerpt(ct)))
        }
        _ => Ok(()),
    }
}

/// JSON that reads back: parsed in full, since skipping a value checks neither its strings'
/// UTF-8 nor its numbers' range.
fn is_json(bytes: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(bytes).is_ok()
}

fn check_binary_content_type(event: &Event) -> Result<(), BindingError> {
    match event.datacontenttype() {
        Some(ct) if starts_with_ignore_case(ct, CLOUDEVENTS_MEDIA_TYPE) => {
            Err(BindingError::BinaryContentType(excerpt(ct)))
        }
        _ => Ok(()),
    }
}

fn check_extension_names(event: &Event) -> Result<(), BindingError> {
    match event
        .iter_extensions()
        .find(|(name, _)| !names::is_extension_name(name))
    {
        Some((name, _)) => Err(BindingError::ExtensionName(excerpt(name))),
        None => Ok(()),
    }
}

/// Decodes a Pub/Sub message into an event, whichever encoding the publisher used.
///
/// An extension whose name breaks the CloudEvents naming rule (upper case folds to lower case
/// in binary mode; an underscore, more than 20 characters, a context attribute's name) is
/// not an extension the specification allows: it is left out, so that every decoded event can
/// be encoded and sent on.
pub fn decode(message: &Message) -> Result<Event, BindingError> {
    let mut event = decode_any(message)?;
    drop_invalid_extensions(&mut event);
    Ok(event)
}

fn drop_invalid_extensions(event: &mut Event) {
    let invalid: Vec<String> = event
        .iter_extensions()
        .filter(|(name, _)| !names::is_extension_name(name))
        .map(|(name, _)| name.to_owned())
        .collect();
    for name in invalid {
        event.remove_extension(&name);
    }
}

fn decode_any(message: &Message) -> Result<Event, BindingError> {
    let content_type = message.attribute_ignore_case(CONTENT_TYPE);
    if let Some(ct) = content_type
        && starts_with_ignore_case(ct, CLOUDEVENTS_MEDIA_TYPE)
    {
        if starts_with_ignore_case(ct, CLOUDEVENTS_BATCH_MEDIA_TYPE) {
            return Err(BindingError::Batch(excerpt(ct)));
        }
        if !is_json_media_type(ct) {
            return Err(BindingError::UnsupportedFormat(excerpt(ct)));
        }
        return decode_structured(message);
    }
    if let Some(version) = spec_version_attribute(message) {
        let spec_version = SpecVersion::try_from(version)
            .map_err(|_| BindingError::SpecVersion(excerpt(version)))?;
        let mut event = BinaryMessage {
            message,
            spec_version,
        }
        .into_event()
        .map_err(BindingError::Binary)?;
        type_binary_data(&mut event);
        return Ok(event);
    }
    if looks_like_structured_json(&message.data) {
        return decode_structured(message);
    }
    Err(BindingError::NotACloudEvent {
        reason: match content_type {
            Some(ct) => format!(
                "content type {:?}, no `ce-specversion` attribute",
                excerpt(ct)
            ),
            None if message.data.is_empty() => "empty message without attributes".to_owned(),
            None => "no content type, no `ce-specversion` attribute, and the data is not a \
                     CloudEvent JSON object"
                .to_owned(),
        },
    })
}

/// The JSON event format read straight from the message's bytes, as the SDK's structured
/// deserializer does after copying them into a `Vec` of its own.
fn decode_structured(message: &Message) -> Result<Event, BindingError> {
    serde_json::from_slice(&message.data).map_err(BindingError::Structured)
}

fn spec_version_attribute(message: &Message) -> Option<&str> {
    message.attributes.iter().find_map(|(k, v)| {
        strip_prefix_ignore_case(k, BINARY_PREFIX)
            .filter(|name| name.eq_ignore_ascii_case("specversion"))
            .map(|_| v.as_str())
    })
}

/// A JSON object with a `specversion` member: the hyperfleet-broker's content-type-less body.
fn looks_like_structured_json(data: &[u8]) -> bool {
    let first = data.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        return false;
    }
    #[derive(serde::Deserialize)]
    struct Probe<'a> {
        #[serde(borrow)]
        specversion: Option<std::borrow::Cow<'a, str>>,
    }
    serde_json::from_slice::<Probe<'_>>(data)
        .map(|p| p.specversion.is_some())
        .unwrap_or(false)
}

/// Binary mode delivers data as bytes; give it back the type its content type names.
fn type_binary_data(event: &mut Event) {
    let (Some(content_type), Some(Data::Binary(bytes))) = (event.datacontenttype(), event.data())
    else {
        return;
    };
    let typed = if read_as_json(content_type) {
        serde_json::from_slice(bytes).ok().map(Data::Json)
    } else if starts_with_ignore_case(content_type, "text/") {
        std::str::from_utf8(bytes)
            .ok()
            .map(|s| Data::String(s.to_owned()))
    } else {
        None
    };
    if let Some(typed) = typed {
        event.set_data_unchecked(typed);
    }
}

/// Whether the structured format's readers (the CloudEvents SDK) take data of this content type
/// as JSON: typing binary data the same way keeps an event the same in both encodings.
fn read_as_json(content_type: &str) -> bool {
    content_type.starts_with("application/json")
        || content_type.starts_with("text/json")
        || content_type.ends_with("+json")
}

/// Whether a structured-mode content type names the JSON format: its essence (no parameters,
/// any case) read by the same rule as data.
fn is_json_media_type(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    read_as_json(&essence.to_ascii_lowercase())
}

/// Most bytes of an untrusted value an error quotes.
const EXCERPT_LEN: usize = 64;

/// An untrusted value as an error quotes it: at most [`EXCERPT_LEN`] bytes, cut on a
/// character boundary, `…` marking the cut. Errors print it with `{:?}`, which escapes it.
fn excerpt(value: &str) -> String {
    if value.len() <= EXCERPT_LEN {
        return value.to_owned();
    }
    let mut end = EXCERPT_LEN;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &value[..end])
}

fn starts_with_ignore_case(value: &str, prefix: &str) -> bool {
    strip_prefix_ignore_case(value, prefix).is_some()
}

/// `key` without `prefix`, when it starts with it in any ASCII case.
fn strip_prefix_ignore_case<'k>(key: &'k str, prefix: &str) -> Option<&'k str> {
    let head = key.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &key[prefix.len()..])
}
