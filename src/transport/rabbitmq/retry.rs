//! Delayed, bounded retries for any queue, classic ones included (opt-in:
//! [`RabbitMqConfig::retry`](super::RabbitMqConfig::retry)). Classic queues count no
//! deliveries and a nack with requeue comes back at once, so a message its handler always fails
//! would loop as fast as the broker can send it. With retries on, a failed delivery is instead
//! published (with confirms) to the wait queue of its delay, `{queue}-retry-{delay in ms}ms`,
//! which holds it for that delay and dead-letters it back to `{queue}` (RabbitMQ's own
//! delayed-retry pattern; a queue's arguments cannot change, so each delay has its own queue
//! and changing the delays never conflicts with queues declared before). The attempt travels
//! in the string header [`ATTEMPT_HEADER`]. After the last attempt it is published to
//! `{queue}-dlq`. Only once the copy is confirmed is the original acked: nothing is lost, and a
//! copy that cannot be published leaves the original to a nack with requeue. Delivery stays at
//! least once: a copy whose confirm is lost in a broker failure may be queued beside its
//! requeued original.
//!
//! With retries on, every nack of a delivery counts as a failed attempt.

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

    /// The wait queue that holds a message of `queue` for `delay`.
    pub fn wait_queue(queue: &str, delay: Duration) -> String {
        format!("{queue}-retry-{}ms", delay.as_millis())
    }

    /// Where messages go after their last attempt.
    pub fn dead_letter_queue(queue: &str) -> String {
        format!("{queue}-dlq")
    }

    /// The queue a delivery of `queue` on attempt `attempt` goes to when it fails.
    pub(super) fn next_queue(&self, queue: &str, attempt: u32) -> String {
        match attempt < self.max_attempts {
            true => Self::wait_queue(queue, self.delay(attempt)),
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
        let name = Retry::wait_queue(queue, retry.delay(attempt));
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

/// The attempt a delivery is on, from [`ATTEMPT_HEADER`]; `None` when it has none. Anyone
/// can publish the header: a value below 1 counts as 1, so no message is sent on to a wait
/// queue that does not exist.
pub(super) fn attempt(properties: &BasicProperties) -> Option<u32> {
    let value = properties.headers().as_ref()?.inner().get(ATTEMPT_HEADER)?;
    let attempt: u32 = match value {
        AMQPValue::LongString(s) => std::str::from_utf8(s.as_bytes()).ok()?.parse().ok(),
        AMQPValue::ShortString(s) => s.as_str().parse().ok(),
        _ => None,
    }?;
    Some(attempt.max(1))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn with_attempt(value: &str) -> BasicProperties {
        let mut headers = FieldTable::default();
        headers.insert(
            ShortString::from(ATTEMPT_HEADER),
            AMQPValue::LongString(LongString::from(value)),
        );
        BasicProperties::default().with_headers(headers)
    }

    #[test]
    fn an_attempt_header_below_one_counts_as_the_first_attempt() {
        assert_eq!(attempt(&with_attempt("0")), Some(1));
        assert_eq!(attempt(&with_attempt("3")), Some(3));
        assert_eq!(attempt(&with_attempt("x")), None);
        assert_eq!(attempt(&BasicProperties::default()), None);
    }

    #[test]
    fn failed_attempts_wait_in_the_queue_of_their_delay_then_go_to_the_dead_letter_queue() {
        let retry = Retry::new(4).delays(Duration::from_millis(300), Duration::from_millis(500));
        assert_eq!(retry.next_queue("q", 1), "q-retry-300ms");
        assert_eq!(retry.next_queue("q", 2), "q-retry-500ms");
        assert_eq!(retry.next_queue("q", 3), "q-retry-500ms");
        assert_eq!(retry.next_queue("q", 4), "q-dlq");
        assert_eq!(retry.next_queue("q", 9), "q-dlq");
    }
}
