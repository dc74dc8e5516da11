//! The pluggable transport: publish messages to topics, pull deliveries from subscriptions.
//!
//! A [`Transport`] moves [`Message`]s; it knows nothing of CloudEvents or tracing. The
//! [`binding`](crate::binding) turns events into messages and back, and the
//! [`TracedPublisher`](crate::TracedPublisher) / [`TracedSubscriber`](crate::TracedSubscriber)
//! add the spans.

mod delivery;
mod error;
pub mod limits;
pub mod memory;
#[cfg(feature = "pubsub")]
pub mod pubsub;
#[cfg(feature = "rabbitmq")]
pub mod rabbitmq;
mod stream;
mod subscription_config;

pub use crate::message::Message;
pub use delivery::{Acknowledger, Delivery};
pub use error::{ErrorCode, TransportError};
pub use stream::DeliveryStream;
pub use subscription_config::{DeadLetterPolicy, SubscriptionConfig};

use std::future::Future;

/// A Pub/Sub-like messaging backend.
///
/// Used generically, so its calls return plain futures: no box per message.
pub trait Transport: Send + Sync + 'static {
    /// The `messaging.system` attribute value for spans over this transport (`gcp_pubsub` for
    /// Google Cloud Pub/Sub).
    fn system(&self) -> &'static str;

    /// The `server.address` attribute value, when the transport talks to a server.
    fn server_address(&self) -> Option<&str> {
        None
    }

    /// The `server.port` attribute value, when the transport talks to a server.
    fn server_port(&self) -> Option<u16> {
        None
    }

    /// `messaging.destination.name` under the current messaging conventions, when this
    /// system's conventions name the destination otherwise than by its topic: RabbitMQ's
    /// `{exchange}:{routing key}` on the producer side and `{exchange}:{routing key}:{queue}`
    /// on the consumer side (`subscription` is the queue), which takes the place of the
    /// subscription attribute. `None`, the default: the topic, with the subscription apart.
    fn destination_name(&self, topic: &str, subscription: Option<&str>) -> Option<String> {
        let _ = (topic, subscription);
        None
    }

    /// Publishes one message to `topic` and returns the id the transport assigned to it.
    fn publish(
        &self,
        topic: &str,
        message: Message,
    ) -> impl Future<Output = Result<String, TransportError>> + Send;

    /// Publishes several messages to `topic`; one result per message, in order.
    ///
    /// The default publishes them one after another; backends with a batch API override it.
    fn publish_batch(
        &self,
        topic: &str,
        messages: Vec<Message>,
    ) -> impl Future<Output = Vec<Result<String, TransportError>>> + Send {
        async move {
            let mut results = Vec::with_capacity(messages.len());
            for message in messages {
                results.push(self.publish(topic, message).await);
            }
            results
        }
    }

    /// Starts pulling from `subscription`. Several streams on one subscription compete for its
    /// messages, as Pub/Sub subscribers do.
    fn subscribe(
        &self,
        subscription: &str,
    ) -> impl Future<Output = Result<DeliveryStream, TransportError>> + Send;
}

impl<T: Transport> Transport for std::sync::Arc<T> {
    fn system(&self) -> &'static str {
        (**self).system()
    }
    fn server_address(&self) -> Option<&str> {
        (**self).server_address()
    }
    fn server_port(&self) -> Option<u16> {
        (**self).server_port()
    }
    fn destination_name(&self, topic: &str, subscription: Option<&str>) -> Option<String> {
        (**self).destination_name(topic, subscription)
    }
    async fn publish(&self, topic: &str, message: Message) -> Result<String, TransportError> {
        (**self).publish(topic, message).await
    }
    async fn publish_batch(
        &self,
        topic: &str,
        messages: Vec<Message>,
    ) -> Vec<Result<String, TransportError>> {
        (**self).publish_batch(topic, messages).await
    }
    async fn subscribe(&self, subscription: &str) -> Result<DeliveryStream, TransportError> {
        (**self).subscribe(subscription).await
    }
}
