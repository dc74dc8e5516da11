//! Messaging metrics, recorded where the spans are and tied to them.
//!
//! Every publisher and every way in (the pull loop, the push endpoint) records two metric
//! families through its [`Metrics`]:
//!
//! - the HyperFleet broker metrics, named and labelled as hyperfleet-broker names them:
//!   `hyperfleet_broker_messages_published_total`, `…_messages_consumed_total`,
//!   `…_errors_total{error_type=conversion|handler|publish}` and
//!   `hyperfleet_broker_message_duration_seconds` (the handler's time, buckets
//!   0.1 … 120 s), each labelled `topic`, `component` and `version`;
//! - the OpenTelemetry messaging metrics: `messaging.client.sent.messages`,
//!   `messaging.client.consumed.messages`, `messaging.process.duration` and
//!   `messaging.client.operation.duration` (publish, ack, nack), with `messaging.system`,
//!   `messaging.operation.name`, `messaging.destination.name`, the subscription,
//!   `server.address` and, on failure, `error.type`.
//!
//! Label values are the topic, the subscription, the server and error kinds: never an id.
//! Metrics go to an OpenTelemetry meter provider (any: the SDK's with OTLP, the console, the
//! application's own) and, with the feature `prometheus`, to a `prometheus-client` registry,
//! whose OpenMetrics text carries exemplars: each duration sample of a sampled span names its
//! trace and span, so a slow bucket opens its trace. The telemetry bootstrap sets all of this
//! up from `OTEL_METRICS_EXPORTER`; by hand:
//!
//! ```
//! # #[cfg(feature = "prometheus")] {
//! use hyperfleet_tracing::metrics::Metrics;
//! use hyperfleet_tracing::transport::memory::MemoryTransport;
//! use hyperfleet_tracing::{Settings, TracedPublisher};
//!
//! let mut registry = prometheus_client::registry::Registry::default();
//! let metrics = Metrics::builder()
//!     .component("sentinel")
//!     .version("1.2.3")
//!     .prometheus(&mut registry)
//!     .build();
//! let transport = MemoryTransport::new();
//! transport.create_topic("hyperfleet-clusters").unwrap();
//! let publisher = TracedPublisher::new(transport, "hyperfleet-clusters")
//!     .settings(Settings::new().metrics(metrics));
//! # let _ = publisher;
//! let mut text = String::new();
//! prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
//! assert!(text.contains("# TYPE hyperfleet_broker_messages_published counter"));
//! # }
//! ```

mod exemplars;
mod labels;
mod measurement;
pub mod names;
mod otel;
mod pipeline;
#[cfg(feature = "prometheus")]
mod prometheus;

#[cfg_attr(not(feature = "telemetry"), allow(unused_imports))]
pub(crate) use exemplars::{Exemplar, Exemplars, series_key};
pub(crate) use measurement::{Measurement, Timed};
pub(crate) use names::BrokerError;
pub(crate) use pipeline::PipelineMetrics;

use crate::span::Destination;
use opentelemetry::metrics::MeterProvider;
use std::sync::{Arc, PoisonError, RwLock};

/// Where a publisher's or a way in's metrics go. Cheap to clone; [`Metrics::disabled`]
/// records nothing at all.
#[derive(Clone, Default)]
pub struct Metrics {
    sinks: Option<Arc<Sinks>>,
}

struct Sinks {
    component: Option<String>,
    version: Option<String>,
    otel: Option<otel::Instruments>,
    #[cfg(feature = "prometheus")]
    prometheus: Option<prometheus::Families>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("Metrics");
        if let Some(sinks) = &self.sinks {
            d.field("component", &sinks.component)
                .field("version", &sinks.version)
                .field("opentelemetry", &sinks.otel.is_some());
            #[cfg(feature = "prometheus")]
            d.field("prometheus", &sinks.prometheus.is_some());
        }
        d.finish()
    }
}

/// The metrics installed with [`Metrics::set_global`].
static GLOBAL: RwLock<Option<Metrics>> = RwLock::new(None);

impl Metrics {
    /// Records nothing.
    pub fn disabled() -> Self {
        Self::default()
    }

    /// A builder: component, version and sinks.
    pub fn builder() -> MetricsBuilder {
        MetricsBuilder::default()
    }

    /// The metrics [`set_global`](Self::set_global) installed (the telemetry bootstrap does),
    /// else the global OpenTelemetry meter provider as it is now: what publishers and
    /// subscribers use unless given others.
    pub fn global() -> Self {
        let installed = GLOBAL
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        installed.unwrap_or_else(|| {
            Self::builder()
                .meter_provider(&*opentelemetry::global::meter_provider())
                .build()
        })
    }

    /// Makes these the metrics of every publisher and subscriber built from now on.
    pub fn set_global(metrics: Metrics) {
        *GLOBAL.write().unwrap_or_else(PoisonError::into_inner) = Some(metrics);
    }

    /// Whether anything is recorded.
    pub fn is_enabled(&self) -> bool {
        self.sinks.is_some()
    }

    /// The series of one publisher or subscription.
    pub(crate) fn pipeline(&self, destination: &Destination<'_>) -> PipelineMetrics {
        let Some(sinks) = &self.sinks else {
            return PipelineMetrics::default();
        };
        let site = labels::SiteLabels::new(
            destination,
            sinks.component.as_deref(),
            sinks.version.as_deref(),
        );
        PipelineMetrics {
            otel: sinks
                .otel
                .clone()
                .map(|instruments| otel::Sink::new(instruments, &site)),
            #[cfg(feature = "prometheus")]
            prometheus: sinks
                .prometheus
                .clone()
                .map(|families| prometheus::Sink::new(families, &site)),
        }
    }
}

/// Builds [`Metrics`]; with no sink it records nothing.
#[derive(Default)]
pub struct MetricsBuilder {
    component: Option<String>,
    version: Option<String>,
    otel: Option<otel::Instruments>,
    #[cfg(feature = "prometheus")]
    prometheus: Option<prometheus::Families>,
}

impl std::fmt::Debug for MetricsBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsBuilder")
            .field("component", &self.component)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

impl MetricsBuilder {
    /// The `component` label of the HyperFleet metrics (the log lines' `component`).
    pub fn component(mut self, component: impl Into<String>) -> Self {
        self.component = Some(component.into());
        self
    }

    /// The `version` label of the HyperFleet metrics.
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.version = Some(version.into());
        self
    }

    /// Records into instruments of `provider` (scope `hyperfleet-tracing`).
    pub fn meter_provider(self, provider: &(impl MeterProvider + ?Sized)) -> Self {
        self.instruments(provider, None)
    }

    /// As [`meter_provider`](Self::meter_provider), keeping the duration samples of sampled
    /// spans in `exemplars` for an exporter that sends them (the bootstrap's OTLP exporter).
    #[cfg_attr(not(feature = "telemetry"), allow(dead_code))]
    pub(crate) fn meter_provider_with_exemplars(
        self,
        provider: &(impl MeterProvider + ?Sized),
        exemplars: Exemplars,
    ) -> Self {
        self.instruments(provider, Some(exemplars))
    }

    fn instruments(
        mut self,
        provider: &(impl MeterProvider + ?Sized),
        exemplars: Option<Exemplars>,
    ) -> Self {
        let meter = provider.meter_with_scope(crate::span::scope());
        self.otel = Some(otel::Instruments::new(&meter, exemplars));
        self
    }

    /// Registers both families in `registry` and records into them, with exemplars. Give each
    /// registry to one builder only: registering twice would list the families twice.
    #[cfg(feature = "prometheus")]
    pub fn prometheus(mut self, registry: &mut prometheus_client::registry::Registry) -> Self {
        self.prometheus = Some(prometheus::Families::register(registry));
        self
    }

    /// The metrics.
    pub fn build(self) -> Metrics {
        #[cfg(feature = "prometheus")]
        let any = self.otel.is_some() || self.prometheus.is_some();
        #[cfg(not(feature = "prometheus"))]
        let any = self.otel.is_some();
        let sinks = any.then(|| {
            Arc::new(Sinks {
                component: self.component,
                version: self.version,
                otel: self.otel,
                #[cfg(feature = "prometheus")]
                prometheus: self.prometheus,
            })
        });
        Metrics { sinks }
    }
}
