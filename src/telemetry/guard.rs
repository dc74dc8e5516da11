//! What keeps telemetry running, and flushes it at the end.

use opentelemetry_sdk::trace::SdkTracerProvider;
use std::time::Duration;

/// Flushes and shuts the tracer provider down when dropped, within its timeout.
#[derive(Debug)]
pub struct TelemetryGuard {
    pub(super) provider: Option<SdkTracerProvider>,
    pub(super) timeout: Duration,
}

impl TelemetryGuard {
    /// The tracer provider; `None` when tracing is disabled.
    pub fn tracer_provider(&self) -> Option<&SdkTracerProvider> {
        self.provider.as_ref()
    }

    /// Flushes every finished span and shuts down; later calls do nothing.
    pub fn shutdown(&mut self) -> Result<(), opentelemetry_sdk::error::OTelSdkError> {
        match self.provider.take() {
            Some(provider) => provider.shutdown_with_timeout(self.timeout),
            None => Ok(()),
        }
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        // Nothing to report to at this point; the spans that could be flushed were.
        let _ = self.shutdown();
    }
}
