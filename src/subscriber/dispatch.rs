//! Runs handlers concurrently, but one at a time per ordering key, in delivery order.
//!
//! Pub/Sub hands a client the messages of an ordering key in order, possibly several at once;
//! running their handlers concurrently would lose that order, so a key's next delivery waits
//! until the handler of the previous one has finished. When a key's handler fails, the message
//! goes back, and so does every later delivery of the key, until the failed message comes back
//! (or, when it was dead-lettered, a message already sent back does): the deliveries waiting
//! behind it, and those the stream had buffered before the broker saw the nack. Pub/Sub then
//! redelivers the failed message and those after it, in order.
//!
//! Every await here is cancel-safe: [`Dispatcher::complete_one`] updates its state without
//! awaiting once a handler has finished, and deliveries sent back are nacked by a
//! [`Nacker`] task in the order they were sent back.

mod in_flight;
mod nacker;

use crate::consume::{Consumer, DeliveryFacts, Handler, Verdict};
use crate::settings::Execution;
use crate::transport::Delivery;
use in_flight::{InFlight, RunId};
use nacker::Nacker;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use tokio::time::Instant;

/// A running handler's ordering key and message.
struct Running {
    key: String,
    message_id: Option<String>,
}

/// A key whose handler failed: its deliveries go back until the failed message returns.
struct FailedKey {
    message_id: String,
    /// Ids of the key's messages sent back since; one of them coming back means the broker is
    /// redelivering the key's sequence without the failed message (it was dead-lettered).
    sent_back: HashSet<String>,
}

impl FailedKey {
    /// Whether `delivery` starts the key's redelivered sequence.
    fn is_redelivery(&self, delivery: &Delivery) -> bool {
        delivery
            .message
            .id
            .as_ref()
            .is_some_and(|id| *id == self.message_id || self.sent_back.contains(id))
    }
}

pub(super) struct Dispatcher<H> {
    consumer: Arc<Consumer>,
    handler: Arc<H>,
    /// Each handler's run; it settles its own delivery and says whether it acked.
    in_flight: InFlight,
    /// Ordering key of each run that has one.
    running_keys: HashMap<RunId, Running>,
    /// Deliveries waiting for their key's running handler, per key. A key is present while a
    /// handler for it runs.
    waiting: HashMap<String, VecDeque<Delivery>>,
    queued: usize,
    failed: HashMap<String, FailedKey>,
    nacker: Nacker,
}

impl<H: Handler> Dispatcher<H> {
    pub(super) fn new(consumer: Arc<Consumer>, handler: Arc<H>, execution: Execution) -> Self {
        Self {
            consumer,
            handler,
            in_flight: InFlight::new(execution),
            running_keys: HashMap::new(),
            waiting: HashMap::new(),
            queued: 0,
            failed: HashMap::new(),
            nacker: Nacker::start(),
        }
    }

    /// Handlers running.
    pub(super) fn running(&self) -> usize {
        self.in_flight.len()
    }

    /// Deliveries waiting behind a running handler of their ordering key.
    pub(super) fn waiting(&self) -> usize {
        self.queued
    }

    pub(super) fn submit(&mut self, delivery: Delivery) {
        let key = delivery
            .message
            .ordering_key
            .clone()
            .filter(|k| !k.is_empty());
        let Some(key) = key else {
            self.spawn(delivery);
            return;
        };
        if let Some(failed) = self.failed.get_mut(&key) {
            if !failed.is_redelivery(&delivery) {
                failed.sent_back.extend(delivery.message.id.clone());
                self.nacker.send_back(delivery);
                return;
            }
            self.failed.remove(&key);
        }
        match self.waiting.get_mut(&key) {
            Some(queue) => {
                queue.push_back(delivery);
                self.queued += 1;
            }
            None => {
                self.waiting.insert(key.clone(), VecDeque::new());
                self.spawn_keyed(delivery, key);
            }
        }
    }

    fn spawn_keyed(&mut self, delivery: Delivery, key: String) {
        let message_id = delivery.message.id.clone();
        let id = self.spawn(delivery);
        self.running_keys.insert(id, Running { key, message_id });
    }

    /// Starts a handler's run: consume, then settle.
    fn spawn(&mut self, mut delivery: Delivery) -> RunId {
        let consumer = Arc::clone(&self.consumer);
        let handler = Arc::clone(&self.handler);
        let task = async move {
            let attributes = std::mem::take(&mut delivery.attributes);
            let (message, delivery_attempt, acker) = delivery.into_parts();
            let facts = DeliveryFacts {
                delivery_attempt,
                attributes,
                ..DeliveryFacts::default()
            };
            let consumed = consumer.consume(handler.as_ref(), message, facts).await;
            let acked = consumed.verdict() == Verdict::Ack;
            consumed.settle(acker).await;
            acked
        };
        self.in_flight.start(task)
    }

    /// Waits for one handler to finish and starts its key's next delivery. `false` when
    /// nothing was running. Cancel-safe: nothing is awaited after the handler has finished.
    pub(super) async fn complete_one(&mut self) -> bool {
        let Some((id, acked)) = self.in_flight.next().await else {
            return false;
        };
        if let Some(running) = self.running_keys.remove(&id) {
            self.next_of_key(running, acked);
        }
        true
    }

    /// After a key's handler finished: start the key's next delivery, or, when it failed,
    /// send back what waited behind it until the failed message comes back.
    fn next_of_key(&mut self, running: Running, acked: bool) {
        let Running { key, message_id } = running;
        let behind = self.waiting.remove(&key).unwrap_or_default();
        self.queued -= behind.len();
        if !acked {
            let Some(message_id) = message_id else {
                // Without an id its redelivery cannot be told apart: all of them go back.
                behind.into_iter().for_each(|d| self.nacker.send_back(d));
                return;
            };
            let sent_back = HashSet::new();
            self.failed.insert(
                key,
                FailedKey {
                    message_id,
                    sent_back,
                },
            );
        }
        // Resubmitted in order: each goes back, runs, or waits as a new arrival would.
        for delivery in behind {
            self.submit(delivery);
        }
    }

    /// Runs everything submitted to the end.
    pub(super) async fn drain(&mut self) {
        while self.complete_one().await {}
    }

    /// Gives up on everything still running or waiting: running handlers are aborted, which
    /// drops and so nacks their deliveries, and waiting deliveries are sent back. Waits until
    /// `deadline` at the latest: a handler blocking its thread cannot be aborted and is left
    /// behind.
    pub(super) async fn abandon(&mut self, deadline: Instant) {
        self.in_flight.abort_all(deadline).await;
        self.running_keys.clear();
        self.failed.clear();
        for (_, behind) in self.waiting.drain() {
            for delivery in behind {
                self.nacker.send_back(delivery);
            }
        }
        self.queued = 0;
    }

    /// Waits until `deadline` at the latest for the deliveries sent back to be nacked; those
    /// left are dropped, which nacks them too.
    pub(super) async fn flush(self, deadline: Instant) {
        self.nacker.finish(deadline).await;
    }
}
