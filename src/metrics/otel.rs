//! The OpenTelemetry sink: both metric families as instruments of a `Meter`, so that any
//! meter provider (the SDK's with OTLP or console readers, the application's own) gets them.

use super::exemplars::{Exemplars, Reservoir};
use super::labels::SiteLabels;
use super::measurement::{Measurement, Timed};
use super::names::{self, BrokerError};
use crate::span::attributes::{
    ERROR_TYPE, MESSAGING_OPERATION_NAME, MESSAGING_OPERATION_TYPE, SERVER_PORT,
};
use opentelemetry::metrics::{Counter, Histogram, Meter};
use opentelemetry::{KeyValue, Value};
use std::sync::Arc;

/// Every instrument, created once per meter.
#[derive(Clone)]
pub(super) struct Instruments {
    published: Counter<u64>,
    consumed: Counter<u64>,
    errors: Counter<u64>,
    duration: Histogram<f64>,
    sent_messages: Counter<u64>,
    consumed_messages: Counter<u64>,
    process_duration: Histogram<f64>,
    operation_duration: Histogram<f64>,
    /// Where the duration samples of sampled spans are kept for an exporter that sends them.
    exemplars: Option<Exemplars>,
}

impl Instruments {
    pub(super) fn new(meter: &Meter, exemplars: Option<Exemplars>) -> Self {
        let counter = |name: &'static str, description: &'static str, unit: &'static str| {
            meter
                .u64_counter(name)
                .with_description(description)
                .with_unit(unit)
                .build()
        };
        let histogram = |name: &'static str, description: &'static str, buckets: &[f64]| {
            meter
                .f64_histogram(name)
                .with_description(description)
                .with_unit("s")
                .with_boundaries(buckets.to_vec())
                .build()
        };
        Self {
            published: counter(
                names::HYPERFLEET_BROKER_MESSAGES_PUBLISHED_TOTAL,
                "Total number of messages published to the broker.",
                "{message}",
            ),
            consumed: counter(
                names::HYPERFLEET_BROKER_MESSAGES_CONSUMED_TOTAL,
                "Total number of messages consumed from the broker.",
                "{message}",
            ),
            errors: counter(
                names::HYPERFLEET_BROKER_ERRORS_TOTAL,
                "Total number of message processing errors.",
                "{error}",
            ),
            duration: histogram(
                names::HYPERFLEET_BROKER_MESSAGE_DURATION_SECONDS,
                "Duration of message processing in seconds.",
                names::PROCESSING_BUCKETS,
            ),
            sent_messages: counter(
                names::MESSAGING_CLIENT_SENT_MESSAGES,
                "Number of messages producer attempted to send to the broker.",
                "{message}",
            ),
            consumed_messages: counter(
                names::MESSAGING_CLIENT_CONSUMED_MESSAGES,
                "Number of messages that were delivered to the application.",
                "{message}",
            ),
            process_duration: histogram(
                names::MESSAGING_PROCESS_DURATION,
                "Duration of processing operation.",
                names::OPERATION_BUCKETS,
            ),
            operation_duration: histogram(
                names::MESSAGING_CLIENT_OPERATION_DURATION,
                "Duration of messaging operation initiated by a producer or consumer client.",
                names::OPERATION_BUCKETS,
            ),
            exemplars,
        }
    }
}

/// A duration histogram's name and buckets.
type DurationMetric = (&'static str, &'static [f64]);
const BROKER_DURATION: DurationMetric = (
    names::HYPERFLEET_BROKER_MESSAGE_DURATION_SECONDS,
    names::PROCESSING_BUCKETS,
);
const PROCESS_DURATION: DurationMetric =
    (names::MESSAGING_PROCESS_DURATION, names::OPERATION_BUCKETS);
const OPERATION_DURATION: DurationMetric = (
    names::MESSAGING_CLIENT_OPERATION_DURATION,
    names::OPERATION_BUCKETS,
);

/// The attributes of an operation that succeeds, and its series' exemplars.
struct TimedSeries {
    operation: &'static str,
    attributes: Vec<KeyValue>,
    exemplars: Option<Arc<Reservoir>>,
}

/// The instruments with one publisher's or subscription's attributes, built once.
pub(super) struct Sink {
    instruments: Instruments,
    /// `topic`, `component`, `version`.
    broker: Vec<KeyValue>,
    /// The messaging attributes, without the operation name.
    messaging: Vec<KeyValue>,
    /// `messaging` with the operation of the sent and consumed counters.
    sent: Vec<KeyValue>,
    received: Vec<KeyValue>,
    /// The exemplars of `hyperfleet_broker_message_duration_seconds`.
    broker_exemplars: Option<Arc<Reservoir>>,
    /// The operations that succeed, by operation name: most samples take these, so they are
    /// built once.
    timed_ok: Vec<TimedSeries>,
    /// `messaging.operation.type` of each client operation, for a failed one's series.
    operation_types: Vec<(&'static str, &'static str)>,
}

impl Sink {
    pub(super) fn new(instruments: Instruments, site: &SiteLabels) -> Self {
        // Shared values: the instruments clone what they keep.
        let shared =
            |(k, v): (&'static str, &str)| KeyValue::new(k, Value::from(Arc::<str>::from(v)));
        let broker: Vec<KeyValue> = site.broker().map(shared).collect();
        let mut messaging: Vec<KeyValue> = site.messaging().map(shared).collect();
        messaging.extend(
            site.server_port
                .map(|port| KeyValue::new(SERVER_PORT, i64::from(port))),
        );
        let with_operation = |operation: &'static str| {
            let mut attributes = messaging.clone();
            attributes.push(KeyValue::new(MESSAGING_OPERATION_NAME, operation));
            attributes
        };
        // A client operation's duration names its type too (the conventions ask for it).
        let typed = |operation: &'static str, metric: DurationMetric| {
            let mut attributes = with_operation(operation);
            if metric == OPERATION_DURATION
                && let Some(kind) = site.operation_type(operation)
            {
                attributes.push(KeyValue::new(MESSAGING_OPERATION_TYPE, kind));
            }
            attributes
        };
        let reservoir = |(metric, bounds): DurationMetric, attributes: &[KeyValue]| {
            let exemplars = instruments.exemplars.as_ref()?;
            Some(exemplars.reservoir(metric, bounds, attributes))
        };
        let mut operations: Vec<_> = site
            .client_operations()
            .into_iter()
            .map(|operation| (operation, OPERATION_DURATION))
            .collect();
        if site.is_consumer() {
            operations.push((site.process_operation, PROCESS_DURATION));
        }
        let timed_ok = operations
            .into_iter()
            .map(|(operation, metric)| {
                let attributes = typed(operation, metric);
                TimedSeries {
                    operation,
                    exemplars: reservoir(metric, &attributes),
                    attributes,
                }
            })
            .collect();
        let operation_types = site
            .client_operations()
            .into_iter()
            .filter_map(|operation| Some((operation, site.operation_type(operation)?)))
            .collect();
        Self {
            operation_types,
            broker_exemplars: reservoir(BROKER_DURATION, &broker),
            timed_ok,
            sent: with_operation(site.send_operation),
            received: with_operation(site.receive_operation),
            instruments,
            broker,
            messaging,
        }
    }

    pub(super) fn record(&self, measurement: &Measurement<'_>) {
        let i = &self.instruments;
        match measurement {
            Measurement::Sent { failure: None } => {
                i.published.add(1, &self.broker);
                i.sent_messages.add(1, &self.sent);
            }
            Measurement::Sent {
                failure: Some((kind, error_type)),
            } => {
                i.errors.add(1, &self.broker_error(*kind));
                i.sent_messages
                    .add(1, &with_error(&self.sent, Some(*error_type)));
            }
            Measurement::Received => {
                i.consumed.add(1, &self.broker);
                i.consumed_messages.add(1, &self.received);
            }
            Measurement::Undecodable => {
                i.errors.add(1, &self.broker_error(BrokerError::Conversion))
            }
            Measurement::Processed(timed) => {
                let seconds = timed.elapsed.as_secs_f64();
                i.duration.record(seconds, &self.broker);
                if let Some(exemplars) = &self.broker_exemplars {
                    exemplars.offer(seconds, timed.span);
                }
                self.record_timed(timed, &i.process_duration, PROCESS_DURATION);
                if timed.error_type.is_some() {
                    i.errors.add(1, &self.broker_error(BrokerError::Handler));
                }
            }
            Measurement::Operation(timed) => {
                self.record_timed(timed, &i.operation_duration, OPERATION_DURATION);
            }
        }
    }

    fn broker_error(&self, kind: BrokerError) -> Vec<KeyValue> {
        let mut attributes = self.broker.clone();
        attributes.push(KeyValue::new(names::ERROR_TYPE, kind.as_str()));
        attributes
    }

    /// Records `timed` in `histogram` with its attributes (built once for operations that
    /// succeed, now for a failure) and offers it as an exemplar.
    fn record_timed(&self, timed: &Timed<'_>, histogram: &Histogram<f64>, metric: DurationMetric) {
        let seconds = timed.elapsed.as_secs_f64();
        if timed.error_type.is_none()
            && let Some(series) = self
                .timed_ok
                .iter()
                .find(|s| s.operation == timed.operation)
        {
            histogram.record(seconds, &series.attributes);
            if let Some(exemplars) = &series.exemplars {
                exemplars.offer(seconds, timed.span);
            }
            return;
        }
        let mut attributes = with_error(&self.messaging, timed.error_type);
        attributes.push(KeyValue::new(MESSAGING_OPERATION_NAME, timed.operation));
        let kind = self
            .operation_types
            .iter()
            .find(|(operation, _)| *operation == timed.operation);
        if let (OPERATION_DURATION, Some((_, kind))) = (metric, kind) {
            attributes.push(KeyValue::new(MESSAGING_OPERATION_TYPE, *kind));
        }
        histogram.record(seconds, &attributes);
        if let Some(exemplars) = &self.instruments.exemplars
            && timed.span.is_sampled()
        {
            let (name, bounds) = metric;
            exemplars
                .reservoir(name, bounds, &attributes)
                .offer(seconds, timed.span);
        }
    }
}

fn with_error(attributes: &[KeyValue], error_type: Option<&'static str>) -> Vec<KeyValue> {
    let mut out = Vec::with_capacity(attributes.len() + 2);
    out.extend_from_slice(attributes);
    if let Some(error_type) = error_type {
        out.push(KeyValue::new(ERROR_TYPE, error_type));
    }
    out
}
