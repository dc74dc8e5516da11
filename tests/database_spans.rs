//! The database glue on a real driver (rusqlite): one `{operation} {table}` CLIENT span per
//! call with the standard's and the current attribute names, the call running in its context,
//! and a failure recorded by type, never by the error's text.

use hyperfleet_tracing::database::DatabaseTracing;
use hyperfleet_tracing::testing::TestTelemetry;
use hyperfleet_tracing::testing::spans::{attribute_str, single, texts};
use opentelemetry::trace::{SpanKind, Status, TraceContextExt};

fn database() -> rusqlite::Connection {
    let db = rusqlite::Connection::open_in_memory().unwrap();
    db.execute_batch("CREATE TABLE clusters (id TEXT PRIMARY KEY)")
        .unwrap();
    db
}

#[test]
fn a_call_is_one_span_with_both_attribute_names_and_runs_in_its_context() {
    let telemetry = TestTelemetry::new();
    let spans = DatabaseTracing::new("sqlite").tracer_provider(&telemetry.provider);
    let db = database();
    let inside = spans
        .query_blocking("INSERT", "clusters", || {
            db.execute("INSERT INTO clusters (id) VALUES ('c1')", [])
                .map(|_| {
                    opentelemetry::Context::current()
                        .span()
                        .span_context()
                        .span_id()
                })
        })
        .unwrap();
    let exported = telemetry.spans();
    let span = single(&exported, "INSERT clusters").unwrap();
    assert_eq!(span.span_kind, SpanKind::Client);
    assert_eq!(
        span.span_context.span_id(),
        inside,
        "the call runs in the span's context"
    );
    for (key, value) in [
        ("db.system", "sqlite"),
        ("db.system.name", "sqlite"),
        ("db.operation.name", "INSERT"),
        ("db.collection.name", "clusters"),
        ("db.query.summary", "INSERT clusters"),
    ] {
        assert_eq!(attribute_str(span, key).as_deref(), Some(value), "{key}");
    }
    assert_eq!(span.status, Status::Unset);
}

#[tokio::test]
async fn a_failed_call_is_recorded_by_its_error_type_not_its_text() {
    let telemetry = TestTelemetry::new();
    let spans = DatabaseTracing::new("sqlite").tracer_provider(&telemetry.provider);
    let db = database();
    db.execute("INSERT INTO clusters (id) VALUES ('secret-row')", [])
        .unwrap();
    let failed = spans.query_blocking("INSERT", "clusters", || {
        db.execute("INSERT INTO clusters (id) VALUES ('secret-row')", [])
    });
    assert!(failed.is_err());
    let async_failed: Result<(), std::io::Error> = spans
        .query("SELECT", "clusters", async {
            Err(std::io::Error::other("row secret-row is locked"))
        })
        .await;
    assert!(async_failed.is_err());

    let exported = telemetry.spans();
    let insert = single(&exported, "INSERT clusters").unwrap();
    assert!(matches!(insert.status, Status::Error { .. }));
    assert_eq!(
        attribute_str(insert, "error.type").as_deref(),
        Some("rusqlite::error::Error")
    );
    let select = single(&exported, "SELECT clusters").unwrap();
    assert_eq!(
        attribute_str(select, "error.type").as_deref(),
        Some("std::io::error::Error")
    );
    for span in &exported {
        for (key, text) in texts(span) {
            assert!(
                !text.contains("secret-row"),
                "{key} quotes the database's error"
            );
        }
    }
}
