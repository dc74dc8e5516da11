//! Delayed, bounded retries for any queue, classic ones included (opt-in:
//! [`RabbitMqConfig::retry`](super::RabbitMqConfig::retry)). Classic queues count no
//! deliveries and a nack with requeue comes back at once, so a message its handler always fails
//! would loop as fast as the broker can send it. With retries on, a failed delivery is instead
//! published (with confirms) to a wait queue of its attempt, `{queue}-retry-{attempt}`, which
//! holds it for that attempt's delay and dead-letters it back to `{queue}` (RabbitMQ's own
//! delayed-retry pattern); the attempt travels in the string header [`ATTEMPT_HEADER`]. After
//! the last attempt it is published to `{queue}-dlq`. Only once the copy is confirmed is the
//! original acked: nothing is lost, and a copy that cannot be published leaves the original to
//! a nack with requeue.

use lapin::options::{BasicPublishOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Channel, Confirmation};
use std::time::Duration;

/// The header that carries the attempt a retried message is on (a string, as Go consumers
/// require of every header).
pub const ATTEMPT_HEADER: &str = "x-hyperfleet-attempt";

/// How often, and after how long, a failed message is delivered again before it is
/// dead-lettered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Retry {
    /// Deliveries in all, the first included (at least 1).
    pub max_attempts: u32,
    /// The wait before the second delivery; each later one waits twice the one before.
    pub first_delay: Duration,
    /// The longest wait.
    pub max_delay: Duration,
}

impl Retry {
    /// `max_attempts` deliveries in all, waiting 1 s before the second, then twice as long each
    /// time, at most a minute.
    pub fn new(max_attempts: u32) -> Self {
        Self {
            max_attempts: max_attempts.max(1),
            first_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
        }
    }

    /// Sets the first wait and the longest.
    pub fn delays(mut self, first: Duration, max: Duration) -> Self {
        self.first_delay = first;
        self.max_delay = max.max(first);
        self
    }

    /// The wait after failed attempt `attempt` (1 for the first delivery).
    pub fn delay(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(31);
        self.first_delay
            .saturating_mul(1 << doublings)
            .min(self.max_delay)
    }

    /// The wait queue of failed attempt `attempt`.
    pub fn wait_queue(queue: &str, attempt: u32) -> String {
        format!("{queue}-retry-{attempt}")
    }

    /// Where messages go after their last attempt.
    pub fn dead_letter_queue(queue: &str) -> String {
        format!("{queue}-dlq")
    }

    /// The queue a delivery of `queue` on attempt `attempt` goes to when it fails.
    pub(super) fn next_queue(&self, queue: &str, attempt: u32) -> String {
        match attempt < self.max_attempts {
            true => Self::wait_queue(queue, attempt),
            false => Self::dead_letter_queue(queue),
        }
    }
}

/// Declares the wait queues and the dead-letter queue of `queue` (each is left as it is when
/// it exists with the same arguments).
pub(super) async fn declare(channel: &Channel, queue: &str, retry: &Retry) -> lapin::Result<()> {
    let durable = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };
    for attempt in 1..retry.max_attempts {
        let mut arguments = FieldTable::default();
        let ttl = u32::try_from(retry.delay(attempt).as_millis()).unwrap_or(u32::MAX);
        arguments.insert("x-message-ttl".into(), AMQPValue::LongUInt(ttl));
        arguments.insert(
            "x-dead-letter-exchange".into(),
            AMQPValue::LongString(LongString::from("")),
        );
        arguments.insert(
            "x-dead-letter-routing-key".into(),
            AMQPValue::LongString(LongString::from(queue)),
        );
        let name = Retry::wait_queue(queue, attempt);
        channel
            .queue_declare(name.as_str().into(), durable, arguments)
            .await?;
    }
    let dead = Retry::dead_letter_queue(queue);
    channel
        .queue_declare(dead.as_str().into(), durable, FieldTable::default())
        .await?;
    Ok(())
}

/// The attempt a delivery is on, from [`ATTEMPT_HEADER`]; `None` when it has none.
pub(super) fn attempt(properties: &BasicProperties) -> Option<u32> {
    let value = properties.headers().as_ref()?.inner().get(ATTEMPT_HEADER)?;
    match value {
        AMQPValue::LongString(s) => std::str::from_utf8(s.as_bytes()).ok()?.parse().ok(),
        AMQPValue::ShortString(s) => s.as_str().parse().ok(),
        _ => None,
    }
}

/// Publishes `data` with `properties`, marked as on attempt `attempt`, to `queue` through the
/// default exchange; `true` once the broker confirmed it was queued.
pub(super) async fn send_to(
    publisher: &Channel,
    queue: &str,
    data: &[u8],
    properties: &BasicProperties,
    attempt: u32,
    timeout: Duration,
) -> bool {
    let mut headers = properties.headers().clone().unwrap_or_default();
    headers.insert(
        ShortString::from(ATTEMPT_HEADER),
        AMQPValue::LongString(LongString::from(attempt.to_string())),
    );
    let properties = properties.clone().with_headers(headers);
    let options = BasicPublishOptions {
        mandatory: true,
        ..BasicPublishOptions::default()
    };
    let send = async {
        publisher
            .basic_publish("".into(), queue.into(), options, data, properties)
            .await?
            .await
    };
    matches!(
        tokio::time::timeout(timeout, send).await,
        Ok(Ok(Confirmation::Ack(None)))
    )
}
