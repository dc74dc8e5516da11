//! Opt-in declaration of hyperfleet-broker's topology: exchanges for topics, queues for
//! subscriptions.

use super::error::transport_error;
use super::{ExchangeType, RabbitMqTransport};
use crate::transport::{SubscriptionConfig, TransportError};
use lapin::ExchangeKind;
use lapin::options::{
    ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};

/// The kind of queue a subscription gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum QueueKind {
    /// A classic queue with no arguments: hyperfleet-broker's, so that Rust and Go services
    /// share it (declaring a queue with other arguments than it has fails).
    #[default]
    Classic,
    /// A quorum queue with a delivery limit (the subscription's dead-letter policy's attempts,
    /// else 5) and a dead-letter exchange with a queue of the same name: the policy's topic,
    /// else `{queue}-dlq`; deliveries then carry their attempt (`x-delivery-count`).
    Quorum,
}

/// Declares exchanges and queues (all durable) on a transport's connection.
#[derive(Debug, Clone)]
pub struct RabbitMqAdmin {
    transport: RabbitMqTransport,
}

impl RabbitMqAdmin {
    /// Declarations through `transport`'s connection.
    pub fn new(transport: &RabbitMqTransport) -> Self {
        Self {
            transport: transport.clone(),
        }
    }

    /// Declares the exchange of `topic` unless it exists.
    pub async fn create_topic_if_missing(&self, topic: &str) -> Result<(), TransportError> {
        let kind = match self.transport.config().exchange_type {
            ExchangeType::Fanout => ExchangeKind::Fanout,
            ExchangeType::Topic => ExchangeKind::Topic,
            ExchangeType::Direct => ExchangeKind::Direct,
        };
        self.declare_exchange(topic, kind).await
    }

    /// Declares the queue `queue` unless it exists and binds it to `topic`'s exchange with
    /// the routing key. A quorum queue also gets its dead-letter exchange and queue.
    pub async fn create_subscription_if_missing(
        &self,
        queue: &str,
        topic: &str,
        kind: QueueKind,
        config: &SubscriptionConfig,
    ) -> Result<(), TransportError> {
        let mut arguments = FieldTable::default();
        if kind == QueueKind::Quorum {
            // The dead-letter policy's topic, else `{queue}-dlq`: an exchange with a queue of
            // the same name on it, so that no dead letter is lost.
            let dead_letters = config
                .dead_letter
                .as_ref()
                .map_or_else(|| format!("{queue}-dlq"), |policy| policy.topic.clone());
            self.declare_exchange(&dead_letters, ExchangeKind::Fanout)
                .await?;
            self.declare_queue(&dead_letters, FieldTable::default())
                .await?;
            self.bind(&dead_letters, &dead_letters, "").await?;
            let limit = config
                .dead_letter
                .as_ref()
                .map_or(5, |policy| policy.max_delivery_attempts);
            arguments.insert(
                "x-queue-type".into(),
                AMQPValue::LongString("quorum".into()),
            );
            // The limit counts redeliveries: `attempts` deliveries are the first and
            // `attempts - 1` more.
            let redeliveries = limit.saturating_sub(1);
            arguments.insert(
                "x-delivery-limit".into(),
                AMQPValue::LongInt(i32::try_from(redeliveries).unwrap_or(i32::MAX)),
            );
            arguments.insert(
                "x-dead-letter-exchange".into(),
                AMQPValue::LongString(dead_letters.into()),
            );
        }
        self.declare_queue(queue, arguments).await?;
        let routing_key = self.transport.config().routing_key.clone();
        self.bind(queue, topic, &routing_key).await
    }

    /// Deletes the queue `queue` with the messages it holds (a missing one is not an error;
    /// a quorum queue's dead-letter queue stays).
    pub async fn delete_subscription(&self, queue: &str) -> Result<(), TransportError> {
        self.on_channel(&format!("deleting queue {queue}"), |channel| async move {
            channel
                .queue_delete(queue.into(), QueueDeleteOptions::default())
                .await
                .map(|_| ())
        })
        .await
    }

    /// Deletes the exchange of `topic` (a missing one is not an error).
    pub async fn delete_topic(&self, topic: &str) -> Result<(), TransportError> {
        self.on_channel(
            &format!("deleting exchange {topic}"),
            |channel| async move {
                channel
                    .exchange_delete(topic.into(), ExchangeDeleteOptions::default())
                    .await
            },
        )
        .await
    }

    /// Runs one operation on a channel of its own (a failed operation closes its channel),
    /// then closes the channel.
    async fn on_channel<F, Fut>(&self, doing: &str, operation: F) -> Result<(), TransportError>
    where
        F: FnOnce(lapin::Channel) -> Fut,
        Fut: Future<Output = lapin::Result<()>>,
    {
        let channel = self
            .transport
            .connection()
            .create_channel()
            .await
            .map_err(|e| transport_error(&e, "opening an admin channel"))?;
        let done = operation(channel.clone())
            .await
            .map_err(|e| transport_error(&e, doing));
        let _ = channel.close(200, "done".into()).await;
        done
    }

    async fn declare_exchange(&self, name: &str, kind: ExchangeKind) -> Result<(), TransportError> {
        let options = ExchangeDeclareOptions {
            durable: true,
            ..ExchangeDeclareOptions::default()
        };
        self.on_channel(
            &format!("declaring exchange {name}"),
            |channel| async move {
                channel
                    .exchange_declare(name.into(), kind, options, FieldTable::default())
                    .await
            },
        )
        .await
    }

    async fn declare_queue(&self, name: &str, arguments: FieldTable) -> Result<(), TransportError> {
        let options = QueueDeclareOptions {
            durable: true,
            ..QueueDeclareOptions::default()
        };
        self.on_channel(&format!("declaring queue {name}"), |channel| async move {
            channel
                .queue_declare(name.into(), options, arguments)
                .await
                .map(|_| ())
        })
        .await
    }

    async fn bind(
        &self,
        queue: &str,
        exchange: &str,
        routing_key: &str,
    ) -> Result<(), TransportError> {
        let doing = format!("binding queue {queue} to {exchange}");
        self.on_channel(&doing, |channel| async move {
            channel
                .queue_bind(
                    queue.into(),
                    exchange.into(),
                    routing_key.into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await
        })
        .await
    }
}
