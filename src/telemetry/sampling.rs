//! Always-sample rules on top of head sampling.
//!
//! The standard asks that errors, slow operations and operations on chosen resources be kept
//! whatever the sampling ratio. Two pieces do it:
//!
//! - [`AlwaysSampleRules`], a sampler around the head sampler: a span whose start attributes
//!   name a listed resource (`hyperfleet.cluster_id` or `hyperfleet.resource_id`) is sampled;
//!   a span the head sampler drops is still *recorded* (not sampled) when tail rules are on,
//!   so its end can be judged;
//! - [`TailRulesProcessor`], a span processor around the exporting one: a recorded but
//!   unsampled span is exported if it ended in error (status Error, or
//!   `http.response.status_code` ≥ 500) or lasted longer than the threshold; the rest of the
//!   unsampled spans are dropped there.
//!
//! Trade-off: a kept error or slow span may lack its ancestors, which the head sampler dropped
//! and which ended fine; the backend shows it as a partial trace. Recording dropped spans costs
//! memory and CPU for every span until it ends, so the rules are switched off by
//! `HYPERFLEET_TRACING_ALWAYS_SAMPLE_ERRORS=false` with no slow threshold set.

use crate::span::attributes::{
    HTTP_RESPONSE_STATUS_CODE, HYPERFLEET_CLUSTER_ID, HYPERFLEET_RESOURCE_ID,
};
use opentelemetry::trace::{Link, SpanContext, SpanKind, Status, TraceFlags, TraceId};
use opentelemetry::{Context, KeyValue, Value};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    SamplingDecision, SamplingResult, ShouldSample, Span, SpanData, SpanProcessor,
};
use std::collections::HashSet;
use std::time::Duration;

/// A `http.response.status_code` from which on a span counts as an error.
const HTTP_SERVER_ERROR: i64 = 500;

/// A sampler that applies the resource rule and records what the head sampler drops.
#[derive(Debug, Clone)]
pub struct AlwaysSampleRules {
    head: Box<dyn ShouldSample>,
    resources: HashSet<String>,
    record_dropped: bool,
}

impl AlwaysSampleRules {
    /// Wraps `head`; spans naming one of `resources` are sampled; when `record_dropped`, spans
    /// `head` drops are recorded for the [`TailRulesProcessor`] to judge.
    pub fn new(
        head: impl ShouldSample + 'static,
        resources: impl IntoIterator<Item = String>,
        record_dropped: bool,
    ) -> Self {
        Self {
            head: Box::new(head),
            resources: resources.into_iter().collect(),
            record_dropped,
        }
    }

    fn names_listed_resource(&self, attributes: &[KeyValue]) -> bool {
        !self.resources.is_empty()
            && attributes.iter().any(|kv| {
                (kv.key.as_str() == HYPERFLEET_CLUSTER_ID
                    || kv.key.as_str() == HYPERFLEET_RESOURCE_ID)
                    && self.resources.contains(kv.value.as_str().as_ref())
            })
    }
}

impl ShouldSample for AlwaysSampleRules {
    fn should_sample(
        &self,
        parent_context: Option<&Context>,
        trace_id: TraceId,
        name: &str,
        span_kind: &SpanKind,
        attributes: &[KeyValue],
        links: &[Link],
    ) -> SamplingResult {
        let mut result =
            self.head
                .should_sample(parent_context, trace_id, name, span_kind, attributes, links);
        if result.decision != SamplingDecision::RecordAndSample
            && self.names_listed_resource(attributes)
        {
            result.decision = SamplingDecision::RecordAndSample;
        } else if result.decision == SamplingDecision::Drop && self.record_dropped {
            result.decision = SamplingDecision::RecordOnly;
        }
        result
    }
}

/// A span processor that exports sampled spans, and recorded-only spans that ended in error or
/// ran slow, through `inner`.
#[derive(Debug)]
pub struct TailRulesProcessor<P> {
    inner: P,
    errors: bool,
    slow_threshold: Option<Duration>,
}

impl<P: SpanProcessor> TailRulesProcessor<P> {
    /// Wraps `inner` (usually a batch processor with the exporter).
    pub fn new(inner: P, errors: bool, slow_threshold: Option<Duration>) -> Self {
        Self {
            inner,
            errors,
            slow_threshold,
        }
    }

    fn keep(&self, span: &SpanData) -> bool {
        let failed = matches!(span.status, Status::Error { .. })
            || span.attributes.iter().any(|kv| {
                kv.key.as_str() == HTTP_RESPONSE_STATUS_CODE
                    && matches!(kv.value, Value::I64(code) if code >= HTTP_SERVER_ERROR)
            });
        let slow = self.slow_threshold.is_some_and(|threshold| {
            span.end_time
                .duration_since(span.start_time)
                .is_ok_and(|took| took > threshold)
        });
        (self.errors && failed) || slow
    }
}

impl<P: SpanProcessor> SpanProcessor for TailRulesProcessor<P> {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        self.inner.on_start(span, cx);
    }

    fn on_end(&self, mut span: SpanData) {
        if span.span_context.is_sampled() {
            self.inner.on_end(span);
        } else if self.keep(&span) {
            // Exporting processors pass on sampled spans only: mark the kept one sampled.
            let sc = &span.span_context;
            span.span_context = SpanContext::new(
                sc.trace_id(),
                sc.span_id(),
                sc.trace_flags() | TraceFlags::SAMPLED,
                sc.is_remote(),
                sc.trace_state().clone(),
            );
            self.inner.on_end(span);
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}
