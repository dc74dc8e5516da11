//! The CLIENT span of an outgoing HTTP call, with the context injected into its headers.

use crate::carrier::Propagation;
use crate::settings::Settings;
use crate::span::attributes::{self, OTHER_ERROR, SERVER_ADDRESS, SERVER_PORT, URL_FULL};
use crate::span::{self, SharedTracer, record_failure};
use opentelemetry::trace::{SpanKind, TraceContextExt, Tracer};
use opentelemetry::{Context, KeyValue};
use opentelemetry_http::HeaderInjector;

/// Sends `reqwest` requests inside a CLIENT span `{method}` (a child of the current context),
/// writing `traceparent` into the request so the server continues the trace.
///
/// ```no_run
/// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
/// use hyperfleet_tracing::http::HttpClientTracing;
///
/// let client = reqwest::Client::new();
/// let request = client.get("http://127.0.0.1:8000/clusters/c1").build()?;
/// let response = HttpClientTracing::new().send(&client, request).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct HttpClientTracing {
    tracer: SharedTracer,
    propagation: Propagation,
}

impl Default for HttpClientTracing {
    fn default() -> Self {
        Self::new()
    }
}

impl HttpClientTracing {
    /// Spans from the global tracer provider, with the defaults of
    /// [`Settings::new`](crate::Settings::new).
    pub fn new() -> Self {
        Self {
            tracer: span::global_tracer(),
            propagation: Propagation::global(),
        }
    }

    /// Uses the tracer provider and propagator of `settings`.
    pub fn settings(mut self, settings: Settings) -> Self {
        self.tracer = settings.tracer;
        self.propagation = settings.propagation;
        self
    }

    /// Sends `request` through `client` under the current context.
    pub async fn send(
        &self,
        client: &reqwest::Client,
        mut request: reqwest::Request,
    ) -> Result<reqwest::Response, reqwest::Error> {
        let parent = Context::current();
        let method = request.method().as_str().to_owned();
        let span = self
            .tracer
            .span_builder(super::span_method(&method).to_owned())
            .with_kind(SpanKind::Client)
            .with_attributes(request_attributes(&request))
            .start_with_context(self.tracer.as_ref(), &parent);
        let cx = parent.with_span(span);
        self.propagation
            .with(|p| p.inject_context(&cx, &mut HeaderInjector(request.headers_mut())));
        let result = client.execute(request).await;
        let span = cx.span();
        match &result {
            Ok(response) => super::record_status(&span, response.status().as_u16(), 400),
            Err(error) => record_failure(
                &span,
                "exception",
                error_type(error),
                &ScrubbedError::of(error),
            ),
        }
        span.end();
        result
    }
}

/// Method, server address and port, and the URL without what may hold secrets.
fn request_attributes(request: &reqwest::Request) -> Vec<KeyValue> {
    let url = request.url();
    let mut attributes = super::method_attributes(request.method().as_str());
    if let Some(host) = url.host_str() {
        attributes.push(KeyValue::new(SERVER_ADDRESS, host.to_owned()));
    }
    if let Some(port) = url.port_or_known_default() {
        attributes.push(KeyValue::new(SERVER_PORT, i64::from(port)));
    }
    attributes.push(KeyValue::new(URL_FULL, attributes::bounded(&scrubbed(url))));
    attributes
}

/// Scheme, host, port and path only: queries, fragments and credentials may hold secrets.
fn scrubbed(url: &reqwest::Url) -> String {
    let mut url = url.clone();
    url.set_query(None);
    url.set_fragment(None);
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.to_string()
}

/// A failed request's error as it is recorded: its text with the URL scrubbed.
#[derive(Debug)]
struct ScrubbedError(String);

impl ScrubbedError {
    fn of(error: &reqwest::Error) -> Self {
        let text = error.to_string();
        Self(match error.url() {
            Some(url) => text.replace(url.as_str(), &scrubbed(url)),
            None => text,
        })
    }
}

impl std::fmt::Display for ScrubbedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ScrubbedError {}

fn error_type(error: &reqwest::Error) -> &'static str {
    if error.is_timeout() {
        "timeout"
    } else if error.is_connect() {
        "connect"
    } else {
        OTHER_ERROR
    }
}
