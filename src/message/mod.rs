//! The transport-neutral message: the shape of a Pub/Sub message, which the binding writes
//! and reads and every transport carries.

pub(crate) mod names;

use bytes::Bytes;
use std::collections::BTreeMap;

/// A message as a Pub/Sub-like transport carries it.
///
/// Attribute keys keep their case: Pub/Sub attribute keys are case-sensitive, and peers differ
/// (`content-type` in Google's binding, `Content-Type` in CloudEvents sdk-go).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    /// The message body.
    pub data: Bytes,
    /// Message attributes, ordered by key, case preserved.
    pub attributes: BTreeMap<String, String>,
    /// Messages with the same ordering key are delivered in publish order.
    pub ordering_key: Option<String>,
    /// The id the transport assigned; `None` until the message is published.
    pub id: Option<String>,
}

impl Message {
    /// A message with this body and no attributes.
    pub fn new(data: impl Into<Bytes>) -> Self {
        Self {
            data: data.into(),
            ..Self::default()
        }
    }

    /// Adds an attribute, keeping the key's case.
    pub fn with_attribute(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.attributes.insert(key.into(), value.into());
        self
    }

    /// Sets the ordering key (an empty key means none, as in Pub/Sub).
    pub fn with_ordering_key(mut self, key: impl Into<String>) -> Self {
        self.ordering_key = Some(key.into()).filter(|k| !k.is_empty());
        self
    }

    /// Looks an attribute up ignoring ASCII case, for keys whose case differs between peers.
    pub fn attribute_ignore_case(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }
}
