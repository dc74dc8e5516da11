//! The handler's run: inside the process span's context, with panics caught.

use super::{Handler, HandlerError, Received};
use futures::FutureExt as _;
use futures::future::{self, Either};
use opentelemetry::Context;
use opentelemetry::context::FutureExt as _;
use std::future::Future;
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

/// Starts `handler` on `received` inside `cx`, and returns its run. A panic, even one raised
/// before the handler returns its future, is caught and reported as a failure.
///
/// The handler is called here rather than in the returned future, so the event it takes is
/// not also kept in that future's state: a smaller future is cheaper to spawn and move.
pub(super) fn run_handler<'a, H: Handler>(
    handler: &'a H,
    received: Received,
    cx: Context,
) -> impl Future<Output = HandlerOutcome> + Send + 'a {
    let called = {
        let _attached = cx.clone().attach();
        std::panic::catch_unwind(AssertUnwindSafe(|| handler.handle(received)))
    };
    match called {
        Ok(running) => Either::Left(
            AssertUnwindSafe(running.with_context(cx))
                .catch_unwind()
                .map(outcome),
        ),
        Err(panic) => Either::Right(future::ready(panicked(&*panic))),
    }
}

fn outcome(ran: std::thread::Result<Result<(), HandlerError>>) -> HandlerOutcome {
    match ran {
        Ok(Ok(())) => HandlerOutcome::Handled,
        Ok(Err(error)) => HandlerOutcome::Failed(crate::span::attributes::OTHER_ERROR, error),
        Err(panic) => panicked(&*panic),
    }
}

fn panicked(panic: &(dyn std::any::Any + Send)) -> HandlerOutcome {
    HandlerOutcome::Failed(HANDLER_PANIC, Box::new(Panicked(panic_text(panic))))
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

#[cfg(test)]
mod tests {
    use super::*;
    use cloudevents::EventBuilder as _;
    use opentelemetry::KeyValue;

    fn received(cx: &Context) -> Received {
        let event = cloudevents::EventBuilderV10::new()
            .id("e1")
            .source("/test")
            .ty("test")
            .build()
            .unwrap_or_default();
        Received {
            event,
            message_id: None,
            delivery_attempt: None,
            subscription: "s".to_owned(),
            context: cx.clone(),
        }
    }

    fn marked() -> Context {
        Context::current().with_value(KeyValue::new("run", "marked"))
    }

    fn is_marked() -> bool {
        Context::current().get::<KeyValue>() == Some(&KeyValue::new("run", "marked"))
    }

    fn error_type(outcome: &HandlerOutcome) -> Option<&'static str> {
        outcome.error_type()
    }

    #[tokio::test]
    async fn both_parts_of_the_handler_run_inside_its_context() {
        let cx = marked();
        let handler = |_: Received| {
            let before = is_marked();
            async move {
                tokio::task::yield_now().await;
                if before && is_marked() {
                    Ok(())
                } else {
                    Err("not inside the context".into())
                }
            }
        };
        let outcome = run_handler(&handler, received(&cx), cx).await;
        assert_eq!(error_type(&outcome), None);
        assert!(!is_marked(), "the context stayed attached after the run");
    }

    #[tokio::test]
    async fn a_panic_before_the_future_is_returned_is_a_failure() {
        let cx = marked();
        let handler = |_: Received| -> futures::future::Ready<Result<(), HandlerError>> {
            panic!("before the future")
        };
        let outcome = run_handler(&handler, received(&cx), cx).await;
        assert_eq!(error_type(&outcome), Some(HANDLER_PANIC));
        assert!(!is_marked(), "the context stayed attached after the panic");
    }

    #[tokio::test]
    async fn a_panic_inside_the_future_is_a_failure_with_its_text() {
        let cx = marked();
        let handler = |_: Received| async {
            tokio::task::yield_now().await;
            panic!("inside the future");
            #[allow(unreachable_code)]
            Ok(())
        };
        match run_handler(&handler, received(&cx), cx).await {
            HandlerOutcome::Failed(kind, error) => {
                assert_eq!(kind, HANDLER_PANIC);
                assert_eq!(error.to_string(), "handler panicked: inside the future");
            }
            HandlerOutcome::Handled => panic!("a panicking handler was handled"),
        }
    }

    #[tokio::test]
    async fn an_error_is_a_failure_of_the_other_type() {
        let cx = marked();
        let handler = |_: Received| async { Err::<(), HandlerError>("no".into()) };
        let outcome = run_handler(&handler, received(&cx), cx).await;
        assert_eq!(
            error_type(&outcome),
            Some(crate::span::attributes::OTHER_ERROR)
        );
    }
}
