//! Settings of a subscription, shared by the backends' admin helpers.

use super::{ErrorCode, TransportError};
use std::time::Duration;

/// How a subscription delivers messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionConfig {
    /// Time a delivery may stay unsettled before it is delivered again (Pub/Sub default: 10 s),
    /// unless the subscriber extends it: Google's clients extend the leases of the messages
    /// they hold, and so does the memory transport, which therefore only checks this value.
    pub ack_deadline: Duration,
    /// Deliver messages that share an ordering key one at a time, in publish order.
    pub message_ordering: bool,
    /// Forward a message to a dead-letter topic after too many delivery attempts.
    pub dead_letter: Option<DeadLetterPolicy>,
}

impl Default for SubscriptionConfig {
    fn default() -> Self {
        Self {
            ack_deadline: Duration::from_secs(10),
            message_ordering: false,
            dead_letter: None,
        }
    }
}

impl SubscriptionConfig {
    /// Checks the settings against Pub/Sub's limits: ack deadline 10–600 s, dead-letter
    /// attempts 5–100.
    pub fn validate(&self) -> Result<(), TransportError> {
        if !(Duration::from_secs(10)..=Duration::from_secs(600)).contains(&self.ack_deadline) {
            return Err(TransportError::new(
                ErrorCode::InvalidArgument,
                format!(
                    "ack deadline {:?} is outside 10 s to 600 s",
                    self.ack_deadline
                ),
            ));
        }
        if let Some(policy) = &self.dead_letter
            && !(5..=100).contains(&policy.max_delivery_attempts)
        {
            return Err(TransportError::new(
                ErrorCode::InvalidArgument,
                format!(
                    "max delivery attempts {} is outside 5 to 100",
                    policy.max_delivery_attempts
                ),
            ));
        }
        Ok(())
    }

    /// Sets the ack deadline.
    pub fn ack_deadline(mut self, deadline: Duration) -> Self {
        self.ack_deadline = deadline;
        self
    }

    /// Turns message ordering on or off.
    pub fn message_ordering(mut self, on: bool) -> Self {
        self.message_ordering = on;
        self
    }

    /// Sets the dead-letter policy.
    pub fn dead_letter(mut self, policy: DeadLetterPolicy) -> Self {
        self.dead_letter = Some(policy);
        self
    }
}

/// Where undeliverable messages go, and after how many attempts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetterPolicy {
    /// The dead-letter topic; hyperfleet-broker names it `{subscription}-dlq`.
    pub topic: String,
    /// Delivery attempts before a message is dead-lettered (Pub/Sub allows 5–100; default 5).
    pub max_delivery_attempts: u32,
}

impl DeadLetterPolicy {
    /// A policy forwarding to `topic` after `max_delivery_attempts` attempts.
    pub fn new(topic: impl Into<String>, max_delivery_attempts: u32) -> Self {
        Self {
            topic: topic.into(),
            max_delivery_attempts,
        }
    }

    /// The hyperfleet-broker convention: `{subscription}-dlq`, 5 attempts.
    pub fn for_subscription(subscription: &str) -> Self {
        Self::new(format!("{subscription}-dlq"), 5)
    }
}
