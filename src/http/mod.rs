//! HTTP spans as the standard names them (features `http-server` and `http-client`).
//!
//! Thin glue over the field's crates: `opentelemetry-http`'s header carriers move the context,
//! an axum middleware makes the server span (`http-server`), a wrapper around `reqwest` the
//! client span (`http-client`). The
//! propagator is the one the event carrier uses (the application's, or W3C TraceContext), so
//! HTTP and CloudEvents hops continue the same traces.
//!
//! | span | kind | attributes |
//! |---|---|---|
//! | `{method} {route}`, e.g. `GET /clusters/{id}` | SERVER | `http.request.method`, `http.route`, `url.path`, `server.address`, `http.response.status_code`; status Error and `error.type` for 5xx |
//! | `{method}`, e.g. `PATCH` | CLIENT | `http.request.method`, `server.address`, `server.port`, `url.full` (no query), `http.response.status_code`; status Error and `error.type` for 4xx/5xx or a failed request |

#[cfg(feature = "http-client")]
mod client;
#[cfg(feature = "http-server")]
mod server;

#[cfg(feature = "http-client")]
pub use client::HttpClientTracing;
#[cfg(feature = "http-server")]
pub use server::HttpServerTracing;

use crate::attributes::{ERROR_TYPE, HTTP_RESPONSE_STATUS_CODE};
use opentelemetry::KeyValue;
use opentelemetry::trace::{SpanRef, Status};

/// Records a response's status on its span; from `error_from` on, the span failed, with the
/// status code as its `error.type` (server spans fail from 500, client spans from 400).
fn record_status(span: &SpanRef<'_>, status: u16, error_from: u16) {
    span.set_attribute(KeyValue::new(HTTP_RESPONSE_STATUS_CODE, i64::from(status)));
    if status >= error_from {
        span.set_attribute(KeyValue::new(ERROR_TYPE, status.to_string()));
        span.set_status(Status::error(format!("HTTP {status}")));
    }
}
