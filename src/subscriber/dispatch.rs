//! Runs handlers concurrently, but one at a time per ordering key, in delivery order.
//!
//! Pub/Sub hands a client the messages of an ordering key in order, possibly several at once;
//! running their handlers concurrently would lose that order, so a key's next delivery waits
//! until the handler of the previous one has finished. When a key's handler fails, the key's
//! waiting deliveries are nacked too, right after the failed one and before anything more is
//! pulled: Pub/Sub redelivers the failed message and those after it, in order.

use super::process::{self, Processed};
use super::{Handler, Settings};
use crate::transport::Delivery;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use tokio::task::{Id, JoinSet};
use tracing::instrument::WithSubscriber;

pub(super) struct Dispatcher<H> {
    settings: Arc<Settings>,
    handler: Arc<H>,
    in_flight: JoinSet<Processed>,
    /// Ordering key of each running task that has one.
    running_keys: HashMap<Id, String>,
    /// Deliveries waiting for their key's running handler, per key. A key is present while a
    /// handler for it runs.
    waiting: HashMap<String, VecDeque<Delivery>>,
    queued: usize,
}

impl<H: Handler> Dispatcher<H> {
    pub(super) fn new(settings: Arc<Settings>, handler: Arc<H>) -> Self {
        Self {
            settings,
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
        match delivery
            .message
            .ordering_key
            .clone()
            .filter(|k| !k.is_empty())
        {
            Some(key) => match self.waiting.get_mut(&key) {
                Some(queue) => {
                    queue.push_back(delivery);
                    self.queued += 1;
                }
                None => {
                    self.waiting.insert(key.clone(), VecDeque::new());
                    let id = self.spawn(delivery, true);
                    self.running_keys.insert(id, key);
                }
            },
            None => {
                self.spawn(delivery, false);
            }
        }
    }

    /// Starts a handler. A keyed delivery's nack is left to [`Self::complete_one`], which
    /// orders it before the nacks of the deliveries waiting behind it.
    fn spawn(&mut self, delivery: Delivery, keyed: bool) -> Id {
        let settings = Arc::clone(&self.settings);
        let handler = Arc::clone(&self.handler);
        // Handlers log through the caller's `tracing` subscriber.
        self.in_flight
            .spawn(
                async move { process::process(&settings, handler.as_ref(), delivery, keyed).await }
                    .with_current_subscriber(),
            )
            .id()
    }

    /// Waits for one handler to finish and starts its key's next delivery. `false` when
    /// nothing was running.
    pub(super) async fn complete_one(&mut self) -> bool {
        let Some(finished) = self.in_flight.join_next_with_id().await else {
            return false;
        };
        let (id, acked) = match finished {
            Ok((id, Processed::Settled { acked })) => (id, acked),
            Ok((id, Processed::NackPending(pending))) => {
                pending.nack().await;
                (id, false)
            }
            // The task's delivery was dropped unsettled, which nacks it.
            Err(error) => (error.id(), false),
        };
        if let Some(key) = self.running_keys.remove(&id) {
            if !acked {
                // Keep the key's order: what waited behind the failure goes back too.
                let behind = self.waiting.remove(&key).unwrap_or_default();
                self.queued -= behind.len();
                for delivery in behind {
                    // A nack that fails leaves the message to its ack deadline.
                    let _ = delivery.nack().await;
                }
                return true;
            }
            let next = self.waiting.get_mut(&key).and_then(VecDeque::pop_front);
            match next {
                Some(delivery) => {
                    self.queued -= 1;
                    let id = self.spawn(delivery, true);
                    self.running_keys.insert(id, key);
                }
                None => {
                    self.waiting.remove(&key);
                }
            }
        }
        true
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
            if let Ok(Processed::NackPending(pending)) = finished {
                pending.nack().await;
            }
        }
        self.running_keys.clear();
        for (_, behind) in self.waiting.drain() {
            for delivery in behind {
                // A nack that fails leaves the message to its ack deadline.
                let _ = delivery.nack().await;
            }
        }
        self.queued = 0;
    }
}
