//! HTTP and database spans as the standard names them (feature `http`).
//!
//! Thin glue over the field's crates: `opentelemetry-http`'s header carriers move the context,
//! an axum middleware makes the server span, a wrapper around `reqwest` the client span. The
//! propagator is the one the event carrier uses (the application's, or W3C TraceContext), so
//! HTTP and CloudEvents hops continue the same traces.
//!
//! | span | kind | attributes |
//! |---|---|---|
//! | `{method} {route}`, e.g. `GET /clusters/{id}` | SERVER | `http.request.method`, `http.route`, `url.path`, `server.address`, `http.response.status_code`; status Error and `error.type` for 5xx |
//! | `{method}`, e.g. `PATCH` | CLIENT | `http.request.method`, `server.address`, `server.port`, `url.full` (no query), `http.response.status_code`; status Error and `error.type` for 4xx/5xx or a failed request |
//! | `{operation} {table}`, e.g. `SELECT clusters` | CLIENT | `db.system`, `db.operation.name`, `db.collection.name` |

mod client;
mod database;
mod server;

pub use client::HttpClientTracing;
pub use database::DatabaseTracing;
pub use server::HttpServerTracing;
