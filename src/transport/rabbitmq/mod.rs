//! RabbitMQ (feature `rabbitmq`, on lapin), wire-compatible with hyperfleet-broker.
//!
//! Topology as the Go broker's: a topic is a durable exchange named after it (fanout by
//! default), a subscription a durable queue `{topic}-{subscription}` bound to it
//! ([`RabbitMqConfig::queue_name`]). [`TracedSubscriber`](crate::TracedSubscriber) takes the
//! queue's name as its subscription. Publishing waits for the broker's confirm; a message no
//! queue takes is an error by default ([`Unroutable`]). Deliveries are settled with ack or
//! nack-with-requeue, never before their handler finished; the connection recovers by itself
//! (lapin's recovery replays the topology and consumers).
//!
//! The delivery attempt: a quorum queue counts deliveries (`x-delivery-count`); a classic queue
//! only flags a redelivery, so there a first delivery is attempt 1 and a redelivery unknown.

mod admin;
mod config;
mod error;
mod wire;

pub use admin::{QueueKind, RabbitMqAdmin};
pub use config::{BROKER_RABBITMQ_URL, ExchangeType, RabbitMqConfig, Unroutable};
pub use wire::WATERMILL_UUID;

use crate::transport::{
    Acknowledger, Delivery, DeliveryStream, ErrorCode, Message, Transport, TransportError,
};
use error::transport_error;
use futures::StreamExt;
use lapin::Confirmation;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions,
    BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions,
};
use lapin::types::FieldTable;
use lapin::{Channel, Connection, ConnectionProperties};
use opentelemetry::KeyValue;
use std::sync::Arc;

/// `messaging.system` for RabbitMQ.
pub const SYSTEM: &str = "rabbitmq";
/// `messaging.rabbitmq.destination.routing_key`.
pub const ROUTING_KEY: &str = "messaging.rabbitmq.destination.routing_key";
/// `messaging.rabbitmq.message.delivery_tag`.
pub const DELIVERY_TAG: &str = "messaging.rabbitmq.message.delivery_tag";

/// A RabbitMQ connection as a [`Transport`]. Clones share the connection.
#[derive(Clone)]
pub struct RabbitMqTransport {
    inner: Arc<Inner>,
}

struct Inner {
    connection: Connection,
    /// Publishing channel, in confirm mode.
    publisher: Channel,
    config: RabbitMqConfig,
    server_address: String,
}

impl RabbitMqTransport {
    /// Connects to the broker at `config.url`, with lapin's automatic recovery on.
    pub async fn connect(config: RabbitMqConfig) -> Result<Self, TransportError> {
        let server_address = config.describe();
        let doing = format!("connecting to RabbitMQ at {server_address}");
        let properties = ConnectionProperties::default().enable_auto_recover();
        let connection = Connection::connect(&config.url, properties)
            .await
            .map_err(|e| transport_error(&e, &doing))?;
        let publisher = connection
            .create_channel()
            .await
            .map_err(|e| transport_error(&e, "opening the publishing channel"))?;
        publisher
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(|e| transport_error(&e, "turning publisher confirms on"))?;
        let host = server_address
            .rsplit_once(':')
            .map_or(server_address.as_str(), |(h, _)| h)
            .to_owned();
        Ok(Self {
            inner: Arc::new(Inner {
                connection,
                publisher,
                config,
                server_address: host,
            }),
        })
    }

    /// The settings it connected with.
    pub fn config(&self) -> &RabbitMqConfig {
        &self.inner.config
    }

    pub(crate) fn connection(&self) -> &Connection {
        &self.inner.connection
    }
}

impl std::fmt::Debug for RabbitMqTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RabbitMqTransport")
            .field("server", &self.inner.server_address)
            .finish_non_exhaustive()
    }
}

impl Transport for RabbitMqTransport {
    fn system(&self) -> &'static str {
        SYSTEM
    }

    fn server_address(&self) -> Option<&str> {
        Some(&self.inner.server_address)
    }

    async fn publish(&self, topic: &str, message: Message) -> Result<String, TransportError> {
        let properties = wire::properties(&message);
        // RabbitMQ assigns no id: the message is known by its event's.
        let id = wire::event_id(&message).unwrap_or_default();
        let config = &self.inner.config;
        let options = BasicPublishOptions {
            mandatory: true,
            ..BasicPublishOptions::default()
        };
        let doing = format!("publishing to exchange {topic}");
        let publisher = &self.inner.publisher;
        // While the connection recovers, lapin would hold the publish: fail it now instead.
        if !publisher.status().connected() {
            return Err(TransportError::new(
                ErrorCode::Unavailable,
                format!(
                    "{doing}: the connection to {} is down",
                    self.inner.server_address
                ),
            ));
        }
        let send_and_confirm = async {
            publisher
                .basic_publish(
                    topic.into(),
                    config.routing_key.as_str().into(),
                    options,
                    &message.data,
                    properties,
                )
                .await?
                .await
        };
        let confirm = tokio::time::timeout(config.publish_timeout, send_and_confirm)
            .await
            .map_err(|_| {
                TransportError::new(
                    ErrorCode::DeadlineExceeded,
                    format!("{doing}: no confirm within {:?}", config.publish_timeout),
                )
            })?
            .map_err(|e| transport_error(&e, &doing))?;
        match confirm {
            Confirmation::Ack(None) | Confirmation::NotRequested => Ok(id),
            Confirmation::Ack(Some(_)) if config.unroutable == Unroutable::Accept => Ok(id),
            Confirmation::Ack(Some(_)) => Err(TransportError::new(
                ErrorCode::FailedPrecondition,
                format!("no queue is bound to exchange {topic}: the message was not routed"),
            )),
            Confirmation::Nack(_) => Err(TransportError::new(
                ErrorCode::Unavailable,
                format!("the broker refused the message for exchange {topic}"),
            )),
        }
    }

    async fn subscribe(&self, subscription: &str) -> Result<DeliveryStream, TransportError> {
        let doing = format!("consuming from queue {subscription}");
        let channel = self
            .inner
            .connection
            .create_channel()
            .await
            .map_err(|e| transport_error(&e, &doing))?;
        channel
            .basic_qos(self.inner.config.prefetch, BasicQosOptions::default())
            .await
            .map_err(|e| transport_error(&e, &doing))?;
        let consumer = channel
            .basic_consume(
                subscription.into(),
                "".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(|e| transport_error(&e, &doing))?;
        let tag = consumer.tag();
        let channel = Arc::new(ConsumerChannel(channel));
        let settling = Arc::clone(&channel);
        let deliveries = consumer.map(move |delivery| {
            let delivery = delivery.map_err(|e| transport_error(&e, &doing))?;
            Ok(into_delivery(delivery, Arc::clone(&settling)))
        });
        // Closing stops the deliveries; the channel stays open until the last of them is
        // settled, so that their acks still reach the broker.
        Ok(DeliveryStream::new(deliveries.boxed()).on_close(move || {
            Box::pin(async move {
                let _ = channel
                    .0
                    .basic_cancel(tag, BasicCancelOptions::default())
                    .await;
            })
        }))
    }
}

/// A consumer's channel, closed once nothing uses it: neither the stream nor an unsettled
/// delivery.
struct ConsumerChannel(Channel);

impl Drop for ConsumerChannel {
    fn drop(&mut self) {
        let channel = self.0.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = channel.close(200, "subscriber closed".into()).await;
            });
        }
    }
}

fn into_delivery(delivery: lapin::message::Delivery, channel: Arc<ConsumerChannel>) -> Delivery {
    let lapin::message::Delivery {
        delivery_tag,
        routing_key,
        redelivered,
        properties,
        data,
        acker,
        ..
    } = delivery;
    let attempt = wire::delivery_attempt(&properties, redelivered);
    let message = wire::message(data, &properties);
    let mut attributes = vec![KeyValue::new(
        DELIVERY_TAG,
        i64::try_from(delivery_tag).unwrap_or(i64::MAX),
    )];
    if !routing_key.as_str().is_empty() {
        attributes.push(KeyValue::new(ROUTING_KEY, routing_key.to_string()));
    }
    Delivery::new(message, attempt, Box::new(RabbitMqAcker(acker, channel)))
        .with_attributes(attributes)
}

/// Settles through the delivery's channel (kept open meanwhile): ack, or nack with requeue.
struct RabbitMqAcker(lapin::Acker, #[allow(dead_code)] Arc<ConsumerChannel>);

#[async_trait::async_trait]
impl Acknowledger for RabbitMqAcker {
    async fn ack(self: Box<Self>) -> Result<(), TransportError> {
        self.0
            .ack(BasicAckOptions::default())
            .await
            .map(|_| ())
            .map_err(|e| transport_error(&e, "acknowledging"))
    }

    async fn nack(self: Box<Self>) -> Result<(), TransportError> {
        let options = BasicNackOptions {
            requeue: true,
            ..BasicNackOptions::default()
        };
        self.0
            .nack(options)
            .await
            .map(|_| ())
            .map_err(|e| transport_error(&e, "negatively acknowledging"))
    }
}
