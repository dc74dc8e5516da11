//! The SERVER span of an axum route, continuing the caller's trace.

use crate::carrier::{Propagation, RequestHeaders, StrictExtractor};
use crate::settings::{ParentMode, Settings};
use crate::span::attributes::{self, HTTP_ROUTE, SERVER_ADDRESS, URL_PATH};
use crate::span::{self, SharedTracer};
use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use opentelemetry::KeyValue;
use opentelemetry::context::FutureExt as _;
use opentelemetry::trace::{SpanKind, TraceContextExt, Tracer};

/// Traces the routes of an axum router: one SERVER span `{method} {route}` per request, a
/// child of the `traceparent` the caller sent, with the handler running in its context.
///
/// ```
/// use axum::{routing::get, Router};
/// use hyperfleet_tracing::http::HttpServerTracing;
///
/// let app: Router = HttpServerTracing::new()
///     .server_address("api.hyperfleet.local")
///     .route_layer(Router::new().route("/clusters/{id}", get(|| async { "ok" })));
/// ```
#[derive(Clone)]
pub struct HttpServerTracing {
    tracer: SharedTracer,
    propagation: Propagation,
    server_address: Option<String>,
    parent_mode: ParentMode,
}

impl Default for HttpServerTracing {
    fn default() -> Self {
        Self::new()
    }
}

impl HttpServerTracing {
    /// Spans from the global tracer provider, with the defaults of
    /// [`Settings::new`](crate::Settings::new).
    pub fn new() -> Self {
        Self {
            tracer: span::global_tracer(),
            propagation: Propagation::global(),
            server_address: None,
            parent_mode: ParentMode::default(),
        }
    }

    /// Uses the tracer provider, propagator and parent mode of `settings`: the SERVER span is
    /// the child of the caller's `traceparent` (the default), or, under
    /// [`ParentMode::Link`] for callers whose context should not be trusted, a new trace
    /// linked to it.
    pub fn settings(mut self, settings: Settings) -> Self {
        self.tracer = settings.tracer;
        self.propagation = settings.propagation;
        self.parent_mode = settings.parent_mode;
        self
    }

    /// The `server.address` to report (default: the request's `Host` without the port).
    pub fn server_address(mut self, address: impl Into<String>) -> Self {
        self.server_address = Some(address.into());
        self
    }

    /// Adds the tracing middleware to `router`'s routes. It is a route layer, so the matched
    /// route template is known; requests that match no route are not traced.
    pub fn route_layer<S: Clone + Send + Sync + 'static>(self, router: Router<S>) -> Router<S> {
        router.route_layer(axum::middleware::from_fn_with_state(self, trace_request))
    }
}

async fn trace_request(
    State(tracing): State<HttpServerTracing>,
    matched: Option<MatchedPath>,
    request: Request,
    next: Next,
) -> Response {
    let caller = tracing
        .propagation
        .extract(&StrictExtractor(RequestHeaders(request.headers())));
    let (parent, links) = tracing.parent_mode.resolve(caller);
    let method = request.method().as_str().to_owned();
    let path = request.uri().path().to_owned();
    let route = matched.map_or_else(|| path.clone(), |m| m.as_str().to_owned());
    let address = tracing.server_address.clone().or_else(|| {
        let host = request.headers().get(http::header::HOST)?.to_str().ok()?;
        Some(host.rsplit_once(':').map_or(host, |(h, _)| h).to_owned())
    });
    let mut attributes = super::method_attributes(&method);
    attributes.extend([
        KeyValue::new(HTTP_ROUTE, attributes::bounded(&route)),
        KeyValue::new(URL_PATH, attributes::bounded(&path)),
    ]);
    if let Some(address) = address {
        attributes.push(KeyValue::new(SERVER_ADDRESS, attributes::bounded(&address)));
    }
    let span = tracing
        .tracer
        .span_builder(attributes::bounded(&format!(
            "{} {route}",
            super::span_method(&method)
        )))
        .with_kind(SpanKind::Server)
        .with_attributes(attributes)
        .with_links(links)
        .start_with_context(tracing.tracer.as_ref(), &parent);
    let cx = parent.with_span(span);
    let response = next.run(request).with_context(cx.clone()).await;
    let span = cx.span();
    super::record_status(&span, response.status().as_u16(), 500);
    span.end();
    response
}
