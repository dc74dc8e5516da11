//! The deliveries being handled, so that shutdown can abandon those still running at its
//! deadline: each is answered with a nack, and Pub/Sub delivers it again.

use crate::sync::lock;
use futures::future::{AbortHandle, Abortable};
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

#[derive(Clone, Default)]
pub(super) struct InFlight(Arc<Mutex<State>>);

#[derive(Default)]
struct State {
    next: u64,
    running: HashMap<u64, AbortHandle>,
    abandoned: bool,
}

impl InFlight {
    /// Runs `work` unless shutdown abandoned it (then `None`, also when abandoned before it
    /// started).
    pub(super) async fn run<F: Future>(&self, work: F) -> Option<F::Output> {
        let (handle, registration) = AbortHandle::new_pair();
        let id = {
            let mut state = lock(&self.0);
            if state.abandoned {
                return None;
            }
            state.next += 1;
            let id = state.next;
            state.running.insert(id, handle);
            id
        };
        let _done = Done(self, id);
        Abortable::new(work, registration).await.ok()
    }

    /// Abandons what is running and what would start.
    pub(super) fn abandon(&self) {
        let mut state = lock(&self.0);
        state.abandoned = true;
        for handle in state.running.values() {
            handle.abort();
        }
    }
}

/// Forgets a delivery however its handling ends, cancellation included.
struct Done<'a>(&'a InFlight, u64);

impl Drop for Done<'_> {
    fn drop(&mut self) {
        lock(&self.0.0).running.remove(&self.1);
    }
}
