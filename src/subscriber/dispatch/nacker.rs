//! Sends deliveries back, one after another in the order given, off the dispatcher's path.

use crate::transport::Delivery;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

pub(super) struct Nacker {
    queue: mpsc::UnboundedSender<Delivery>,
    worker: JoinHandle<()>,
}

impl Nacker {
    pub(super) fn start() -> Self {
        let (queue, mut deliveries) = mpsc::unbounded_channel::<Delivery>();
        let worker = tokio::spawn(async move {
            while let Some(delivery) = deliveries.recv().await {
                // A nack that fails leaves the message to its ack deadline.
                let _ = delivery.nack().await;
            }
        });
        Self { queue, worker }
    }

    /// Nacks `delivery` after those sent back before it.
    pub(super) fn send_back(&self, delivery: Delivery) {
        // The worker only stops once `queue` is dropped; were it gone, dropping the delivery
        // here nacks it all the same.
        let _ = self.queue.send(delivery);
    }

    /// Lets the worker nack what is queued until `deadline`, then drops the rest, which nacks
    /// them as well.
    pub(super) async fn finish(self, deadline: Instant) {
        let Self { queue, mut worker } = self;
        drop(queue);
        if tokio::time::timeout_at(deadline, &mut worker)
            .await
            .is_err()
        {
            worker.abort();
        }
    }
}
