//! What keeps telemetry running, and flushes it at the end.

use super::metrics::MetricsServer;
use opentelemetry_sdk::error::OTelSdkError;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;
use std::time::{Duration, Instant};

/// Flushes and shuts the tracer and meter providers down when dropped, and stops serving
/// `/metrics`, all within its timeout.
#[derive(Debug)]
pub struct TelemetryGuard {
    pub(super) provider: Option<SdkTracerProvider>,
    pub(super) meter_provider: Option<SdkMeterProvider>,
    pub(super) metrics_server: Option<MetricsServer>,
    pub(super) timeout: Duration,
}

impl std::fmt::Debug for MetricsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsServer")
            .field("address", &self.address())
            .finish_non_exhaustive()
    }
}

impl TelemetryGuard {
    /// The tracer provider; `None` when tracing is disabled.
    pub fn tracer_provider(&self) -> Option<&SdkTracerProvider> {
        self.provider.as_ref()
    }

    /// The meter provider of the `otlp` and `console` metric exporters.
    pub fn meter_provider(&self) -> Option<&SdkMeterProvider> {
        self.meter_provider.as_ref()
    }

    /// Where `/metrics` is served, with the `prometheus` exporter.
    pub fn metrics_address(&self) -> Option<std::net::SocketAddr> {
        self.metrics_server.as_ref().map(MetricsServer::address)
    }

    /// Flushes every finished span and the metrics, stops serving `/metrics` and shuts down,
    /// within the timeout in all; later calls do nothing. The first failure is returned.
    pub fn shutdown(&mut self) -> Result<(), OTelSdkError> {
        let deadline = Instant::now() + self.timeout;
        let traces = match self.provider.take() {
            Some(provider) => provider.shutdown_with_timeout(self.timeout),
            None => Ok(()),
        };
        let left = deadline.saturating_duration_since(Instant::now());
        let metrics = match self.meter_provider.take() {
            Some(provider) => shutdown_within(provider, left),
            None => Ok(()),
        };
        if let Some(mut server) = self.metrics_server.take() {
            server.stop(deadline.saturating_duration_since(Instant::now()));
        }
        traces.and(metrics)
    }
}

/// The meter provider's shutdown exports once more and does not bound itself: it runs on a
/// thread of its own, waited for at most `timeout`.
fn shutdown_within(provider: SdkMeterProvider, timeout: Duration) -> Result<(), OTelSdkError> {
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(provider.shutdown());
    });
    finished
        .recv_timeout(timeout)
        .unwrap_or(Err(OTelSdkError::Timeout(timeout)))
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        // Nothing to report to at this point; what could be flushed was.
        let _ = self.shutdown();
    }
}
