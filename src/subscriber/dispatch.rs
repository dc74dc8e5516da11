//! Runs handlers concurrently, but one at a time per ordering key, in delivery order.
//!
//! Pub/Sub hands a client the messages of an ordering key in order, possibly several at once;
//! running their handlers concurrently would lose that order, so a key's next delivery waits
//! until the handler of the previous one has finished. When a key's handler fails, the key's
//! waiting deliveries are nacked too, right after the failed one and before anything more is
//! pulled: Pub/Sub redelivers the failed message and those after it, in order.

use crate::consume::{Consumed, Consumer, DeliveryFacts, Handler, Verdict};
use crate::transport::{Acknowledger, Delivery};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use tokio::task::{Id, JoinSet};
use tracing::instrument::WithSubscriber;

/// Who nacks a delivery whose handler failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NackBy {
    /// The handler's task, at once.
    Task,
    /// The dispatcher, which orders it before the nacks of the deliveries waiting behind it
    /// on the same ordering key.
    Dispatcher,
}

/// How a handler's task ended.
enum TaskEnd {
    /// Acked or nacked by the task.
    Settled { acked: bool },
    /// Not handled; the dispatcher nacks it (see [`NackBy::Dispatcher`]).
    NackPending(Consumed, Box<dyn Acknowledger>),
}

pub(super) struct Dispatcher<H> {
    consumer: Arc<Consumer>,
    handler: Arc<H>,
    in_flight: JoinSet<TaskEnd>,
    /// Ordering key of each running task that has one.
    running_keys: HashMap<Id, String>,
    /// Deliveries waiting for their key's running handler, per key. A key is present while a
    /// handler for it runs.
    waiting: HashMap<String, VecDeque<Delivery>>,
    queued: usize,
}

impl<H: Handler> Dispatcher<H> {
    pub(super) fn new(consumer: Arc<Consumer>, handler: Arc<H>) -> Self {
        Self {
            consumer,
            handler,
            in_flight: JoinSet::new(),
            running_keys: HashMap::new(),
            waiting: HashMap::new(),
            queued: 0,
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
            self.spawn(delivery, NackBy::Task);
            return;
        };
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
        let id = self.spawn(delivery, NackBy::Dispatcher);
        self.running_keys.insert(id, key);
    }

    /// Starts a handler's task: consume, then settle unless the nack is the dispatcher's.
    fn spawn(&mut self, delivery: Delivery, nack_by: NackBy) -> Id {
        let consumer = Arc::clone(&self.consumer);
        let handler = Arc::clone(&self.handler);
        let task = async move {
            let (message, delivery_attempt, acker) = delivery.into_parts();
            let facts = DeliveryFacts {
                delivery_attempt,
                ..DeliveryFacts::default()
            };
            let consumed = consumer.consume(handler.as_ref(), message, facts).await;
            let acked = consumed.verdict() == Verdict::Ack;
            if !acked && nack_by == NackBy::Dispatcher {
                return TaskEnd::NackPending(consumed, acker);
            }
            consumed.settle(acker).await;
            TaskEnd::Settled { acked }
        };
        // Handlers log through the caller's `tracing` subscriber.
        self.in_flight.spawn(task.with_current_subscriber()).id()
    }

    /// Waits for one handler to finish and starts its key's next delivery. `false` when
    /// nothing was running.
    pub(super) async fn complete_one(&mut self) -> bool {
        let Some(finished) = self.in_flight.join_next_with_id().await else {
            return false;
        };
        let (id, acked) = match finished {
            Ok((id, TaskEnd::Settled { acked })) => (id, acked),
            Ok((id, TaskEnd::NackPending(consumed, acker))) => {
                consumed.settle(acker).await;
                (id, false)
            }
            // The task's delivery was dropped unsettled, which nacks it.
            Err(error) => (error.id(), false),
        };
        if let Some(key) = self.running_keys.remove(&id) {
            self.next_of_key(key, acked).await;
        }
        true
    }

    /// After a key's handler finished: start the key's next delivery, or, when it failed,
    /// send back everything that waited behind it, to keep the key's order.
    async fn next_of_key(&mut self, key: String, acked: bool) {
        if !acked {
            let behind = self.waiting.remove(&key).unwrap_or_default();
            self.queued -= behind.len();
            nack_all(behind).await;
            return;
        }
        match self.waiting.get_mut(&key).and_then(VecDeque::pop_front) {
            Some(delivery) => {
                self.queued -= 1;
                self.spawn_keyed(delivery, key);
            }
            None => {
                self.waiting.remove(&key);
            }
        }
    }

    /// Runs everything submitted to the end.
    pub(super) async fn drain(&mut self) {
        while self.complete_one().await {}
    }

    /// Gives up on everything still running or waiting: running handlers are dropped, which
    /// nacks their deliveries, and waiting deliveries are nacked.
    pub(super) async fn abandon(&mut self) {
        self.in_flight.abort_all();
        while let Some(finished) = self.in_flight.join_next().await {
            // A handler may have finished before the abort reached it.
            if let Ok(TaskEnd::NackPending(consumed, acker)) = finished {
                consumed.settle(acker).await;
            }
        }
        self.running_keys.clear();
        for (_, behind) in self.waiting.drain() {
            nack_all(behind).await;
        }
        self.queued = 0;
    }
}

async fn nack_all(deliveries: VecDeque<Delivery>) {
    for delivery in deliveries {
        // A nack that fails leaves the message to its ack deadline.
        let _ = delivery.nack().await;
    }
}
