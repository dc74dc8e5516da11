//! Binary-mode message → event, through the CloudEvents SDK's deserializer traits.

use super::{BINARY_PREFIX, CONTENT_TYPE, strip_prefix_ignore_case};
use crate::message::Message;
use crate::message::names::lowercase;
use cloudevents::event::SpecVersion;
use cloudevents::message::{
    BinaryDeserializer, BinarySerializer, MessageAttributeValue, Result as SdkResult,
};

/// Reads a binary-mode message: `ce-*` attributes, `content-type`, data.
pub(super) struct BinaryMessage<'a> {
    pub(super) message: &'a Message,
    pub(super) spec_version: SpecVersion,
}

impl BinaryDeserializer for BinaryMessage<'_> {
    fn deserialize_binary<R: Sized, V: BinarySerializer<R>>(self, visitor: V) -> SdkResult<R> {
        let attribute_names = self.spec_version.attribute_names();
        let mut visitor = visitor.set_spec_version(self.spec_version)?;
        let attributes = &self.message.attributes;
        for (i, (key, value)) in attributes.iter().enumerate() {
            // Keys differing only in case name one attribute: the first wins, as it does for
            // the content type that chose binary mode. A handful of keys: a scan, no allocation.
            if attributes
                .keys()
                .take(i)
                .any(|earlier| earlier.eq_ignore_ascii_case(key))
            {
                continue;
            }
            let value = MessageAttributeValue::String(value.clone());
            if key.eq_ignore_ascii_case(CONTENT_TYPE) {
                visitor = visitor.set_attribute("datacontenttype", value)?;
                continue;
            }
            let Some(name) = strip_prefix_ignore_case(key, BINARY_PREFIX) else {
                continue;
            };
            let name = lowercase(name);
            if name == "specversion" {
                continue;
            }
            visitor = if attribute_names.contains(&&*name) {
                visitor.set_attribute(&name, value)?
            } else {
                visitor.set_extension(&name, value)?
            };
        }
        if self.message.data.is_empty() {
            visitor.end()
        } else {
            visitor.end_with_data(self.message.data.to_vec())
        }
    }
}
