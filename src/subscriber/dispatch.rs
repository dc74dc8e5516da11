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
use std::time::Duration;
use tokio::time::Instant;

/// Most failed ordering keys remembered: a key whose failed message never comes back to this
/// loop (dead-lettered with nothing sent back, or redelivered to another replica) must not be
/// kept for the life of the process. Past it the oldest is forgotten.
const MAX_FAILED_KEYS: usize = 1024;
/// How long a failed key is remembered: Pub/Sub's longest retry backoff (600 s) and more. A
/// failed message that has not come back by then went elsewhere.
const FAILED_KEY_TTL: Duration = Duration::from_secs(900);
/// Most message ids remembered per failed key as sent back: the first are those the broker
/// redelivers first.
const MAX_SENT_BACK: usize = 64;

/// A running handler's ordering key and message.
struct Running {
    key: String,
    message_id: Option<String>,
}

/// A key whose handler failed: its deliveries go back until the failed message returns.
struct FailedKey {
    message_id: String,
    /// When it failed.
    since: Instant,
    /// Its place in [`Dispatcher::failed_order`].
    seq: u64,
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
    /// Failed keys in the order they failed (key, `seq`), so the oldest is forgotten first
    /// without a scan; entries whose key has come back since are dropped as they are met.
    failed_order: VecDeque<(String, u64)>,
    failures: u64,
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
            failed_order: VecDeque::new(),
            failures: 0,
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
        if self
            .failed
            .get(&key)
            .is_some_and(|failed| failed.since.elapsed() >= FAILED_KEY_TTL)
        {
            self.failed.remove(&key);
        }
        if let Some(failed) = self.failed.get_mut(&key) {
            if !failed.is_redelivery(&delivery) {
                if failed.sent_back.len() < MAX_SENT_BACK {
                    failed.sent_back.extend(delivery.message.id.clone());
                }
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
            self.forget_old_failures();
            self.failures += 1;
            let failed = FailedKey {
                message_id,
                since: Instant::now(),
                seq: self.failures,
                sent_back: HashSet::new(),
            };
            self.failed_order.push_back((key.clone(), failed.seq));
            self.failed.insert(key, failed);
        }
        // Resubmitted in order: each goes back, runs, or waits as a new arrival would.
        for delivery in behind {
            self.submit(delivery);
        }
    }

    /// Makes room for one more failed key: forgets those past their time, then the oldest
    /// while the bound is reached. A forgotten key's later deliveries run as any others.
    fn forget_old_failures(&mut self) {
        while let Some((key, seq)) = self.failed_order.front() {
            let current = self.failed.get(key).filter(|failed| failed.seq == *seq);
            let keep = current.is_some_and(|failed| {
                failed.since.elapsed() < FAILED_KEY_TTL && self.failed.len() < MAX_FAILED_KEYS
            });
            if keep {
                break;
            }
            let forget = current.is_some();
            if let Some((key, _)) = self.failed_order.pop_front()
                && forget
            {
                self.failed.remove(&key);
            }
        }
        // Keys that came back leave their entries behind the oldest one still failed.
        if self.failed_order.len() > 4 * MAX_FAILED_KEYS {
            let failed = &self.failed;
            self.failed_order
                .retain(|(key, seq)| failed.get(key).is_some_and(|f| f.seq == *seq));
        }
    }

    /// Failed keys remembered.
    #[cfg(test)]
    fn failed_keys(&self) -> usize {
        self.failed.len()
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
        self.failed_order.clear();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consume::ConsumerConfig;
    use crate::transport::{Acknowledger, Message, TransportError};
    use crate::{HandlerError, Received};

    /// Settles nothing.
    struct Nothing;

    #[async_trait::async_trait]
    impl Acknowledger for Nothing {
        async fn ack(self: Box<Self>) -> Result<(), TransportError> {
            Ok(())
        }
        async fn nack(self: Box<Self>) -> Result<(), TransportError> {
            Ok(())
        }
    }

    fn keyed(key: &str, id: &str) -> Delivery {
        let mut message = Message::new(
            r#"{"specversion":"1.0","id":"e","source":"s","type":"t"}"#
                .as_bytes()
                .to_vec(),
        );
        message.ordering_key = Some(key.to_owned());
        message.id = Some(id.to_owned());
        Delivery::new(message, Some(1), Box::new(Nothing))
    }

    fn failing() -> Dispatcher<impl Handler> {
        let config = ConsumerConfig::new("s".into(), "t".into());
        let consumer = Arc::new(Consumer::new(config, "test", None, None));
        let handler = |_: Received| async { Err::<(), HandlerError>("fails".into()) };
        Dispatcher::new(consumer, Arc::new(handler), Execution::LoopTask)
    }

    #[tokio::test(start_paused = true)]
    async fn failed_keys_whose_messages_never_come_back_are_bounded_in_number_and_time() {
        let mut dispatcher = failing();
        for i in 0..100_000 {
            dispatcher.submit(keyed(&format!("key-{i}"), &format!("m-{i}")));
            assert!(dispatcher.complete_one().await);
        }
        assert_eq!(dispatcher.failed_keys(), MAX_FAILED_KEYS);
        assert!(dispatcher.failed_order.len() <= 4 * MAX_FAILED_KEYS);

        // Past their time, the next failure forgets them all.
        tokio::time::advance(FAILED_KEY_TTL).await;
        dispatcher.submit(keyed("late", "m-late"));
        assert!(dispatcher.complete_one().await);
        assert_eq!(dispatcher.failed_keys(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_key_past_its_time_runs_its_next_delivery_with_no_other_failure() {
        let mut dispatcher = failing();
        dispatcher.submit(keyed("k", "m-1"));
        assert!(dispatcher.complete_one().await);
        tokio::time::advance(FAILED_KEY_TTL).await;
        dispatcher.submit(keyed("k", "m-2"));
        assert_eq!(dispatcher.running(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_forgotten_key_runs_its_next_delivery() {
        let mut dispatcher = failing();
        dispatcher.submit(keyed("k", "m-1"));
        assert!(dispatcher.complete_one().await);
        // Remembered: a later message of the key goes back without running.
        dispatcher.submit(keyed("k", "m-2"));
        assert_eq!(dispatcher.running(), 0);
        tokio::time::advance(FAILED_KEY_TTL).await;
        // Another key's failure forgets `k`, whose next delivery then runs.
        dispatcher.submit(keyed("other", "m-3"));
        assert!(dispatcher.complete_one().await);
        dispatcher.submit(keyed("k", "m-4"));
        assert_eq!(dispatcher.running(), 1);
    }
}
