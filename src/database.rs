//! Database spans `{operation} {table}` on top of any driver (no feature needed).
//!
//! The glue wraps a driver's call: [`DatabaseTracing::query`] for an async driver
//! (tokio-postgres, sqlx, …), [`DatabaseTracing::query_blocking`] for a synchronous one
//! (rusqlite, …). Each call is one CLIENT span with the HyperFleet standard's attributes and
//! the current semantic conventions' names beside them:
//!
//! | attribute | value |
//! |---|---|
//! | `db.system` (standard) and `db.system.name` (current) | `postgresql`, `sqlite`, … |
//! | `db.operation.name` | `SELECT`, `UPDATE`, … |
//! | `db.collection.name` | the table |
//! | `db.query.summary` | `{operation} {table}`, as the span's name |
//!
//! A failed call sets status Error and `error.type` to the driver's error type. The error's
//! text is not recorded: a database error may quote the row it refused.

use crate::span::attributes::{
    DB_COLLECTION_NAME, DB_OPERATION_NAME, DB_QUERY_SUMMARY, DB_SYSTEM, DB_SYSTEM_NAME, ERROR_TYPE,
    bounded,
};
use crate::span::{self, SharedTracer, TracerSource};
use opentelemetry::context::FutureExt as _;
use opentelemetry::trace::{SpanKind, Status, TraceContextExt, Tracer};
use opentelemetry::{Context, KeyValue};
use std::future::Future;

/// Starts database spans named `{operation} {table}` (e.g. `SELECT clusters`) as CLIENT
/// children of the current context.
///
/// ```
/// use hyperfleet_tracing::database::DatabaseTracing;
///
/// # async fn f(client: tokio_postgres::Client) -> Result<(), tokio_postgres::Error> {
/// let db = DatabaseTracing::new("postgresql");
/// let rows = db
///     .query("SELECT", "clusters", client.query("SELECT id FROM clusters", &[]))
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct DatabaseTracing {
    tracer: SharedTracer,
    system: String,
}

impl DatabaseTracing {
    /// Spans for database `system` (`postgresql`, `sqlite`, …), from the global tracer
    /// provider.
    pub fn new(system: impl Into<String>) -> Self {
        Self {
            tracer: span::global_tracer(),
            system: system.into(),
        }
    }

    /// Spans from `provider`.
    pub fn tracer_provider(mut self, provider: &impl TracerSource) -> Self {
        self.tracer = provider.shared_tracer();
        self
    }

    /// Runs a driver's async call inside `{operation} {table}` (its context is the current
    /// one while it runs) and ends the span with its outcome.
    pub async fn query<T, E, F>(&self, operation: &str, table: &str, call: F) -> Result<T, E>
    where
        F: Future<Output = Result<T, E>>,
    {
        let cx = self.start(operation, table);
        let result = call.with_context(cx.clone()).await;
        end(&cx, &result);
        result
    }

    /// Runs a synchronous driver's call inside `{operation} {table}` and ends the span with
    /// its outcome.
    pub fn query_blocking<T, E>(
        &self,
        operation: &str,
        table: &str,
        call: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, E> {
        let cx = self.start(operation, table);
        let result = {
            let _attached = cx.clone().attach();
            call()
        };
        end(&cx, &result);
        result
    }

    /// Starts `{operation} {table}` under the current context; end it with `cx.span().end()`.
    /// Prefer [`query`](Self::query), which also records a failure.
    pub fn start(&self, operation: &str, table: &str) -> Context {
        let parent = Context::current();
        let summary = bounded(&format!("{operation} {table}"));
        let span = self
            .tracer
            .span_builder(summary.clone())
            .with_kind(SpanKind::Client)
            .with_attributes([
                KeyValue::new(DB_SYSTEM, self.system.clone()),
                KeyValue::new(DB_SYSTEM_NAME, self.system.clone()),
                KeyValue::new(DB_OPERATION_NAME, bounded(operation)),
                KeyValue::new(DB_COLLECTION_NAME, bounded(table)),
                KeyValue::new(DB_QUERY_SUMMARY, summary),
            ])
            .start_with_context(self.tracer.as_ref(), &parent);
        parent.with_span(span)
    }
}

/// Ends the call's span; a failure is recorded by its error's type, not its text.
fn end<T, E>(cx: &Context, result: &Result<T, E>) {
    let span = cx.span();
    if result.is_err() {
        let error_type = std::any::type_name::<E>();
        span.set_attribute(KeyValue::new(ERROR_TYPE, error_type));
        span.set_status(Status::error(error_type));
    }
    span.end();
}
