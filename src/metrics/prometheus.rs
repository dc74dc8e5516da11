//! The Prometheus sink (feature `prometheus`): both metric families in a `prometheus-client`
//! registry, encoded as OpenMetrics text with exemplars. OpenTelemetry names become
//! Prometheus names as OpenTelemetry's compatibility rules say (`.` → `_`, the unit and
//! `_total` as suffixes); every metric carries `component` and `version`, as the HyperFleet
//! metrics standard asks.

use super::labels::SiteLabels;
use super::measurement::{Measurement, Timed};
use super::names::{self, BrokerError};
use crate::span::attributes::{ERROR_TYPE, MESSAGING_OPERATION_NAME};
use opentelemetry::trace::SpanContext;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::exemplar::HistogramWithExemplars;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::{Registry, Unit};
use std::time::SystemTime;

/// Label names and values.
type Labels = Vec<(String, String)>;
/// `trace_id` and `span_id` of the span that measured a sample.
type TraceExemplar = Vec<(&'static str, String)>;
type Histogram = HistogramWithExemplars<TraceExemplar>;
type Histograms = Family<Labels, Histogram, fn() -> Histogram>;

fn processing_histogram() -> Histogram {
    HistogramWithExemplars::new(names::PROCESSING_BUCKETS.iter().copied())
}

fn operation_histogram() -> Histogram {
    HistogramWithExemplars::new(names::OPERATION_BUCKETS.iter().copied())
}

/// Every family, registered once per registry.
#[derive(Clone)]
pub(super) struct Families {
    published: Family<Labels, Counter>,
    consumed: Family<Labels, Counter>,
    errors: Family<Labels, Counter>,
    duration: Histograms,
    sent_messages: Family<Labels, Counter>,
    consumed_messages: Family<Labels, Counter>,
    process_duration: Histograms,
    operation_duration: Histograms,
}

impl Families {
    pub(super) fn register(registry: &mut Registry) -> Self {
        let families = Self {
            published: Family::default(),
            consumed: Family::default(),
            errors: Family::default(),
            duration: Family::new_with_constructor(processing_histogram),
            sent_messages: Family::default(),
            consumed_messages: Family::default(),
            process_duration: Family::new_with_constructor(operation_histogram),
            operation_duration: Family::new_with_constructor(operation_histogram),
        };
        let counters = [
            (
                names::HYPERFLEET_BROKER_MESSAGES_PUBLISHED_TOTAL,
                "Total number of messages published to the broker",
                &families.published,
            ),
            (
                names::HYPERFLEET_BROKER_MESSAGES_CONSUMED_TOTAL,
                "Total number of messages consumed from the broker",
                &families.consumed,
            ),
            (
                names::HYPERFLEET_BROKER_ERRORS_TOTAL,
                "Total number of message processing errors",
                &families.errors,
            ),
            (
                names::MESSAGING_CLIENT_SENT_MESSAGES,
                "Number of messages producer attempted to send to the broker",
                &families.sent_messages,
            ),
            (
                names::MESSAGING_CLIENT_CONSUMED_MESSAGES,
                "Number of messages that were delivered to the application",
                &families.consumed_messages,
            ),
        ];
        for (name, help, family) in counters {
            // The encoder adds `_total`.
            registry.register(counter_name(name), help, family.clone());
        }
        let histograms = [
            (
                names::HYPERFLEET_BROKER_MESSAGE_DURATION_SECONDS,
                "Duration of message processing in seconds",
                &families.duration,
            ),
            (
                names::MESSAGING_PROCESS_DURATION,
                "Duration of processing operation",
                &families.process_duration,
            ),
            (
                names::MESSAGING_CLIENT_OPERATION_DURATION,
                "Duration of messaging operation initiated by a producer or consumer client",
                &families.operation_duration,
            ),
        ];
        for (name, help, family) in histograms {
            // The encoder adds `_seconds`.
            registry.register_with_unit(seconds_name(name), help, Unit::Seconds, family.clone());
        }
        families
    }
}

/// A Prometheus name for a counter, without the `_total` the encoder appends.
fn counter_name(name: &str) -> String {
    let name = prometheus_name(name);
    name.strip_suffix("_total").unwrap_or(&name).to_owned()
}

/// A Prometheus name for a histogram in seconds, without the `_seconds` the encoder appends.
fn seconds_name(name: &str) -> String {
    let name = prometheus_name(name);
    name.strip_suffix("_seconds").unwrap_or(&name).to_owned()
}

fn prometheus_name(name: &str) -> String {
    name.replace('.', "_")
}

/// The families with one publisher's or subscription's labels; the series every message
/// touches are looked up once.
pub(super) struct Sink {
    families: Families,
    broker: Labels,
    messaging: Labels,
    /// Present on the side that uses them (a publisher's, a subscription's): zero-valued
    /// series from the start let `rate()` see the first message.
    published: Option<Counter>,
    consumed: Option<Counter>,
    duration: Option<Histogram>,
    sent: Option<Counter>,
    received: Option<Counter>,
    send_operation: &'static str,
    /// The series of operations that succeed, by operation name: most samples go there.
    process_ok: Vec<(&'static str, Histogram)>,
    operations_ok: Vec<(&'static str, Histogram)>,
}

impl Sink {
    pub(super) fn new(families: Families, site: &SiteLabels) -> Self {
        let broker: Labels = site
            .broker()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let messaging: Labels = site
            .messaging()
            .chain(site.service())
            .map(|(k, v)| (prometheus_name(k), v.to_owned()))
            .collect();
        let sent = with(&messaging, MESSAGING_OPERATION_NAME, site.send_operation);
        let received = with(&messaging, MESSAGING_OPERATION_NAME, site.receive_operation);
        let ok = |family: &Histograms, operation: &'static str| {
            let labels = with(&messaging, MESSAGING_OPERATION_NAME, operation);
            (operation, family.get_or_create_owned(&labels))
        };
        let consumer = site.is_consumer();
        let process_ok = consumer
            .then(|| ok(&families.process_duration, site.process_operation))
            .into_iter()
            .collect();
        let operations_ok = site
            .client_operations()
            .into_iter()
            .map(|operation| ok(&families.operation_duration, operation))
            .collect();
        let series = |family: &Family<Labels, Counter>, labels: &Labels, used: bool| {
            used.then(|| family.get_or_create_owned(labels))
        };
        Self {
            send_operation: site.send_operation,
            process_ok,
            operations_ok,
            published: series(&families.published, &broker, !consumer),
            consumed: series(&families.consumed, &broker, consumer),
            duration: consumer.then(|| families.duration.get_or_create_owned(&broker)),
            sent: series(&families.sent_messages, &sent, !consumer),
            received: series(&families.consumed_messages, &received, consumer),
            families,
            broker,
            messaging,
        }
    }

    pub(super) fn record(&self, measurement: &Measurement<'_>) {
        let f = &self.families;
        match measurement {
            Measurement::Sent { failure: None } => {
                inc(&self.published);
                inc(&self.sent);
            }
            Measurement::Sent {
                failure: Some((kind, error_type)),
            } => {
                self.broker_error(*kind);
                let labels = with(&self.messaging, ERROR_TYPE, error_type);
                f.sent_messages
                    .get_or_create(&with(
                        &labels,
                        MESSAGING_OPERATION_NAME,
                        self.send_operation,
                    ))
                    .inc();
            }
            Measurement::Received => {
                inc(&self.consumed);
                inc(&self.received);
            }
            Measurement::Undecodable => self.broker_error(BrokerError::Conversion),
            Measurement::Processed(timed) => {
                let seconds = timed.elapsed.as_secs_f64();
                if let Some(duration) = &self.duration {
                    duration.observe(seconds, exemplar(timed.span), now(timed.span));
                }
                self.observe(&f.process_duration, &self.process_ok, timed);
                if timed.error_type.is_some() {
                    self.broker_error(BrokerError::Handler);
                }
            }
            Measurement::Operation(timed) => {
                self.observe(&f.operation_duration, &self.operations_ok, timed)
            }
        }
    }

    fn broker_error(&self, kind: BrokerError) {
        self.families
            .errors
            .get_or_create(&with(&self.broker, names::ERROR_TYPE, kind.as_str()))
            .inc();
    }

    /// Records `timed` in its series: from `cached` when it succeeded and is listed there.
    fn observe(
        &self,
        family: &Histograms,
        cached: &[(&'static str, Histogram)],
        timed: &Timed<'_>,
    ) {
        let seconds = timed.elapsed.as_secs_f64();
        if timed.error_type.is_none()
            && let Some((_, series)) = cached.iter().find(|(op, _)| *op == timed.operation)
        {
            series.observe(seconds, exemplar(timed.span), now(timed.span));
            return;
        }
        let mut labels = with(&self.messaging, MESSAGING_OPERATION_NAME, timed.operation);
        if let Some(error_type) = timed.error_type {
            labels = with(&labels, ERROR_TYPE, error_type);
        }
        family
            .get_or_create(&labels)
            .observe(seconds, exemplar(timed.span), now(timed.span));
    }
}

fn inc(counter: &Option<Counter>) {
    if let Some(counter) = counter {
        counter.inc();
    }
}

/// `labels` and one more, its key in Prometheus spelling.
fn with(labels: &Labels, key: &str, value: &str) -> Labels {
    let mut out = Vec::with_capacity(labels.len() + 1);
    out.extend_from_slice(labels);
    out.push((prometheus_name(key), value.to_owned()));
    out
}

/// The measuring span's ids, when it can be an exemplar (see
/// [`super::measurement::names_its_span`]).
fn exemplar(span: &SpanContext) -> Option<TraceExemplar> {
    super::measurement::names_its_span(span).then(|| {
        vec![
            ("trace_id", span.trace_id().to_string()),
            ("span_id", span.span_id().to_string()),
        ]
    })
}

fn now(span: &SpanContext) -> Option<SystemTime> {
    super::measurement::names_its_span(span).then(SystemTime::now)
}
