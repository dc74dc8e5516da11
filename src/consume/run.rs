//! The handler's run: inside the process span's context, with panics caught.

use super::{Handler, HandlerError, Received};
use futures::FutureExt as _;
use opentelemetry::Context;
use opentelemetry::context::FutureExt as _;
use std::panic::AssertUnwindSafe;

/// `error.type` of a handler panic.
pub(super) const HANDLER_PANIC: &str = "panic";

/// A handler panic, as an error to record.
#[derive(Debug, thiserror::Error)]
#[error("handler panicked: {0}")]
struct Panicked(String);

/// How the handler ended.
pub(super) enum HandlerOutcome {
    Handled,
    /// Failed with this `error.type` and error.
    Failed(&'static str, HandlerError),
}

impl HandlerOutcome {
    /// `error.type` when it failed.
    pub(super) fn error_type(&self) -> Option<&'static str> {
        match self {
            Self::Handled => None,
            Self::Failed(error_type, _) => Some(error_type),
        }
    }
}

/// Runs `handler` on `received` inside `cx`. A panic, even one raised before the handler
/// returns its future, is caught and reported as a failure.
pub(super) async fn run_handler<H: Handler>(
    handler: &H,
    received: Received,
    cx: Context,
) -> HandlerOutcome {
    let run = AssertUnwindSafe(async { handler.handle(received).await }.with_context(cx));
    match run.catch_unwind().await {
        Ok(Ok(())) => HandlerOutcome::Handled,
        Ok(Err(error)) => HandlerOutcome::Failed(crate::attributes::OTHER_ERROR, error),
        Err(panic) => {
            HandlerOutcome::Failed(HANDLER_PANIC, Box::new(Panicked(panic_text(&*panic))))
        }
    }
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}
