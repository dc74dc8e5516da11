//! The OpenTelemetry sink: both metric families as instruments of a `Meter`, so that any
//! meter provider (the SDK's with OTLP or console readers, the application's own) gets them.

use super::labels::SiteLabels;
use super::measurement::{Measurement, Timed};
use super::names::{self, BrokerError};
use crate::attributes::{ERROR_TYPE, MESSAGING_OPERATION_NAME};
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
}

impl Instruments {
    pub(super) fn new(meter: &Meter) -> Self {
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
        }
    }
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
    /// The attributes of operations that succeed, by operation name: most samples take
    /// these, so they are built once.
    timed_ok: Vec<(&'static str, Vec<KeyValue>)>,
}

impl Sink {
    pub(super) fn new(instruments: Instruments, site: &SiteLabels) -> Self {
        // Shared values: the instruments clone what they keep.
        let shared =
            |(k, v): (&'static str, &str)| KeyValue::new(k, Value::from(Arc::<str>::from(v)));
        let broker: Vec<KeyValue> = site.broker().map(shared).collect();
        let messaging: Vec<KeyValue> = site.messaging().map(shared).collect();
        let with_operation = |operation: &'static str| {
            let mut attributes = messaging.clone();
            attributes.push(KeyValue::new(MESSAGING_OPERATION_NAME, operation));
            attributes
        };
        let mut operations = site.client_operations();
        if site.is_consumer() {
            operations.push(site.process_operation);
        }
        let timed_ok = operations
            .into_iter()
            .map(|operation| (operation, with_operation(operation)))
            .collect();
        Self {
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
                self.with_timed(timed, |a| i.process_duration.record(seconds, a));
                if timed.error_type.is_some() {
                    i.errors.add(1, &self.broker_error(BrokerError::Handler));
                }
            }
            Measurement::Operation(timed) => {
                let seconds = timed.elapsed.as_secs_f64();
                self.with_timed(timed, |a| i.operation_duration.record(seconds, a));
            }
        }
    }

    fn broker_error(&self, kind: BrokerError) -> Vec<KeyValue> {
        let mut attributes = self.broker.clone();
        attributes.push(KeyValue::new(names::ERROR_TYPE, kind.as_str()));
        attributes
    }

    /// Calls `record` with the attributes of `timed`: built once for operations that succeed,
    /// built now for a failure.
    fn with_timed(&self, timed: &Timed<'_>, record: impl FnOnce(&[KeyValue])) {
        if timed.error_type.is_none()
            && let Some((_, attributes)) =
                self.timed_ok.iter().find(|(op, _)| *op == timed.operation)
        {
            return record(attributes);
        }
        let mut attributes = with_error(&self.messaging, timed.error_type);
        attributes.push(KeyValue::new(MESSAGING_OPERATION_NAME, timed.operation));
        record(&attributes);
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
