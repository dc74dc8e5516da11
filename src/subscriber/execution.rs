//! Where the subscriber loop runs its handlers.

/// Where [`TracedSubscriber`](super::TracedSubscriber) runs its handlers.
///
/// Either way up to the subscriber's concurrency run at once, ordering keys keep their order,
/// a panic is recorded and nacked, and at the shutdown timeout the handlers still running are
/// dropped, which nacks their messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Execution {
    /// Each handler in a task of its own: on a multi-threaded runtime handlers run in
    /// parallel, and a handler that blocks its thread in synchronous code leaves the loop free
    /// to stop at the shutdown timeout.
    #[default]
    TaskPerMessage,
    /// Every handler on the loop's own task, polled together (as a stream's
    /// `buffer_unordered` would): no task is spawned per message, which makes the loop
    /// cheaper per message, but the handlers share one thread at a time, and a handler that
    /// blocks its thread blocks the loop, its shutdown timeout included. For handlers that
    /// await I/O rather than compute.
    LoopTask,
}
