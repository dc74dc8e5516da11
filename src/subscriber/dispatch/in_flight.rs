//! The handler runs in flight: each in a task of its own, or all on the loop's task.

use crate::settings::Execution;
use futures::FutureExt as _;
use futures::StreamExt as _;
use futures::stream::FuturesUnordered;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use tokio::task::{Id, JoinSet};
use tokio::time::Instant;
use tracing::instrument::WithSubscriber;

/// A run in flight, until it finishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum RunId {
    Task(Id),
    Local(u64),
}

/// A run on the loop's task, tagged with its id; it says whether it acked.
type LocalRun = Pin<Box<dyn Future<Output = (u64, bool)> + Send>>;

pub(super) enum InFlight {
    Tasks(JoinSet<bool>),
    Local {
        runs: FuturesUnordered<LocalRun>,
        next_id: u64,
    },
}

impl InFlight {
    pub(super) fn new(execution: Execution) -> Self {
        match execution.resolved() {
            Execution::TaskPerMessage => Self::Tasks(JoinSet::new()),
            _ => Self::Local {
                runs: FuturesUnordered::new(),
                next_id: 0,
            },
        }
    }

    pub(super) fn len(&self) -> usize {
        match self {
            Self::Tasks(tasks) => tasks.len(),
            Self::Local { runs, .. } => runs.len(),
        }
    }

    /// Starts `run`, which settles its delivery and says whether it acked.
    pub(super) fn start(&mut self, run: impl Future<Output = bool> + Send + 'static) -> RunId {
        match self {
            // Handlers log through the caller's `tracing` subscriber, which a task does not
            // inherit.
            Self::Tasks(tasks) => RunId::Task(tasks.spawn(run.with_current_subscriber()).id()),
            Self::Local { runs, next_id } => {
                let id = *next_id;
                *next_id = id.wrapping_add(1);
                // A panic past the handler's own catch ends the run as an aborted task's
                // would: its delivery is dropped unsettled, which nacks it.
                let run = AssertUnwindSafe(run)
                    .catch_unwind()
                    .map(move |ran| (id, ran.unwrap_or(false)));
                runs.push(Box::pin(run));
                RunId::Local(id)
            }
        }
    }

    /// Waits for a run to finish: its id, and whether it acked (a run that did not finish
    /// dropped its delivery, which nacks it). `None` when nothing runs. Cancel-safe.
    pub(super) async fn next(&mut self) -> Option<(RunId, bool)> {
        match self {
            Self::Tasks(tasks) => tasks
                .join_next_with_id()
                .await
                .map(|finished| match finished {
                    Ok((id, acked)) => (RunId::Task(id), acked),
                    Err(error) => (RunId::Task(error.id()), false),
                }),
            Self::Local { runs, .. } => runs
                .next()
                .await
                .map(|(id, acked)| (RunId::Local(id), acked)),
        }
    }

    /// Stops every run, which drops and so nacks its delivery. Waits until `deadline` at the
    /// latest: a task blocking its thread cannot be aborted and is left behind.
    pub(super) async fn abort_all(&mut self, deadline: Instant) {
        match self {
            Self::Tasks(tasks) => {
                tasks.abort_all();
                let joined = async { while tasks.join_next().await.is_some() {} };
                if tokio::time::timeout_at(deadline, joined).await.is_err() {
                    tasks.detach_all();
                }
            }
            Self::Local { runs, .. } => runs.clear(),
        }
    }
}
