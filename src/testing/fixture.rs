//! A tracer provider whose spans land in memory, for assertions.

use opentelemetry_sdk::trace::{InMemorySpanExporter, Sampler, SdkTracerProvider, SpanData};

/// A tracer provider exporting synchronously into an [`InMemorySpanExporter`].
///
/// Spans are exported as they end, so once the code under test has returned, every span it
/// ended is in [`spans`](Self::spans). It is not installed globally: hand
/// [`provider`](Self::provider) to publishers and subscribers with `Settings::tracer_provider`, so
/// tests running in parallel do not see each other's spans.
#[derive(Debug, Clone)]
pub struct TestTelemetry {
    /// The provider to take tracers from.
    pub provider: SdkTracerProvider,
    /// Where finished spans go.
    pub exporter: InMemorySpanExporter,
}

impl Default for TestTelemetry {
    fn default() -> Self {
        Self::new()
    }
}

impl TestTelemetry {
    /// Samples every trace whose parent is sampled, and every new root.
    pub fn new() -> Self {
        Self::with_sampler(Sampler::ParentBased(Box::new(Sampler::AlwaysOn)))
    }

    /// With a specific sampler.
    pub fn with_sampler(sampler: Sampler) -> Self {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_sampler(sampler)
            .with_simple_exporter(exporter.clone())
            .build();
        Self { provider, exporter }
    }

    /// Every span finished so far, in the order they ended.
    pub fn spans(&self) -> Vec<SpanData> {
        self.exporter.get_finished_spans().unwrap_or_default()
    }

    /// Forgets the spans finished so far.
    pub fn reset(&self) {
        self.exporter.reset();
    }
}
