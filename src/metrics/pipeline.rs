//! One publisher's or subscription's metrics: each sink with its series looked up once.

use super::measurement::Measurement;
use super::otel;

/// The sinks of one publisher or subscription; records nothing when it has none.
#[derive(Default)]
pub(crate) struct PipelineMetrics {
    pub(super) otel: Option<otel::Sink>,
    #[cfg(feature = "prometheus")]
    pub(super) prometheus: Option<super::prometheus::Sink>,
}

impl PipelineMetrics {
    /// Records `measurement` in every sink.
    pub(crate) fn record(&self, measurement: Measurement<'_>) {
        if let Some(sink) = &self.otel {
            sink.record(&measurement);
        }
        #[cfg(feature = "prometheus")]
        if let Some(sink) = &self.prometheus {
            sink.record(&measurement);
        }
    }

    /// Whether anything is recorded: callers skip the clock when not.
    pub(crate) fn is_enabled(&self) -> bool {
        #[cfg(feature = "prometheus")]
        let prometheus = self.prometheus.is_some();
        #[cfg(not(feature = "prometheus"))]
        let prometheus = false;
        self.otel.is_some() || prometheus
    }
}
