//! The stream of deliveries a subscription yields, and how it is closed.

use super::{Delivery, TransportError};
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

type Close = Box<dyn FnOnce() -> BoxFuture<'static, ()> + Send>;

/// Deliveries from one subscription; it ends when the transport closes.
///
/// Dropping it stops pulling. [`close`](Self::close) also waits for the backend to finish its
/// own work (for Pub/Sub: send the pending acks and nacks of the deliveries handed out).
pub struct DeliveryStream {
    inner: BoxStream<'static, Result<Delivery, TransportError>>,
    close: Option<Close>,
}

impl DeliveryStream {
    /// A stream with nothing to do on close.
    pub fn new(inner: BoxStream<'static, Result<Delivery, TransportError>>) -> Self {
        Self { inner, close: None }
    }

    /// Runs `close` when the stream is [closed](Self::close).
    pub fn on_close<F>(mut self, close: F) -> Self
    where
        F: FnOnce() -> BoxFuture<'static, ()> + Send + 'static,
    {
        self.close = Some(Box::new(close));
        self
    }

    /// Passes every delivery through `f`, keeping what [`close`](Self::close) does: for
    /// transport decorators that wrap deliveries (their acknowledgers, say).
    pub fn map_deliveries<F>(self, mut f: F) -> Self
    where
        F: FnMut(Delivery) -> Delivery + Send + 'static,
    {
        let Self { inner, close } = self;
        Self {
            inner: Box::pin(inner.map(move |item| item.map(&mut f))),
            close,
        }
    }

    /// Stops pulling and waits for the backend to settle what it handed out. Deliveries still
    /// held can be acked or nacked while this runs.
    pub async fn close(self) {
        let Self { inner, close } = self;
        drop(inner);
        if let Some(close) = close {
            close().await;
        }
    }
}

impl Stream for DeliveryStream {
    type Item = Result<Delivery, TransportError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

impl fmt::Debug for DeliveryStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeliveryStream")
            .field("has_close", &self.close.is_some())
            .finish_non_exhaustive()
    }
}
