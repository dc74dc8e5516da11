//! HTTP spans as the standard names them (features `http-server` and `http-client`).
//!
//! Thin glue over the field's crates: an axum middleware makes the server span
//! (`http-server`), a wrapper around `reqwest` the client span (`http-client`). The propagator
//! is the one the event carrier uses (the application's, or the crate's strict
//! [`W3cTraceContext`](crate::carrier::W3cTraceContext)), so HTTP and CloudEvents hops continue
//! the same traces. The server reads every value of a repeated header (repeated `tracestate`
//! headers are one list) and takes two `traceparent` headers for none.
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

use crate::span::attributes::{
    self, ERROR_TYPE, HTTP_REQUEST_METHOD, HTTP_RESPONSE_STATUS_CODE, OTHER_ERROR,
};
use opentelemetry::KeyValue;
use opentelemetry::trace::{SpanRef, Status};
use opentelemetry_semantic_conventions::attribute::HTTP_REQUEST_METHOD_ORIGINAL;

/// Records a response's status on its span; from `error_from` on, the span failed, with the
/// status code as its `error.type` (server spans fail from 500, client spans from 400).
fn record_status(span: &SpanRef<'_>, status: u16, error_from: u16) {
    span.set_attribute(KeyValue::new(HTTP_RESPONSE_STATUS_CODE, i64::from(status)));
    if status >= error_from {
        span.set_attribute(KeyValue::new(ERROR_TYPE, status.to_string()));
        span.set_status(Status::error(format!("HTTP {status}")));
    }
}

/// The methods HTTP defines; any other is recorded as `_OTHER`, as the semantic conventions
/// ask, so that a caller cannot put arbitrary text in span names.
const KNOWN_METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];

/// `http.request.method` names a method HTTP defines.
fn is_known_method(method: &str) -> bool {
    KNOWN_METHODS.contains(&method)
}

/// The method as span names carry it: `HTTP` for any method HTTP does not define.
fn span_method(method: &str) -> &str {
    if is_known_method(method) {
        method
    } else {
        "HTTP"
    }
}

/// `http.request.method`, and for an unknown method `http.request.method_original` (bounded).
fn method_attributes(method: &str) -> Vec<KeyValue> {
    if is_known_method(method) {
        return vec![KeyValue::new(HTTP_REQUEST_METHOD, method.to_owned())];
    }
    vec![
        KeyValue::new(HTTP_REQUEST_METHOD, OTHER_ERROR),
        KeyValue::new(HTTP_REQUEST_METHOD_ORIGINAL, attributes::bounded(method)),
    ]
}
