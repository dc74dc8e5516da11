//! An in-process transport with Pub/Sub semantics.
//!
//! It is the embedded default of the examples and the backend the conformance suite runs on
//! when no Pub/Sub is at hand, so it behaves like Pub/Sub rather than like a channel:
//!
//! - every subscription of a topic gets every message published after it was created (fan-out);
//!   streams on one subscription compete for its messages;
//! - a delivery stays leased while its [`Delivery`] (or the acknowledger taken from it) is held,
//!   as a Pub/Sub client extends the leases of the messages it holds, up to a maximum lease
//!   (60 minutes by default, as Google's clients; see [`MemoryTransport::with_max_lease`]); a
//!   nack, a dropped delivery or a lease held past the maximum makes it deliverable again, with
//!   its delivery attempt counted, and a late ack of an expired lease is ignored;
//! - with message ordering on, messages sharing an ordering key are delivered one at a time in
//!   publish order;
//! - with a dead-letter policy, a message is forwarded to the dead-letter topic after its last
//!   attempt (if that topic does not exist, it stays in the subscription rather than being lost);
//! - message ids are assigned on publish.
//!
//! ```
//! use hyperfleet_tracing::transport::memory::MemoryTransport;
//! use hyperfleet_tracing::transport::{Message, SubscriptionConfig, Transport};
//! use futures::StreamExt;
//!
//! # tokio::runtime::Runtime::new()?.block_on(async {
//! let transport = MemoryTransport::new();
//! transport.create_topic("hyperfleet-clusters")?;
//! transport.create_subscription("validation", "hyperfleet-clusters", SubscriptionConfig::default())?;
//!
//! let id = transport.publish("hyperfleet-clusters", Message::new("hello")).await?;
//! let mut deliveries = transport.subscribe("validation").await?;
//! let delivery = deliveries.next().await.expect("a delivery")?;
//! assert_eq!(delivery.message.id.as_deref(), Some(id.as_str()));
//! assert_eq!(delivery.delivery_attempt, Some(1));
//! delivery.ack().await?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod subscription;

use crate::transport::{
    Acknowledger, Delivery, DeliveryStream, ErrorCode, Message, SubscriptionConfig, Transport,
    TransportError,
};
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;
use subscription::{DeadLetter, Pull, SubscriptionState};
use tokio::time::Instant;

/// `messaging.system` value for spans over the memory transport.
pub const SYSTEM: &str = "hyperfleet_memory";

/// Attribute naming the subscription a dead-lettered message came from (as Pub/Sub sets it).
pub const DEAD_LETTER_SOURCE_SUBSCRIPTION: &str = "CloudPubSubDeadLetterSourceSubscription";
/// Attribute with the delivery attempts a dead-lettered message had (as Pub/Sub sets it).
pub const DEAD_LETTER_SOURCE_DELIVERY_COUNT: &str = "CloudPubSubDeadLetterSourceDeliveryCount";

/// An in-process Pub/Sub. Clones share the same topics and subscriptions.
#[derive(Debug, Clone, Default)]
pub struct MemoryTransport {
    inner: Arc<Inner>,
}

/// How long a delivery may be held by default: Google's Pub/Sub clients' maximum lease.
pub const DEFAULT_MAX_LEASE: Duration = Duration::from_secs(60 * 60);

#[derive(Debug)]
struct Inner {
    registry: Mutex<Registry>,
    next_id: AtomicU64,
    max_lease: Duration,
}

impl Default for Inner {
    fn default() -> Self {
        Self {
            registry: Mutex::default(),
            next_id: AtomicU64::default(),
            max_lease: DEFAULT_MAX_LEASE,
        }
    }
}

#[derive(Debug, Default)]
struct Registry {
    /// Topic name → its subscriptions.
    topics: HashMap<String, Vec<Arc<SubscriptionState>>>,
    subscriptions: HashMap<String, Arc<SubscriptionState>>,
}

impl MemoryTransport {
    /// An empty transport: no topics, no subscriptions.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty transport whose deliveries may be held for at most `max_lease` (default
    /// [`DEFAULT_MAX_LEASE`]), as a Pub/Sub client's maximum lease: a delivery held longer, by
    /// a handler that hangs, is delivered again, and its late ack is ignored. A maximum lease
    /// shorter than a subscription's ack deadline counts as that deadline, as on Pub/Sub, where
    /// the deadline runs even when the client stops extending.
    pub fn with_max_lease(max_lease: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                max_lease,
                ..Inner::default()
            }),
        }
    }

    /// Creates a topic. Fails with `ALREADY_EXISTS` if it exists.
    pub fn create_topic(&self, topic: &str) -> Result<(), TransportError> {
        let mut registry = self.inner.registry();
        if registry.topics.contains_key(topic) {
            return Err(TransportError::new(
                ErrorCode::AlreadyExists,
                format!("topic {topic} already exists"),
            ));
        }
        registry.topics.insert(topic.to_owned(), Vec::new());
        Ok(())
    }

    /// Creates a subscription on `topic`. It receives the messages published from now on.
    pub fn create_subscription(
        &self,
        subscription: &str,
        topic: &str,
        config: SubscriptionConfig,
    ) -> Result<(), TransportError> {
        config.validate()?;
        let mut registry = self.inner.registry();
        if registry.subscriptions.contains_key(subscription) {
            return Err(TransportError::new(
                ErrorCode::AlreadyExists,
                format!("subscription {subscription} already exists"),
            ));
        }
        let state = Arc::new(SubscriptionState::new(subscription.to_owned(), config));
        let Some(subscribers) = registry.topics.get_mut(topic) else {
            return Err(TransportError::new(
                ErrorCode::NotFound,
                format!("topic {topic} not found"),
            ));
        };
        subscribers.push(Arc::clone(&state));
        registry
            .subscriptions
            .insert(subscription.to_owned(), state);
        Ok(())
    }

    /// Messages of `subscription` not yet acknowledged (waiting or leased).
    pub fn backlog(&self, subscription: &str) -> Result<usize, TransportError> {
        Ok(self.inner.subscription(subscription)?.backlog())
    }

    /// Messages of `subscription` delivered to a subscriber and not yet settled (leased).
    pub fn outstanding(&self, subscription: &str) -> Result<usize, TransportError> {
        Ok(self.inner.subscription(subscription)?.outstanding())
    }
}

impl Inner {
    // Registry changes are single inserts, so a poisoned lock still guards consistent data.
    fn registry(&self) -> MutexGuard<'_, Registry> {
        crate::sync::lock(&self.registry)
    }

    fn subscription(&self, name: &str) -> Result<Arc<SubscriptionState>, TransportError> {
        self.registry()
            .subscriptions
            .get(name)
            .cloned()
            .ok_or_else(|| {
                TransportError::new(
                    ErrorCode::NotFound,
                    format!("subscription {name} not found"),
                )
            })
    }

    fn publish(&self, topic: &str, message: Message) -> Result<String, TransportError> {
        self.publish_to(topic, message, false)
    }

    /// Publishes to `topic`'s subscriptions as they are now; with `listened`, fails (taking
    /// nothing) when it has none, judged on the same snapshot the message goes to.
    fn publish_to(
        &self,
        topic: &str,
        mut message: Message,
        listened: bool,
    ) -> Result<String, TransportError> {
        let subscribers = self.registry().topics.get(topic).cloned().ok_or_else(|| {
            TransportError::new(ErrorCode::NotFound, format!("topic {topic} not found"))
        })?;
        if listened && subscribers.is_empty() {
            return Err(TransportError::new(
                ErrorCode::FailedPrecondition,
                format!("topic {topic} has no subscription"),
            ));
        }
        let id = (self.next_id.fetch_add(1, Ordering::Relaxed) + 1).to_string();
        message.id = Some(id.clone());
        for subscription in subscribers {
            subscription.enqueue(message.clone());
        }
        Ok(id)
    }

    /// Forwards a message that used up its attempts. It stays in its subscription, to be
    /// delivered again, while the dead-letter topic is missing or has no subscription: Pub/Sub
    /// would discard it there, and a dead letter must never be lost.
    fn dead_letter(&self, from: &SubscriptionState, dead: DeadLetter) {
        let mut message = dead.pending.message.clone();
        message.id = None;
        message.attributes.insert(
            DEAD_LETTER_SOURCE_SUBSCRIPTION.to_owned(),
            from.name.clone(),
        );
        message.attributes.insert(
            DEAD_LETTER_SOURCE_DELIVERY_COUNT.to_owned(),
            dead.pending.attempts.to_string(),
        );
        if self.publish_to(&dead.topic, message, true).is_err() {
            from.requeue(dead.pending);
        }
    }
}

impl Transport for MemoryTransport {
    fn system(&self) -> &'static str {
        SYSTEM
    }

    async fn publish(&self, topic: &str, message: Message) -> Result<String, TransportError> {
        crate::transport::limits::check(&message)?;
        self.inner.publish(topic, message)
    }

    async fn subscribe(&self, subscription: &str) -> Result<DeliveryStream, TransportError> {
        let state = self.inner.subscription(subscription)?;
        let inner = Arc::downgrade(&self.inner);
        let stream = futures::stream::unfold((state, inner), |(state, inner)| async move {
            let delivery = next_delivery(&state, &inner).await?;
            Some((Ok(delivery), (state, inner)))
        });
        Ok(DeliveryStream::new(Box::pin(stream)))
    }
}

/// Waits for the next deliverable message; `None` once the transport is dropped.
async fn next_delivery(state: &Arc<SubscriptionState>, inner: &Weak<Inner>) -> Option<Delivery> {
    loop {
        // Register for wake-ups before looking, so a publish in between is not missed.
        let notified = state.notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();

        let transport = inner.upgrade()?;
        let (pull, dead) = state.pull(Instant::now(), transport.max_lease);
        for letter in dead {
            transport.dead_letter(state, letter);
        }
        match pull {
            Pull::Leased(ack_id, pending) => {
                let acker = MemoryAcker {
                    state: Arc::clone(state),
                    transport: Weak::clone(inner),
                    ack_id,
                    settled: false,
                };
                return Some(Delivery::new(
                    pending.message,
                    Some(pending.attempts),
                    Box::new(acker),
                ));
            }
            Pull::Wait(Some(deadline)) => {
                tokio::select! {
                    _ = &mut notified => {}
                    _ = tokio::time::sleep_until(deadline) => {}
                }
            }
            Pull::Wait(None) => notified.await,
        }
    }
}

/// Settles one lease. Dropping it unsettled nacks, as Pub/Sub clients do.
struct MemoryAcker {
    state: Arc<SubscriptionState>,
    transport: Weak<Inner>,
    ack_id: u64,
    settled: bool,
}

impl MemoryAcker {
    fn settle(&mut self, ack: bool) {
        if std::mem::replace(&mut self.settled, true) {
            return;
        }
        if let Some(dead) = self.state.settle(self.ack_id, ack) {
            match self.transport.upgrade() {
                Some(transport) => transport.dead_letter(&self.state, dead),
                None => self.state.requeue(dead.pending),
            }
        }
    }
}

#[async_trait]
impl Acknowledger for MemoryAcker {
    async fn ack(mut self: Box<Self>) -> Result<(), TransportError> {
        self.settle(true);
        Ok(())
    }

    async fn nack(mut self: Box<Self>) -> Result<(), TransportError> {
        self.settle(false);
        Ok(())
    }
}

impl Drop for MemoryAcker {
    fn drop(&mut self) {
        self.settle(false);
    }
}
