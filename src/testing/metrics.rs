//! A meter provider whose metrics land in memory, for assertions.

use crate::metrics::Metrics;
use opentelemetry::KeyValue;
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData, ResourceMetrics};
use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};

/// An SDK meter provider exporting into an [`InMemoryMetricExporter`] when flushed, and the
/// [`Metrics`] that record into it. Hand [`metrics`](Self::metrics) to publishers and
/// subscribers with `.metrics(...)`; read with [`counter`](Self::counter) and
/// [`histogram_count`](Self::histogram_count), which flush first.
#[derive(Debug, Clone)]
pub struct TestMetrics {
    /// The provider.
    pub provider: SdkMeterProvider,
    /// Where flushed metrics go.
    pub exporter: InMemoryMetricExporter,
    /// Metrics recording into the provider (component `test`, version `0.0.0`).
    pub metrics: Metrics,
}

impl Default for TestMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl TestMetrics {
    /// A fresh provider.
    pub fn new() -> Self {
        let exporter = InMemoryMetricExporter::default();
        let provider = SdkMeterProvider::builder()
            .with_reader(PeriodicReader::builder(exporter.clone()).build())
            .build();
        let metrics = Metrics::builder()
            .component("test")
            .version("0.0.0")
            .meter_provider(&provider)
            .build();
        Self {
            provider,
            exporter,
            metrics,
        }
    }

    /// `read` of the latest export of metric `name`; `None` when it was never exported.
    fn latest<R>(&self, name: &str, read: impl FnOnce(&AggregatedMetrics) -> R) -> Option<R> {
        // A failed flush leaves what was exported before: the reads below then find less.
        let _ = self.provider.force_flush();
        let collected: Vec<ResourceMetrics> = self.exporter.get_finished_metrics().ok()?;
        collected
            .iter()
            .rev()
            .flat_map(|r| r.scope_metrics())
            .flat_map(|s| s.metrics())
            .find(|m| m.name() == name)
            .map(|m| read(m.data()))
    }

    /// The value of counter `name` summed over the points whose attributes include
    /// `attributes`; 0 when it was never recorded.
    pub fn counter(&self, name: &str, attributes: &[(&str, &str)]) -> u64 {
        self.latest(name, |data| match data {
            AggregatedMetrics::U64(MetricData::Sum(sum)) => sum
                .data_points()
                .filter(|p| includes(p.attributes(), attributes))
                .map(|p| p.value())
                .sum(),
            _ => 0,
        })
        .unwrap_or(0)
    }

    /// The number of samples of histogram `name` whose attributes include `attributes`, and
    /// the bucket bounds; `(0, [])` when it was never recorded.
    pub fn histogram_count(&self, name: &str, attributes: &[(&str, &str)]) -> (u64, Vec<f64>) {
        self.latest(name, |data| match data {
            AggregatedMetrics::F64(MetricData::Histogram(histogram)) => {
                let points: Vec<_> = histogram
                    .data_points()
                    .filter(|p| includes(p.attributes(), attributes))
                    .collect();
                let bounds = points
                    .first()
                    .map(|p| p.bounds().collect())
                    .unwrap_or_default();
                (points.iter().map(|p| p.count()).sum(), bounds)
            }
            _ => (0, Vec::new()),
        })
        .unwrap_or_default()
    }
}

fn includes<'a>(have: impl Iterator<Item = &'a KeyValue>, want: &[(&str, &str)]) -> bool {
    let have: Vec<&KeyValue> = have.collect();
    want.iter().all(|(k, v)| {
        have.iter()
            .any(|kv| kv.key.as_str() == *k && kv.value.as_str() == *v)
    })
}
