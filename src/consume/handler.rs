//! What the application plugs into the consume pipeline.

use cloudevents::Event;
use opentelemetry::Context;
use std::future::Future;

/// The error a handler returns: any error.
pub type HandlerError = Box<dyn std::error::Error + Send + Sync>;

/// One event handed to a handler.
#[derive(Debug, Clone)]
pub struct Received {
    /// The decoded event.
    pub event: Event,
    /// The transport's message id.
    pub message_id: Option<String>,
    /// The delivery attempt, when the transport counts them.
    pub delivery_attempt: Option<u32>,
    /// The subscription it came from.
    pub subscription: String,
    /// The process span's context; the handler also runs inside it, so
    /// [`Context::current`] returns the same.
    pub context: Context,
}

/// Handles events from a subscription. `Ok` acks the message; `Err` records the error and,
/// under the default [`AckPolicy`](crate::settings::AckPolicy), nacks it.
///
/// Any `Fn(Received) -> impl Future<Output = Result<(), HandlerError>>` is a handler.
pub trait Handler: Send + Sync + 'static {
    /// Handles one event.
    fn handle(&self, received: Received) -> impl Future<Output = Result<(), HandlerError>> + Send;
}

impl<F, Fut> Handler for F
where
    F: Fn(Received) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
{
    fn handle(&self, received: Received) -> impl Future<Output = Result<(), HandlerError>> + Send {
        self(received)
    }
}
