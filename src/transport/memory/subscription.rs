//! One subscription's queue: leases, redelivery, ordering keys and dead-lettering.

use crate::transport::{Message, SubscriptionConfig};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// A message waiting in a subscription, with the attempts made so far.
#[derive(Debug, Clone)]
pub(super) struct Pending {
    pub(super) message: Message,
    pub(super) attempts: u32,
}

#[derive(Debug)]
struct Lease {
    pending: Pending,
    deadline: Instant,
}

#[derive(Debug, Default)]
struct Queue {
    ready: VecDeque<Pending>,
    leased: HashMap<u64, Lease>,
    keys_in_flight: HashSet<String>,
    next_ack_id: u64,
}

/// What a pull found.
pub(super) enum Pull {
    /// A message leased under this ack id.
    Leased(u64, Pending),
    /// Nothing to deliver before this instant (or until notified, when `None`).
    Wait(Option<Instant>),
}

/// A message that used up its attempts, to be forwarded to the dead-letter topic.
pub(super) struct DeadLetter {
    pub(super) topic: String,
    pub(super) pending: Pending,
}

#[derive(Debug)]
pub(super) struct SubscriptionState {
    pub(super) name: String,
    pub(super) config: SubscriptionConfig,
    queue: Mutex<Queue>,
    pub(super) notify: Notify,
}

impl SubscriptionState {
    pub(super) fn new(name: String, config: SubscriptionConfig) -> Self {
        Self {
            name,
            config,
            queue: Mutex::new(Queue::default()),
            notify: Notify::new(),
        }
    }

    // A panic while holding the lock leaves the queue consistent (every change is one
    // statement), so a poisoned lock is safe to keep using.
    fn queue(&self) -> MutexGuard<'_, Queue> {
        crate::sync::lock(&self.queue)
    }

    pub(super) fn enqueue(&self, message: Message) {
        self.queue().ready.push_back(Pending {
            message,
            attempts: 0,
        });
        self.notify.notify_waiters();
    }

    /// Leases the next deliverable message for `max_lease` (at least the ack deadline), after
    /// returning expired leases to the queue. A lease lasts while its delivery is held (a
    /// dropped delivery nacks), as a client extends the leases of the messages it holds.
    pub(super) fn pull(&self, now: Instant, max_lease: Duration) -> (Pull, Vec<DeadLetter>) {
        let mut queue = self.queue();
        let expired: Vec<u64> = queue
            .leased
            .iter()
            .filter(|(_, lease)| lease.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        let mut dead = Vec::new();
        for ack_id in expired {
            dead.extend(self.release(&mut queue, ack_id));
        }

        let ordering = self.config.message_ordering;
        let position = queue
            .ready
            .iter()
            .position(|p| match &p.message.ordering_key {
                Some(key) if ordering => !queue.keys_in_flight.contains(key),
                _ => true,
            });
        let Some(mut pending) = position.and_then(|i| queue.ready.remove(i)) else {
            let next = queue.leased.values().map(|l| l.deadline).min();
            return (Pull::Wait(next), dead);
        };
        pending.attempts = pending.attempts.saturating_add(1);
        if ordering && let Some(key) = &pending.message.ordering_key {
            queue.keys_in_flight.insert(key.clone());
        }
        let ack_id = queue.next_ack_id;
        queue.next_ack_id += 1;
        // Held deliveries are extended up to the maximum lease, but a lease never ends before
        // the ack deadline the subscription promises; one too long for the clock never ends.
        let lease = max_lease.max(self.config.ack_deadline);
        let deadline = now.checked_add(lease).unwrap_or_else(|| far_future(now));
        queue.leased.insert(
            ack_id,
            Lease {
                pending: pending.clone(),
                deadline,
            },
        );
        (Pull::Leased(ack_id, pending), dead)
    }

    /// Settles a lease. An ack id whose lease already expired is ignored, as Pub/Sub does.
    pub(super) fn settle(&self, ack_id: u64, ack: bool) -> Option<DeadLetter> {
        let dead = {
            let mut queue = self.queue();
            if ack {
                if let Some(lease) = queue.leased.remove(&ack_id) {
                    Self::unlock_key(&mut queue, &lease.pending);
                }
                None
            } else {
                self.release(&mut queue, ack_id)
            }
        };
        self.notify.notify_waiters();
        dead
    }

    /// Puts a dead letter back when its topic is gone: never lose a message.
    pub(super) fn requeue(&self, pending: Pending) {
        Self::return_to_queue(&mut self.queue(), pending, self.config.message_ordering);
        self.notify.notify_waiters();
    }

    fn release(&self, queue: &mut Queue, ack_id: u64) -> Option<DeadLetter> {
        let lease = queue.leased.remove(&ack_id)?;
        Self::unlock_key(queue, &lease.pending);
        if let Some(policy) = &self.config.dead_letter
            && lease.pending.attempts >= policy.max_delivery_attempts
        {
            return Some(DeadLetter {
                topic: policy.topic.clone(),
                pending: lease.pending,
            });
        }
        Self::return_to_queue(queue, lease.pending, self.config.message_ordering);
        None
    }

    /// Puts a message back for redelivery: behind the others, so one failing message cannot
    /// starve the subscription, but ahead of later messages with its ordering key, so the key's
    /// order holds.
    fn return_to_queue(queue: &mut Queue, pending: Pending, ordering: bool) {
        let same_key = match &pending.message.ordering_key {
            Some(key) if ordering => queue
                .ready
                .iter()
                .position(|p| p.message.ordering_key.as_ref() == Some(key)),
            _ => None,
        };
        match same_key {
            Some(i) => queue.ready.insert(i, pending),
            None => queue.ready.push_back(pending),
        }
    }

    fn unlock_key(queue: &mut Queue, pending: &Pending) {
        if let Some(key) = &pending.message.ordering_key {
            queue.keys_in_flight.remove(key);
        }
    }

    /// Messages not yet acknowledged: waiting plus leased.
    pub(super) fn backlog(&self) -> usize {
        let queue = self.queue();
        queue.ready.len() + queue.leased.len()
    }

    /// Messages leased and not yet settled.
    pub(super) fn outstanding(&self) -> usize {
        self.queue().leased.len()
    }
}

/// An instant no lease reaches: about thirty years after `now`, or a day when the clock
/// cannot represent that.
fn far_future(now: Instant) -> Instant {
    const YEARS: Duration = Duration::from_secs(30 * 365 * 24 * 60 * 60);
    const DAY: Duration = Duration::from_secs(24 * 60 * 60);
    now.checked_add(YEARS)
        .or_else(|| now.checked_add(DAY))
        .unwrap_or(now)
}
