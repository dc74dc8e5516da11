//! Exemplars for OTLP: per histogram series, the last sampled span that measured each bucket
//! (the specification's aligned histogram bucket reservoir). The OpenTelemetry SDK records
//! none, so the telemetry bootstrap's OTLP exporter attaches these to its data points.

// Without the bootstrap nothing reads them, and nothing makes an `Exemplars` to fill.
#![cfg_attr(not(feature = "telemetry"), allow(dead_code))]

use opentelemetry::KeyValue;
use opentelemetry::trace::SpanContext;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

/// One sampled measurement and the span that made it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Exemplar {
    pub(crate) value: f64,
    pub(crate) time: SystemTime,
    pub(crate) trace_id: [u8; 16],
    pub(crate) span_id: [u8; 8],
}

/// One histogram series' exemplars: a slot per bucket.
#[derive(Debug)]
pub(crate) struct Reservoir {
    bounds: &'static [f64],
    slots: Mutex<Vec<Option<Exemplar>>>,
}

impl Reservoir {
    fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            slots: Mutex::new(vec![None; bounds.len() + 1]),
        }
    }

    /// Keeps `value` as its bucket's exemplar when `span` is a sampled span of this process
    /// (see [`super::measurement::names_its_span`]).
    pub(crate) fn offer(&self, value: f64, span: &SpanContext) {
        if !super::measurement::names_its_span(span) {
            return;
        }
        // OpenTelemetry buckets hold (bounds[i-1], bounds[i]].
        let bucket = self.bounds.partition_point(|bound| *bound < value);
        let exemplar = Exemplar {
            value,
            time: SystemTime::now(),
            trace_id: span.trace_id().to_bytes(),
            span_id: span.span_id().to_bytes(),
        };
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(slot) = slots.get_mut(bucket) {
            *slot = Some(exemplar);
        }
    }

    fn exemplars(&self) -> Vec<Exemplar> {
        let slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        slots.iter().flatten().copied().collect()
    }
}

/// Most series kept: as many as the OpenTelemetry SDK's default cardinality limit. Series are
/// as bounded as the labels (a topic, a subscription, a server, an operation, an error kind),
/// but an application that keeps building publishers for new topics must not grow this
/// forever: past the limit a new series measures without exemplars.
const MAX_SERIES: usize = 2000;

/// The reservoirs of every histogram series, shared by the sinks that fill them and the
/// exporter that reads them.
#[derive(Debug, Clone, Default)]
pub(crate) struct Exemplars {
    series: Arc<Mutex<HashMap<SeriesId, Arc<Reservoir>>>>,
}

/// A metric's name and its series' [`series_key`].
type SeriesId = (String, String);

impl Exemplars {
    /// The reservoir of `metric` with `attributes`, made on first use.
    pub(crate) fn reservoir(
        &self,
        metric: &str,
        bounds: &'static [f64],
        attributes: &[KeyValue],
    ) -> Arc<Reservoir> {
        let key = (
            metric.to_owned(),
            series_key(
                attributes
                    .iter()
                    .map(|kv| (kv.key.as_str(), kv.value.as_str())),
            ),
        );
        let mut series = self.series.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(reservoir) = series.get(&key) {
            return reservoir.clone();
        }
        let reservoir = Arc::new(Reservoir::new(bounds));
        if series.len() < MAX_SERIES {
            series.insert(key, reservoir.clone());
        }
        reservoir
    }

    /// The exemplars of `metric` for the series whose attributes give `key` (see
    /// [`series_key`]); none for a series nothing sampled measured.
    pub(crate) fn of(&self, metric: &str, key: String) -> Vec<Exemplar> {
        let series = self.series.lock().unwrap_or_else(PoisonError::into_inner);
        series
            .get(&(metric.to_owned(), key))
            .map(|reservoir| reservoir.exemplars())
            .unwrap_or_default()
    }
}

/// A series' attributes as one string, whatever their order: the sinks' attributes and the
/// exported data points' give the same key.
pub(crate) fn series_key<'a>(
    attributes: impl Iterator<Item = (&'a str, impl AsRef<str>)>,
) -> String {
    let mut pairs: Vec<String> = attributes
        .map(|(k, v)| format!("{k}={}", v.as_ref()))
        .collect();
    pairs.sort_unstable();
    pairs.join("\u{1f}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::{SpanId, TraceFlags, TraceId, TraceState};

    fn span(sampled: bool, id: u64) -> SpanContext {
        let flags = if sampled {
            TraceFlags::SAMPLED
        } else {
            TraceFlags::default()
        };
        SpanContext::new(
            TraceId::from(u128::from(id)),
            SpanId::from(id),
            flags,
            false,
            TraceState::default(),
        )
    }

    #[test]
    fn each_bucket_keeps_its_last_sampled_measurement() {
        let exemplars = Exemplars::default();
        let attributes = [KeyValue::new("topic", "t"), KeyValue::new("component", "c")];
        let reservoir = exemplars.reservoir("d", &[0.1, 1.0], &attributes);
        reservoir.offer(0.05, &span(true, 1));
        reservoir.offer(0.1, &span(true, 2));
        reservoir.offer(0.5, &span(true, 3));
        reservoir.offer(0.6, &span(false, 4));
        reservoir.offer(7.0, &span(true, 5));
        let key = series_key([("component", "c"), ("topic", "t")].into_iter());
        let kept: Vec<(f64, [u8; 8])> = exemplars
            .of("d", key)
            .iter()
            .map(|e| (e.value, e.span_id))
            .collect();
        assert_eq!(
            kept,
            [
                (0.1, 2u64.to_be_bytes()),
                (0.5, 3u64.to_be_bytes()),
                (7.0, 5u64.to_be_bytes())
            ]
        );
        assert!(exemplars.of("d", String::new()).is_empty());
        assert!(
            exemplars
                .of(
                    "other",
                    series_key(
                        attributes
                            .iter()
                            .map(|kv| (kv.key.as_str(), kv.value.as_str()))
                    )
                )
                .is_empty()
        );
    }

    #[test]
    fn series_past_the_limit_are_not_kept() {
        let exemplars = Exemplars::default();
        for i in 0..MAX_SERIES + 10 {
            let topic = [KeyValue::new("topic", i.to_string())];
            exemplars
                .reservoir("d", &[1.0], &topic)
                .offer(0.5, &span(true, 1));
        }
        assert_eq!(exemplars.series.lock().unwrap().len(), MAX_SERIES);
        let past = series_key([("topic", (MAX_SERIES + 1).to_string())].into_iter());
        assert!(exemplars.of("d", past).is_empty());
        let kept = series_key([("topic", "0".to_owned())].into_iter());
        assert_eq!(exemplars.of("d", kept).len(), 1);
    }
}
