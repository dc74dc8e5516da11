//! Event → message, through the CloudEvents SDK's serializer traits.

use crate::binding::{BINARY_PREFIX, CONTENT_TYPE, STRUCTURED_CONTENT_TYPE};
use crate::message::Message;
use cloudevents::event::SpecVersion;
use cloudevents::message::{
    BinarySerializer, MessageAttributeValue, Result as SdkResult, StructuredSerializer,
};

/// Builds a [`Message`] from the SDK's serializer callbacks.
#[derive(Debug, Default)]
pub(super) struct MessageBuilder {
    message: Message,
}

impl MessageBuilder {
    fn attribute(mut self, name: &str, value: String) -> Self {
        let key = if name == "datacontenttype" {
            CONTENT_TYPE.to_owned()
        } else {
            [BINARY_PREFIX, name].concat()
        };
        self.message.attributes.insert(key, value);
        self
    }
}

impl BinarySerializer<Message> for MessageBuilder {
    fn set_spec_version(self, spec_version: SpecVersion) -> SdkResult<Self> {
        Ok(self.attribute("specversion", spec_version.to_string()))
    }

    fn set_attribute(self, name: &str, value: MessageAttributeValue) -> SdkResult<Self> {
        Ok(self.attribute(name, text(value)))
    }

    fn set_extension(self, name: &str, value: MessageAttributeValue) -> SdkResult<Self> {
        Ok(self.attribute(name, text(value)))
    }

    fn end_with_data(mut self, bytes: Vec<u8>) -> SdkResult<Message> {
        self.message.data = bytes.into();
        Ok(self.message)
    }

    fn end(self) -> SdkResult<Message> {
        Ok(self.message)
    }
}

/// An attribute's text: a string as it is, moved rather than formatted into a copy; anything
/// else as the SDK writes it.
fn text(value: MessageAttributeValue) -> String {
    match value {
        MessageAttributeValue::String(text) => text,
        other => other.to_string(),
    }
}

impl StructuredSerializer<Message> for MessageBuilder {
    fn set_structured_event(mut self, bytes: Vec<u8>) -> SdkResult<Message> {
        self.message.data = bytes.into();
        self.message
            .attributes
            .insert(CONTENT_TYPE.to_owned(), STRUCTURED_CONTENT_TYPE.to_owned());
        Ok(self.message)
    }
}
