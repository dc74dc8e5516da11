//! The memory budget: what the deliveries in flight may hold at once, so that the largest
//! requests Pub/Sub can send, as many as callers like, cannot take an instance past its memory.
//!
//! A request is charged before its body is read: its `Content-Length` (the body limit when it
//! names none) times what a delivery holds at its peak — the body, the message data decoded
//! from it, and the event decoded from that. A request that cannot fit even alone is answered
//! 413; one that does not fit now, 429, which Pub/Sub answers by slowing down and retrying.
//!
//! The charge holds for the event's data as bytes or a string; JSON data made of many tiny
//! values (a 10 MB array of zeros) parses into several times its size, more than the charge.
//! Each 429 counts as a delivery attempt, so a large delivery that keeps arriving beside a
//! steady load of others can reach a dead-letter policy's limit unhandled: size the budget for
//! the largest deliveries the subscription carries.

use axum::http::{HeaderMap, StatusCode, header::CONTENT_LENGTH};
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The copies of a body a delivery holds at its peak: the body, the data decoded from its
/// base64, the event decoded from the data.
const COPIES: u64 = 3;
/// The budget counts kibibytes, so that a semaphore's permits can count gibibytes.
const UNIT: u64 = 1024;

/// A byte budget shared by the deliveries in flight.
pub(super) struct MemoryBudget {
    permits: Arc<Semaphore>,
    total: u64,
    body_limit: u64,
}

impl MemoryBudget {
    pub(super) fn new(bytes: usize, body_limit: usize) -> Self {
        let total = (bytes as u64 / UNIT).clamp(1, Semaphore::MAX_PERMITS as u64);
        Self {
            permits: Arc::new(Semaphore::new(total as usize)),
            total,
            body_limit: body_limit as u64,
        }
    }

    /// Reserves what the request whose headers are `headers` may hold; released when the
    /// permit is dropped. 413 when it can never fit, 429 when it does not fit now.
    pub(super) fn reserve(&self, headers: &HeaderMap) -> Result<OwnedSemaphorePermit, StatusCode> {
        let length = headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map_or(self.body_limit, |length| length.min(self.body_limit));
        let charge = (length.saturating_mul(COPIES) / UNIT).max(1);
        if charge > self.total {
            return Err(StatusCode::PAYLOAD_TOO_LARGE);
        }
        let charge = u32::try_from(charge).map_err(|_| StatusCode::PAYLOAD_TOO_LARGE)?;
        Arc::clone(&self.permits)
            .try_acquire_many_owned(charge)
            .map_err(|_| StatusCode::TOO_MANY_REQUESTS)
    }
}
