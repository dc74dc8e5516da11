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
