//! A received message together with the means to settle it.

use super::{Message, TransportError};
use async_trait::async_trait;
use std::fmt;

/// Settles one delivery with the transport that made it.
///
/// Implemented by each backend; consumed by [`Delivery::ack`] and [`Delivery::nack`].
#[async_trait]
pub trait Acknowledger: Send {
    /// The message was handled: do not deliver it again.
    async fn ack(self: Box<Self>) -> Result<(), TransportError>;
    /// The message was not handled: deliver it again (or dead-letter it).
    async fn nack(self: Box<Self>) -> Result<(), TransportError>;
}

/// One delivery of a message from a subscription.
pub struct Delivery {
    /// The message, with [`Message::id`] set.
    pub message: Message,
    /// 1 for the first delivery, 2 for the first redelivery, …; `None` when the backend does not
    /// count (Pub/Sub counts only on subscriptions with a dead-letter policy).
    pub delivery_attempt: Option<u32>,
    /// The backend's own span attributes of this delivery (RabbitMQ's delivery tag, …).
    pub attributes: Vec<opentelemetry::KeyValue>,
    acknowledger: Box<dyn Acknowledger>,
}

impl Delivery {
    /// A delivery settled through `acknowledger`.
    pub fn new(
        message: Message,
        delivery_attempt: Option<u32>,
        acknowledger: Box<dyn Acknowledger>,
    ) -> Self {
        Self {
            message,
            delivery_attempt,
            attributes: Vec::new(),
            acknowledger,
        }
    }

    /// Adds the backend's own span attributes (added to the receive span).
    pub fn with_attributes(mut self, attributes: Vec<opentelemetry::KeyValue>) -> Self {
        self.attributes = attributes;
        self
    }

    /// Acknowledges the message.
    pub async fn ack(self) -> Result<(), TransportError> {
        self.acknowledger.ack().await
    }

    /// Negatively acknowledges the message so that it is redelivered.
    pub async fn nack(self) -> Result<(), TransportError> {
        self.acknowledger.nack().await
    }

    /// Splits the delivery into its message and its settle handle.
    pub fn into_parts(self) -> (Message, Option<u32>, Box<dyn Acknowledger>) {
        (self.message, self.delivery_attempt, self.acknowledger)
    }
}

impl fmt::Debug for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Delivery")
            .field("message", &self.message)
            .field("delivery_attempt", &self.delivery_attempt)
            .finish_non_exhaustive()
    }
}
