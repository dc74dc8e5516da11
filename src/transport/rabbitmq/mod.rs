//! RabbitMQ (feature `rabbitmq`, on lapin), wire-compatible with hyperfleet-broker.
//!
//! Topology as the Go broker's: a topic is a durable exchange named after it (fanout by
//! default), a subscription a durable queue `{topic}-{subscription}` bound to it
//! ([`RabbitMqConfig::queue_name`]). [`TracedSubscriber`](crate::TracedSubscriber) takes the
//! queue's name as its subscription. Publishing waits for the broker's confirm; a message no
//! queue takes is an error by default ([`Unroutable`]). Deliveries are settled with ack or
//! nack-with-requeue, never before their handler finished; the connection recovers by itself
//! (lapin's recovery replays the channels and consumers, and what [`RabbitMqAdmin`] declared
//! is declared again where the broker lost it).
//!
//! The delivery attempt: a quorum queue counts deliveries (`x-delivery-count`); a classic queue
//! only flags a redelivery, so there a first delivery is attempt 1 and a redelivery unknown,
//! unless [`Retry`] is on, whose retried copies carry their attempt.

mod admin;
mod cluster;
mod config;
mod error;
mod retry;
mod wire;

pub use admin::{QueueKind, RabbitMqAdmin};
pub use config::{BROKER_RABBITMQ_URL, ExchangeType, RabbitMqConfig, Unroutable};
pub use retry::{ATTEMPT_HEADER, Retry};
pub use wire::WATERMILL_UUID;

use crate::sync::lock;
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
use std::sync::{Arc, Mutex};
use std::time::Duration;

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
    /// Publishing channel, in confirm mode; replaced by a fresh one when the broker nacks a
    /// publish (see [`Inner::renew_publisher`]).
    publisher: Mutex<Channel>,
    config: RabbitMqConfig,
    /// The cluster's nodes; `server.address` is the one connected to last.
    nodes: Arc<cluster::Nodes>,
    /// What [`RabbitMqAdmin`] declared, declared again where the broker lost it.
    declared: admin::Declared,
}

impl RabbitMqTransport {
    /// Connects to the broker at `config.url` (the first of its nodes that answers), with
    /// lapin's automatic recovery on: a lost connection is made again, to the next node of
    /// the list, and the channels and consumers are replayed there.
    pub async fn connect(config: RabbitMqConfig) -> Result<Self, TransportError> {
        let nodes = Arc::new(cluster::Nodes::parse(&config.url)?);
        // Retry the connection promptly and for long (every 5 s at most, for over an hour):
        // lapin's default gives up after 16 growing waits, which a slow broker restart outlasts.
        let properties = ConnectionProperties::default()
            .configure_backoff(|backoff| {
                backoff
                    .with_min_delay(Duration::from_millis(100))
                    .with_max_delay(Duration::from_secs(5))
                    .with_max_times(1000)
            })
            .enable_auto_recover();
        let connection = nodes.connect(properties).await?;
        let publisher = Mutex::new(open_publisher(&connection).await?);
        Ok(Self {
            inner: Arc::new(Inner {
                connection,
                publisher,
                config,
                nodes,
                declared: admin::Declared::default(),
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

    fn declared(&self) -> &admin::Declared {
        &self.inner.declared
    }
}

impl std::fmt::Debug for RabbitMqTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RabbitMqTransport")
            .field("server", &self.inner.nodes.describe())
            .finish_non_exhaustive()
    }
}

impl Transport for RabbitMqTransport {
    fn system(&self) -> &'static str {
        SYSTEM
    }

    fn server_address(&self) -> Option<&str> {
        Some(self.inner.nodes.host())
    }

    fn server_port(&self) -> Option<u16> {
        Some(self.inner.nodes.port())
    }

    fn destination_name(&self, topic: &str, queue: Option<&str>) -> Option<String> {
        Some(config::destination_name(
            topic,
            &self.inner.config.routing_key,
            queue,
        ))
    }

    async fn publish(&self, topic: &str, message: Message) -> Result<String, TransportError> {
        // RabbitMQ assigns no id: the message is known by its event's.
        let id = wire::event_id(&message);
        let properties = wire::properties(&message, id.as_deref());
        let id = id.unwrap_or_default();
        let config = &self.inner.config;
        // Mandatory only when an unroutable message is an error: it costs the broker about
        // a tenth of its work per message (BENCHMARKS.md).
        let options = BasicPublishOptions {
            mandatory: config.unroutable == Unroutable::Error,
            ..BasicPublishOptions::default()
        };
        // Written out only when a publish fails.
        let doing = || format!("publishing to exchange {topic}");
        let publisher = &self.inner.usable_publisher().await;
        // While the connection recovers, lapin would hold the publish: fail it now instead.
        if !publisher.status().connected() {
            return Err(TransportError::new(
                ErrorCode::Unavailable,
                format!(
                    "{}: the connection to {} is down",
                    doing(),
                    self.inner.nodes.host()
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
                    format!(
                        "{}: no confirm within {:?}",
                        doing(),
                        config.publish_timeout
                    ),
                )
            })?
            .map_err(|e| transport_error(&e, &doing()));
        let confirm = match confirm {
            Ok(confirm) => confirm,
            Err(error) => return Err(after_failed_publish(&self.inner, topic, error)),
        };
        match confirm {
            Confirmation::Ack(None) | Confirmation::NotRequested => Ok(id),
            Confirmation::Ack(Some(_)) if config.unroutable == Unroutable::Accept => Ok(id),
            Confirmation::Ack(Some(_)) => Err(TransportError::new(
                ErrorCode::FailedPrecondition,
                format!("no queue is bound to exchange {topic}: the message was not routed"),
            )),
            Confirmation::Nack(_) => {
                self.inner.renew_publisher(publisher).await;
                Err(TransportError::new(
                    ErrorCode::Unavailable,
                    format!("the broker refused the message for exchange {topic}"),
                ))
            }
        }
    }

    async fn subscribe(&self, subscription: &str) -> Result<DeliveryStream, TransportError> {
        let first = consume(&self.inner, subscription, true).await?;
        let current: Current = Arc::new(Mutex::new(Some(first.handle())));
        let state = Resubscribe {
            inner: Arc::clone(&self.inner),
            queue: subscription.to_owned(),
            consuming: Some(first),
            current: Arc::clone(&current),
            backoff: MIN_BACKOFF,
            declare: false,
        };
        let deliveries = futures::stream::unfold(state, Resubscribe::next);
        // Closing stops the deliveries; each channel stays open until the last of its
        // deliveries is settled, so that their acks still reach the broker.
        Ok(DeliveryStream::new(deliveries.boxed()).on_close(move || {
            Box::pin(async move {
                let handle = lock(&current).take();
                if let Some((channel, tag)) = handle {
                    let _ = channel
                        .0
                        .basic_cancel(tag, BasicCancelOptions::default())
                        .await;
                }
            })
        }))
    }
}

/// A channel in confirm mode, for publishing.
async fn open_publisher(connection: &Connection) -> Result<Channel, TransportError> {
    let channel = connection
        .create_channel()
        .await
        .map_err(|e| transport_error(&e, "opening the publishing channel"))?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .map_err(|e| transport_error(&e, "turning publisher confirms on"))?;
    Ok(channel)
}

/// What a failed publish to `topic` returns, and what it starts: when the broker has no such
/// exchange (`NOT_FOUND` naming it), what an admin declared for it is declared again in the
/// background, for the next publish. A `NOT_FOUND` naming another exchange is another
/// publish's: the broker closed the shared channel under this one, which is `UNAVAILABLE`.
fn after_failed_publish(inner: &Arc<Inner>, topic: &str, error: TransportError) -> TransportError {
    if error.code() != ErrorCode::NotFound {
        return error;
    }
    if !error.message().contains(&format!("'{topic}'")) {
        return TransportError::new(ErrorCode::Unavailable, error.message());
    }
    let (inner, topic) = (Arc::clone(inner), topic.to_owned());
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(async move {
            inner
                .declared
                .declare_again(&inner.connection, None, Some(&topic))
                .await;
        });
    }
    error
}

impl Inner {
    /// The publishing channel, a fresh one first when the broker closed it (a publish to a
    /// missing exchange does) while the connection lives and lapin is not recovering it.
    async fn usable_publisher(&self) -> Channel {
        let publisher = self.publishing_channel();
        let status = publisher.status();
        if !status.connected() && !status.reconnecting() && self.connection.status().connected() {
            self.renew_publisher(&publisher).await;
            return self.publishing_channel();
        }
        publisher
    }

    fn publishing_channel(&self) -> Channel {
        lock(&self.publisher).clone()
    }

    /// Replaces `failed` with a fresh publishing channel, unless another publish did already.
    /// After a failover a recovered channel can be nacked every publish for good while a new
    /// channel on the same connection is confirmed (seen with quorum queues on RabbitMQ 3.10).
    async fn renew_publisher(&self, failed: &Channel) {
        if lock(&self.publisher).id() != failed.id() {
            return;
        }
        let fresh = match open_publisher(&self.connection).await {
            Ok(fresh) => fresh,
            Err(error) => {
                tracing::warn!(%error, "cannot open a new publishing channel; keeping the old one");
                return;
            }
        };
        // The channel that is not kept: the old one, or the fresh one if another publish
        // renewed the channel meanwhile.
        let unused = {
            let mut current = lock(&self.publisher);
            if current.id() == failed.id() {
                std::mem::replace(&mut *current, fresh)
            } else {
                fresh
            }
        };
        let _ = unused
            .close(200, "publishing channel replaced".into())
            .await;
    }
}

/// First wait before consuming again after the broker cancelled the consumer, doubled up to
/// [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// The consumer `close` cancels: its channel and tag; `None` once closed.
type Current = Arc<Mutex<Option<(Arc<ConsumerChannel>, lapin::types::ShortString)>>>;

/// A consumer on its own channel.
struct Consuming {
    channel: Arc<ConsumerChannel>,
    consumer: lapin::Consumer,
    doing: String,
}

impl Consuming {
    fn handle(&self) -> (Arc<ConsumerChannel>, lapin::types::ShortString) {
        (Arc::clone(&self.channel), self.consumer.tag())
    }
}

/// Opens a channel with the prefetch and consumes `queue` on it.
/// With `declare_retry`, the retry queues ([`Retry`]) are declared first: when subscribing,
/// and after the queue was found gone, not on every try (declaring durable queues the broker
/// is still recovering would race that recovery).
async fn consume(
    inner: &Inner,
    queue: &str,
    declare_retry: bool,
) -> Result<Consuming, TransportError> {
    let doing = format!("consuming from queue {queue}");
    let channel = inner
        .connection
        .create_channel()
        .await
        .map_err(|e| transport_error(&e, &doing))?;
    channel
        .basic_qos(inner.config.prefetch, BasicQosOptions::default())
        .await
        .map_err(|e| transport_error(&e, &doing))?;
    if let Some(retry) = inner.config.retry.as_ref().filter(|_| declare_retry) {
        retry::declare(&channel, queue, retry)
            .await
            .map_err(|e| transport_error(&e, &format!("declaring the retry queues of {queue}")))?;
    }
    let consumer = channel
        .basic_consume(
            queue.into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(|e| transport_error(&e, &doing))?;
    Ok(Consuming {
        channel: Arc::new(ConsumerChannel(channel)),
        consumer,
        doing,
    })
}

/// The delivery stream: one consumer after another, so that one the broker cancels (its
/// queue deleted, a node gone) or that fails is replaced, with backoff, until the stream is
/// closed. Connection loss itself is lapin's recovery's; the stream never ends with an error.
struct Resubscribe {
    inner: Arc<Inner>,
    queue: String,
    consuming: Option<Consuming>,
    /// What `close` cancels; `None` once closed.
    current: Current,
    backoff: Duration,
    /// Whether the next consume declares the retry queues first: after the queue was found
    /// gone.
    declare: bool,
}

impl Resubscribe {
    async fn next(mut self) -> Option<(Result<Delivery, TransportError>, Self)> {
        loop {
            if lock(&self.current).is_none() {
                return None;
            }
            if let Some(consuming) = &mut self.consuming {
                match consuming.consumer.next().await {
                    Some(Ok(delivery)) => {
                        self.backoff = MIN_BACKOFF;
                        let channel = Arc::clone(&consuming.channel);
                        let delivery = into_delivery(delivery, channel, &self.inner, &self.queue);
                        return Some((Ok(delivery), self));
                    }
                    // The consumer broke: consume again, with backoff, rather than end.
                    Some(Err(error)) => {
                        let error = transport_error(&error, &consuming.doing);
                        tracing::warn!(%error, "RabbitMQ consumer failed; consuming again");
                        self.consuming = None;
                    }
                    // Cancelled: by `close` (then `current` is empty), or by the broker.
                    None => self.consuming = None,
                }
                continue;
            }
            tokio::time::sleep(self.backoff).await;
            self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
            let consuming = match consume(&self.inner, &self.queue, self.declare).await {
                Ok(consuming) => {
                    self.declare = false;
                    consuming
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot consume yet; trying again");
                    // The queue is gone (with the broker's definitions, say): declare again
                    // what it needs before the next try. Only then: declaring a queue the
                    // broker is still recovering would race its recovery.
                    if error.code() == ErrorCode::NotFound {
                        self.declare = true;
                        self.inner
                            .declared
                            .declare_again(&self.inner.connection, Some(&self.queue), None)
                            .await;
                    }
                    continue;
                }
            };
            {
                let mut current = lock(&self.current);
                if current.is_none() {
                    return None;
                }
                *current = Some(consuming.handle());
                drop(current);
                self.consuming = Some(consuming);
            }
        }
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

fn into_delivery(
    delivery: lapin::message::Delivery,
    channel: Arc<ConsumerChannel>,
    inner: &Arc<Inner>,
    queue: &str,
) -> Delivery {
    let lapin::message::Delivery {
        delivery_tag,
        routing_key,
        redelivered,
        properties,
        data,
        acker,
        ..
    } = delivery;
    let retried = retry::attempt(&properties);
    let attempt = retried.or_else(|| wire::delivery_attempt(&properties, redelivered));
    let message = wire::message(data, &properties);
    let retry = inner.config.retry.map(|policy| Retrying {
        inner: Arc::clone(inner),
        queue: queue.to_owned(),
        policy,
        attempt: attempt.unwrap_or(1),
        data: message.data.clone(),
        properties,
    });
    let mut attributes = vec![KeyValue::new(
        DELIVERY_TAG,
        i64::try_from(delivery_tag).unwrap_or(i64::MAX),
    )];
    if !routing_key.as_str().is_empty() {
        attributes.push(KeyValue::new(ROUTING_KEY, routing_key.to_string()));
    }
    let acker = RabbitMqAcker {
        acker,
        channel,
        retry,
    };
    Delivery::new(message, attempt, Box::new(acker)).with_attributes(attributes)
}

/// Settles through the delivery's channel (kept open meanwhile): ack, or nack with requeue
/// (or, with [`Retry`] on, a copy to the wait queue of its attempt or the dead-letter queue,
/// then ack). Dropped unsettled (a run aborted, a panic outside the handler), it nacks with
/// requeue, as Pub/Sub clients do, instead of holding a prefetch slot until the channel closes.
struct RabbitMqAcker {
    acker: lapin::Acker,
    channel: Arc<ConsumerChannel>,
    retry: Option<Retrying>,
}

/// What a failed delivery needs to be sent on to its retry: its body and properties as they
/// came, and where it is.
struct Retrying {
    inner: Arc<Inner>,
    queue: String,
    policy: Retry,
    attempt: u32,
    data: bytes::Bytes,
    properties: lapin::BasicProperties,
}

impl Retrying {
    /// Publishes the copy that carries the next attempt; `true` once it is confirmed.
    async fn send_on(&self) -> bool {
        let next = self.policy.next_queue(&self.queue, self.attempt);
        let sent = retry::send_to(
            &self.inner.usable_publisher().await,
            &next,
            &self.data,
            &self.properties,
            self.attempt.saturating_add(1),
            self.inner.config.publish_timeout,
        )
        .await;
        if !sent {
            tracing::warn!(queue = %self.queue, to = %next, "cannot send a failed message on; nacking it");
        }
        sent
    }
}

impl Drop for RabbitMqAcker {
    fn drop(&mut self) {
        // Used (acked or nacked, even by a settlement cut short) or on a closed channel:
        // nothing to send back. lapin sends at most one settlement per delivery.
        if !self.acker.usable() {
            return;
        }
        let (acker, channel) = (self.acker.clone(), Arc::clone(&self.channel));
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let requeue = BasicNackOptions {
                    requeue: true,
                    ..BasicNackOptions::default()
                };
                let _ = acker.nack(requeue).await;
                // The channel stays open until the nack is sent.
                drop(channel);
            });
        }
    }
}

/// A settlement lapin did not send: the delivery was settled already, or its channel is gone
/// (then the broker delivers it again).
fn not_sent(doing: &str) -> TransportError {
    TransportError::new(
        ErrorCode::Unavailable,
        format!("{doing}: the delivery's channel is closed; the broker delivers it again"),
    )
}

#[async_trait::async_trait]
impl Acknowledger for RabbitMqAcker {
    async fn ack(self: Box<Self>) -> Result<(), TransportError> {
        match self.acker.ack(BasicAckOptions::default()).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(not_sent("acknowledging")),
            Err(e) => Err(transport_error(&e, "acknowledging")),
        }
    }

    async fn nack(self: Box<Self>) -> Result<(), TransportError> {
        // A copy is sent on only while the original can still be acked after it: a closed
        // channel has given the original back to the broker already.
        if let Some(retry) = &self.retry
            && self.acker.usable()
            && retry.send_on().await
        {
            return self.ack().await;
        }
        let options = BasicNackOptions {
            requeue: true,
            ..BasicNackOptions::default()
        };
        match self.acker.nack(options).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(not_sent("negatively acknowledging")),
            Err(e) => Err(transport_error(&e, "negatively acknowledging")),
        }
    }
}
