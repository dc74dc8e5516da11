//! Database spans `{operation} {table}`, for any driver (no feature needed).

use crate::attributes::{DB_COLLECTION_NAME, DB_OPERATION_NAME, DB_SYSTEM};
use crate::instrumentation::{self, SharedTracer, TracerSource};
use opentelemetry::trace::{SpanKind, TraceContextExt, Tracer};
use opentelemetry::{Context, KeyValue};

/// Starts database spans named `{operation} {table}` (e.g. `SELECT clusters`) as CLIENT
/// children of the current context.
///
/// ```
/// use hyperfleet_tracing::database::DatabaseTracing;
/// use opentelemetry::trace::TraceContextExt;
///
/// let db = DatabaseTracing::new("sqlite");
/// let cx = db.start("SELECT", "clusters");
/// // … run the query …
/// cx.span().end();
/// ```
#[derive(Clone)]
pub struct DatabaseTracing {
    tracer: SharedTracer,
    system: String,
}

impl DatabaseTracing {
    /// Spans for database `system` (`db.system`: `postgresql`, `sqlite`, …), from the global
    /// tracer provider.
    pub fn new(system: impl Into<String>) -> Self {
        Self {
            tracer: instrumentation::global_tracer(),
            system: system.into(),
        }
    }

    /// Spans from `provider`.
    pub fn tracer_provider(mut self, provider: &impl TracerSource) -> Self {
        self.tracer = provider.shared_tracer();
        self
    }

    /// Starts `{operation} {table}` under the current context; end it with `cx.span().end()`.
    pub fn start(&self, operation: &str, table: &str) -> Context {
        let parent = Context::current();
        let span = self
            .tracer
            .span_builder(format!("{operation} {table}"))
            .with_kind(SpanKind::Client)
            .with_attributes([
                KeyValue::new(DB_SYSTEM, self.system.clone()),
                KeyValue::new(DB_OPERATION_NAME, operation.to_owned()),
                KeyValue::new(DB_COLLECTION_NAME, table.to_owned()),
            ])
            .start_with_context(self.tracer.as_ref(), &parent);
        parent.with_span(span)
    }
}
