//! Google Cloud Pub/Sub, through the official `google-cloud-pubsub` crate (feature `pubsub`).
//!
//! Publishing batches per topic and keeps ordering keys; subscribing uses StreamingPull with
//! flow control and automatic lease extension; the client library reconnects after transient
//! stream errors by itself. `PUBSUB_EMULATOR_HOST` is honoured through
//! [`PubSubConfig::from_env`] the way Google's clients honour it: a plain-text endpoint with
//! anonymous credentials (the crate alone ignores the variable).
//!
//! ```no_run
//! use hyperfleet_tracing::transport::pubsub::{PubSubAdmin, PubSubConfig, PubSubTransport};
//! use hyperfleet_tracing::transport::{DeadLetterPolicy, SubscriptionConfig};
//! use hyperfleet_tracing::{TracedPublisher, TracedSubscriber};
//!
//! # async fn f(event: cloudevents::Event) -> Result<(), Box<dyn std::error::Error>> {
//! let config = PubSubConfig::from_env(None)?; // GOOGLE_CLOUD_PROJECT, PUBSUB_EMULATOR_HOST
//! let admin = PubSubAdmin::connect(config.clone()).await?;
//! admin.create_topic_if_missing("hyperfleet-clusters").await?;
//! let subscription = "hyperfleet-dev-clusters-validation-adapter";
//! admin
//!     .create_subscription_if_missing(
//!         subscription,
//!         "hyperfleet-clusters",
//!         &SubscriptionConfig::default().dead_letter(DeadLetterPolicy::for_subscription(subscription)),
//!     )
//!     .await?;
//!
//! let transport = PubSubTransport::connect(config).await?;
//! TracedPublisher::new(transport.clone(), "hyperfleet-clusters").publish(event).await?;
//! TracedSubscriber::new(transport, subscription, "hyperfleet-clusters")
//!     .run(
//!         |_received| async { Ok::<(), hyperfleet_tracing::HandlerError>(()) },
//!         async { let _ = tokio::signal::ctrl_c().await; },
//!     )
//!     .await?;
//! # Ok(()) }
//! ```

mod admin;
mod config;
mod error;

pub use admin::{PubSubAdmin, PushSubscription};
pub use config::{DEFAULT_STREAMS, EMULATOR_HOST_VARIABLE, PROJECT_VARIABLE, PubSubConfig};

use crate::transport::{
    Acknowledger, Delivery, DeliveryStream, ErrorCode, Message, Transport, TransportError, limits,
};
use async_trait::async_trait;
use futures::FutureExt;
use google_cloud_gax::retry_policy::RetryPolicyExt;
use google_cloud_pubsub::client::{BasePublisher, Publisher, Subscriber};
use google_cloud_pubsub::error::PublishError as ClientPublishError;
use google_cloud_pubsub::model::Message as PubsubMessage;
use google_cloud_pubsub::retry_policy::RetryableErrors;
use google_cloud_pubsub::subscriber::handler::Handler;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

/// `messaging.system` for Pub/Sub.
pub const SYSTEM: &str = "gcp_pubsub";

/// A [`Transport`] over Google Cloud Pub/Sub. Clones share connections.
#[derive(Clone)]
pub struct PubSubTransport {
    inner: Arc<Inner>,
}

struct Inner {
    config: PubSubConfig,
    server_address: String,
    base: BasePublisher,
    subscriber: Subscriber,
    /// One batching publisher per topic, made on first use.
    publishers: Mutex<HashMap<String, Publisher>>,
}

impl std::fmt::Debug for PubSubTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PubSubTransport")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl PubSubTransport {
    /// Connects, failing within [`PubSubConfig::connect_timeout`] with an error naming the
    /// endpoint when it cannot be reached. Call it inside the Tokio runtime.
    pub async fn connect(config: PubSubConfig) -> Result<Self, TransportError> {
        let endpoint = config.endpoint().to_owned();
        admin::probe(&config).await?;
        let built = async {
            let mut base = BasePublisher::builder()
                .with_retry_policy(RetryableErrors.with_time_limit(config.publish_timeout));
            let mut subscriber = Subscriber::builder();
            if let Some(emulator) = &config.emulator_endpoint {
                let anonymous = google_cloud_auth::credentials::anonymous::Builder::new().build();
                base = base
                    .with_endpoint(emulator.clone())
                    .with_credentials(anonymous.clone());
                subscriber = subscriber
                    .with_endpoint(emulator.clone())
                    .with_credentials(anonymous);
            }
            Ok::<_, google_cloud_gax::client_builder::Error>((
                base.build().await?,
                subscriber.build().await?,
            ))
        };
        let (base, subscriber) = tokio::time::timeout(config.connect_timeout, built)
            .await
            .map_err(|_| {
                TransportError::new(
                    ErrorCode::DeadlineExceeded,
                    format!(
                        "connecting to Pub/Sub at {endpoint} took longer than {:?}",
                        config.connect_timeout
                    ),
                )
            })?
            .map_err(|e| {
                TransportError::new(
                    ErrorCode::Unavailable,
                    format!("cannot set up Pub/Sub clients for {endpoint}: {e}"),
                )
                .with_source(e)
            })?;
        Ok(Self {
            inner: Arc::new(Inner {
                server_address: config.server_address(),
                config,
                base,
                subscriber,
                publishers: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &PubSubConfig {
        &self.inner.config
    }

    /// Lets messages with `ordering_key` be published to `topic` again after a failed publish
    /// paused the key. Until then every publish with the key fails with
    /// `FAILED_PRECONDITION`, as in Google's clients, so that no later message of the key
    /// overtakes the one that failed: resend what must be resent, in order, after this.
    pub fn resume_publish(&self, topic: &str, ordering_key: &str) {
        self.publisher(topic).resume_publish(ordering_key);
    }

    /// Sends every buffered message of every topic.
    pub async fn flush(&self) {
        let publishers: Vec<Publisher> = self.publishers().values().cloned().collect();
        for publisher in publishers {
            publisher.flush().await;
        }
    }

    fn publishers(&self) -> std::sync::MutexGuard<'_, HashMap<String, Publisher>> {
        crate::sync::lock(&self.inner.publishers)
    }

    fn publisher(&self, topic: &str) -> Publisher {
        let name = self.inner.config.topic_name(topic);
        let config = &self.inner.config;
        self.publishers()
            .entry(name.clone())
            .or_insert_with(|| {
                self.inner
                    .base
                    .publisher(name)
                    .set_message_count_threshold(config.batch_max_messages)
                    .set_delay_threshold(config.batch_max_delay)
                    .build()
            })
            .clone()
    }

    fn to_pubsub(message: Message) -> PubsubMessage {
        PubsubMessage::new()
            .set_data(message.data)
            .set_attributes(message.attributes)
            .set_ordering_key(message.ordering_key.unwrap_or_default())
    }

    fn publish_error(&self, topic: &str, error: ClientPublishError) -> TransportError {
        let endpoint = self.inner.config.endpoint();
        match error {
            // The library pauses the message's ordering key after a failure, so that later
            // messages of the key cannot overtake it; it stays paused until the application
            // resumes it (`resume_publish`).
            ClientPublishError::Rpc(e) => TransportError::new(
                error::code(&e),
                format!("publish to {topic} at {endpoint}: {e}"),
            ),
            ClientPublishError::OrderingKeyPaused => TransportError::new(
                ErrorCode::FailedPrecondition,
                format!(
                    "publish to {topic}: its ordering key is paused after an earlier failure; \
                     resume it with PubSubTransport::resume_publish"
                ),
            ),
            other => {
                TransportError::new(ErrorCode::Cancelled, format!("publish to {topic}: {other}"))
            }
        }
    }
}

impl Transport for PubSubTransport {
    fn system(&self) -> &'static str {
        SYSTEM
    }

    fn server_address(&self) -> Option<&str> {
        Some(&self.inner.server_address)
    }

    fn server_port(&self) -> Option<u16> {
        self.inner.config.server_port()
    }

    async fn publish(&self, topic: &str, message: Message) -> Result<String, TransportError> {
        self.publish_batch(topic, vec![message])
            .await
            .pop()
            .unwrap_or_else(|| {
                Err(TransportError::new(
                    ErrorCode::Internal,
                    "no publish result",
                ))
            })
    }

    async fn publish_batch(
        &self,
        topic: &str,
        messages: Vec<Message>,
    ) -> Vec<Result<String, TransportError>> {
        let publisher = self.publisher(topic);
        // Enqueue all first, so the library batches them; then wait for each.
        // A message over Pub/Sub's limits is refused here, alone: sent, it could fail the
        // request it is batched in.
        let pending: Vec<_> = messages
            .into_iter()
            .map(|m| limits::check(&m).map(|()| publisher.publish(Self::to_pubsub(m))))
            .collect();
        let mut results = Vec::with_capacity(pending.len());
        for future in pending {
            results.push(match future {
                Ok(future) => future.await.map_err(|e| self.publish_error(topic, e)),
                Err(refused) => Err(refused),
            });
        }
        results
    }

    async fn subscribe(&self, subscription: &str) -> Result<DeliveryStream, TransportError> {
        let config = &self.inner.config;
        let (max_messages, max_bytes) = config.per_stream_flow_control();
        let name = config.subscription_name(subscription);
        let mut tokens = Vec::with_capacity(config.streams);
        let mut merged = Vec::with_capacity(config.streams);
        for _ in 0..config.streams {
            let stream = self
                .inner
                .subscriber
                .subscribe(name.clone())
                .set_max_outstanding_messages(max_messages)
                .set_max_outstanding_bytes(max_bytes)
                .build();
            tokens.push(stream.shutdown_token());
            merged.push(deliveries(stream, subscription, config.endpoint()));
        }
        // The service keeps an ordering key on one stream while it has messages of the key
        // out, and the subscriber's dispatcher runs a key's deliveries one after another in
        // the merged order.
        let merged = futures::stream::select_all(merged);
        Ok(DeliveryStream::new(Box::pin(merged)).on_close(move || {
            async move {
                // Each stream's lease loop flushes its pending acks as it shuts down.
                futures::future::join_all(tokens.iter().map(|t| t.shutdown())).await;
            }
            .boxed()
        }))
    }
}

/// One StreamingPull stream's deliveries, ending after a permanent error (the library retries
/// transient ones) is reported.
fn deliveries(
    stream: google_cloud_pubsub::subscriber::MessageStream,
    subscription: &str,
    endpoint: &str,
) -> futures::stream::BoxStream<'static, Result<Delivery, TransportError>> {
    let context = (format!("subscription {subscription}"), endpoint.to_owned());
    let unfolded = futures::stream::unfold(Some(stream), move |state| {
        let (what, endpoint) = context.clone();
        async move {
            let mut stream = state?;
            match stream.next().await? {
                Ok((message, handler)) => Some((Ok(delivery(message, handler)), Some(stream))),
                Err(e) => Some((Err(error::transport_error(e, &what, &endpoint)), None)),
            }
        }
    });
    Box::pin(unfolded)
}

fn delivery(message: PubsubMessage, handler: Handler) -> Delivery {
    let attempt = handler
        .delivery_attempt()
        .and_then(|a| u32::try_from(a).ok());
    let message = Message {
        data: message.data,
        attributes: message.attributes.into_iter().collect::<BTreeMap<_, _>>(),
        ordering_key: Some(message.ordering_key).filter(|k| !k.is_empty()),
        id: Some(message.message_id),
    };
    Delivery::new(message, attempt, Box::new(PubSubAcker(Some(handler))))
}

/// Settles through the library's handler; dropping it unsettled nacks (the library's rule).
struct PubSubAcker(Option<Handler>);

#[async_trait]
impl Acknowledger for PubSubAcker {
    async fn ack(mut self: Box<Self>) -> Result<(), TransportError> {
        if let Some(handler) = self.0.take() {
            handler.ack();
        }
        Ok(())
    }

    async fn nack(mut self: Box<Self>) -> Result<(), TransportError> {
        if let Some(handler) = self.0.take() {
            handler.nack();
        }
        Ok(())
    }
}
