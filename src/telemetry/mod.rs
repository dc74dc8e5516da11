//! Telemetry bootstrap from the standard's environment variables (feature `telemetry`).
//!
//! One call gives a HyperFleet component the whole standard: the messaging
//! [`metrics`](crate::metrics) exported as `OTEL_METRICS_EXPORTER` says, an OpenTelemetry
//! tracer provider
//! configured from `OTEL_*` (OTLP over gRPC or HTTP, or the console; the standard's sampler
//! and propagators; resource attributes), the always-sample rules of [`sampling`], and
//! trace-correlated JSON log lines through `tracing` ([`logs`]), with `tracing` spans bridged
//! into the same traces by `tracing-opentelemetry`.
//!
//! ```no_run
//! use hyperfleet_tracing::telemetry::{self, Component};
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     // Inside the Tokio runtime: the OTLP gRPC exporter needs it.
//!     let _guard = telemetry::init(Component::ValidationAdapter)?;
//!     tracing::info!(cluster_id = "c1", "adapter started");
//!     // … run the subscriber; dropping the guard flushes and shuts down.
//!     Ok(())
//! }
//! ```
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `OTEL_SERVICE_NAME` | the component's (`hyperfleet-api`, …) | service name |
//! | `OTEL_EXPORTER_OTLP_ENDPOINT` | `localhost:4317` (`localhost:4318` over HTTP) | collector; `http://` added without a scheme |
//! | `OTEL_EXPORTER_OTLP_PROTOCOL` | `grpc` | `grpc` or `http/protobuf` |
//! | `OTEL_TRACES_SAMPLER` / `_ARG` | `parentbased_traceidratio` / `1.0` | head sampler |
//! | `OTEL_PROPAGATORS` | `tracecontext,baggage` | `tracecontext`, `baggage`, `none` |
//! | `OTEL_RESOURCE_ATTRIBUTES` | – | `k=v,…`, percent-decoded |
//! | `OTEL_TRACES_EXPORTER` | `otlp` | `otlp`, `console`, `none` (comma-separated) |
//! | `OTEL_SDK_DISABLED` | `false` | `true` turns tracing and metrics off |
//! | `TRACING_ENABLED` | `true` | the standard's switch, for traces only |
//! | `HYPERFLEET_TRACING_ENABLED` | – | newer upstream name; wins over `TRACING_ENABLED` when both are set |
//! | `HYPERFLEET_TRACING_ALWAYS_SAMPLE_ERRORS` | `true` | export dropped spans that end in error |
//! | `HYPERFLEET_TRACING_SLOW_THRESHOLD_MS` | – | export dropped spans slower than this |
//! | `HYPERFLEET_TRACING_ALWAYS_SAMPLE_RESOURCES` | – | cluster/resource ids always sampled |
//! | `HYPERFLEET_LOG_LEVEL` | `info` | `debug`, `info`, `warn`, `error` |
//! | `HYPERFLEET_LOG_FORMAT` | `json` | `json` or `text` |
//! | `HYPERFLEET_LOG_OUTPUT` | `stdout` | `stdout` or `stderr` |
//! | `OTEL_METRICS_EXPORTER` | `otlp` | `otlp`, `prometheus`, `console`, `none` (comma-separated) |
//! | `OTEL_EXPORTER_PROMETHEUS_HOST` / `_PORT` | `localhost` / `9090` | where `/metrics` is served |
//! | `OTEL_METRIC_EXPORT_INTERVAL` | `60000` | milliseconds between OTLP / console exports |
//! | `OTEL_EXPORTER_OTLP_METRICS_*` | the general `OTEL_EXPORTER_OTLP_*` | endpoint, protocol, timeout for metrics |
//!
//! With tracing disabled no span is recorded or exported, but the propagators stay installed
//! and the publisher and subscriber still carry incoming trace context on to outgoing events.

mod component;
pub mod config;
mod guard;
pub mod logs;
mod metrics;
mod otlp_metrics;
mod provider;
pub mod sampling;

pub use component::Component;
pub use config::{Config, ConfigError};
pub use guard::TelemetryGuard;

use crate::carrier::{NoPropagation, Propagation, W3cTraceContext};
use crate::metrics::Metrics;
use crate::settings::Settings;
use config::{LogLevel, LogOutput, PropagatorKind};
use logs::LogLayer;
use opentelemetry::propagation::{TextMapCompositePropagator, TextMapPropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::propagation::BaggagePropagator;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanProcessor, TracerProviderBuilder};
use std::time::Duration;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Why telemetry could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TelemetryError {
    /// An environment variable has a value the standard does not allow.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The OTLP exporter could not be built.
    #[error("cannot build the OTLP exporter for {endpoint}: {source}")]
    Exporter {
        /// The endpoint.
        endpoint: String,
        /// The cause.
        #[source]
        source: opentelemetry_otlp::ExporterBuildError,
    },
    /// The OTLP metric exporter could not be built (an endpoint that is no URI, a header
    /// gRPC or HTTP cannot carry).
    #[error("cannot build the OTLP metric exporter for {endpoint}: {source}")]
    MetricsExporter {
        /// The endpoint.
        endpoint: String,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The Prometheus exporter could not listen on its address.
    #[error("cannot serve metrics on {address}: {source}")]
    MetricsServer {
        /// `OTEL_EXPORTER_PROMETHEUS_HOST:OTEL_EXPORTER_PROMETHEUS_PORT`.
        address: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A global `tracing` subscriber was already installed.
    #[error("a global tracing subscriber is already installed: {0}")]
    SubscriberAlreadySet(String),
}

/// Sets telemetry up for `component` from the environment and installs it globally.
///
/// Call it inside the Tokio runtime. Keep the guard: dropping it flushes and shuts down.
pub fn init(component: Component) -> Result<TelemetryGuard, TelemetryError> {
    builder(component).install()
}

/// A builder, for a version, an explicit configuration or another log writer.
pub fn builder(component: Component) -> TelemetryBuilder {
    TelemetryBuilder {
        component,
        version: None,
        config: None,
        log_writer: None,
        shutdown_timeout: Duration::from_secs(5),
        extra_processors: Vec::new(),
    }
}

/// Adds a span processor to the provider being built.
type AddProcessor = Box<dyn FnOnce(TracerProviderBuilder) -> TracerProviderBuilder + Send>;

/// Builds [`Telemetry`]; see [`builder`].
pub struct TelemetryBuilder {
    component: Component,
    version: Option<String>,
    config: Option<Config>,
    log_writer: Option<BoxMakeWriter>,
    shutdown_timeout: Duration,
    extra_processors: Vec<AddProcessor>,
}

impl std::fmt::Debug for TelemetryBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TelemetryBuilder")
            .field("component", &self.component)
            .field("version", &self.version)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl TelemetryBuilder {
    /// The component's version (`service.version` in `OTEL_RESOURCE_ATTRIBUTES` wins).
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.version = Some(version.into());
        self
    }

    /// Uses `config` instead of reading the environment.
    pub fn config(mut self, config: Config) -> Self {
        self.config = Some(config);
        self
    }

    /// Writes log lines to `writer` instead of `HYPERFLEET_LOG_OUTPUT`.
    pub fn log_writer<W>(mut self, writer: W) -> Self
    where
        W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
    {
        self.log_writer = Some(BoxMakeWriter::new(writer));
        self
    }

    /// The longest the guard's shutdown may take (default 5 s).
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// Also sends spans to `processor` (for instance a simple processor over an in-memory
    /// exporter), besides the exporters of `OTEL_TRACES_EXPORTER`. Ignored when tracing is
    /// disabled.
    pub fn with_span_processor<P: SpanProcessor + 'static>(mut self, processor: P) -> Self {
        self.extra_processors.push(Box::new(move |builder| {
            builder.with_span_processor(processor)
        }));
        self
    }

    /// Builds the provider, propagator and log layer without installing anything globally.
    pub fn build(self) -> Result<Telemetry, TelemetryError> {
        let config = match self.config {
            Some(config) => config,
            None => Config::from_env(self.component.service_name())?,
        };
        let tracing = &config.tracing;
        let version = tracing
            .resource_attributes
            .iter()
            .find(|(k, _)| k == "service.version")
            .map(|(_, v)| v.clone())
            .or(self.version)
            .unwrap_or_else(|| "unknown".to_owned());
        let provider = if tracing.enabled {
            Some(provider::tracer_provider(
                &config,
                &version,
                self.extra_processors,
            )?)
        } else {
            None
        };
        let metrics = metrics::export(
            &config,
            provider::resource(&config, &version),
            self.component.log_component(),
            &version,
        )?;
        let writer = self
            .log_writer
            .unwrap_or_else(|| match config.logging.output {
                LogOutput::Stdout => BoxMakeWriter::new(std::io::stdout),
                LogOutput::Stderr => BoxMakeWriter::new(std::io::stderr),
            });
        let log_layer = LogLayer::new(
            writer,
            config.logging.format,
            self.component.log_component(),
            version,
        );
        Ok(Telemetry {
            provider,
            metrics,
            log_layer,
            config,
            shutdown_timeout: self.shutdown_timeout,
        })
    }

    /// Builds and installs globally: tracer provider, propagator, meter provider and
    /// [`Metrics`], and the `tracing` subscriber with the log layer and the OpenTelemetry bridge.
    pub fn install(self) -> Result<TelemetryGuard, TelemetryError> {
        self.build()?.install()
    }
}

/// Telemetry built but not yet installed.
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
    metrics: metrics::MetricsExport,
    log_layer: LogLayer,
    config: Config,
    shutdown_timeout: Duration,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry")
            .field("config", &self.config)
            .field("tracing_enabled", &self.provider.is_some())
            .field("metrics", &self.metrics.metrics)
            .finish_non_exhaustive()
    }
}

impl Telemetry {
    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The tracer provider; `None` when tracing is disabled.
    pub fn tracer_provider(&self) -> Option<&SdkTracerProvider> {
        self.provider.as_ref()
    }

    /// The metrics `OTEL_METRICS_EXPORTER` sends somewhere ([`Metrics::disabled`] for `none`):
    /// hand them to publishers and subscribers with `.metrics(...)`. [`install`] also makes
    /// them the global metrics, which they use by default.
    ///
    /// [`install`]: Self::install
    pub fn metrics(&self) -> Metrics {
        self.metrics.metrics.clone()
    }

    /// The SDK meter provider of the `otlp` and `console` exporters; `None` without them.
    pub fn meter_provider(&self) -> Option<&SdkMeterProvider> {
        self.metrics.provider.as_ref()
    }

    /// Where the `prometheus` exporter serves `/metrics`; `None` without it.
    pub fn metrics_address(&self) -> Option<std::net::SocketAddr> {
        self.metrics.server.as_ref().map(|s| s.address())
    }

    /// The propagator `OTEL_PROPAGATORS` names ([`NoPropagation`] for `none`): hand it to
    /// publishers, subscribers and the HTTP glue with `Settings::propagator`. [`install`] also
    /// makes it the global propagator, which they use by default.
    ///
    /// [`install`]: Self::install
    pub fn propagator(&self) -> Propagation {
        let propagators: Vec<Box<dyn TextMapPropagator + Send + Sync>> = self
            .config
            .tracing
            .propagators
            .iter()
            .map(|p| -> Box<dyn TextMapPropagator + Send + Sync> {
                match p {
                    PropagatorKind::TraceContext => Box::new(W3cTraceContext),
                    PropagatorKind::Baggage => Box::new(BaggagePropagator::new()),
                }
            })
            .collect();
        match self.config.tracing.propagators.first() {
            None => Propagation::new(NoPropagation),
            // The crate's codec first: on CloudEvents it reads and writes the extensions itself.
            Some(PropagatorKind::TraceContext) => {
                Propagation::w3c_then(propagators.into_iter().skip(1).collect())
            }
            Some(_) => Propagation::new(TextMapCompositePropagator::new(propagators)),
        }
    }

    /// The [`Settings`] for the publishers, subscribers, push endpoints and HTTP glue that
    /// report through this telemetry: its tracer provider (a no-op one when tracing is
    /// disabled), propagator and metrics, and the speed options its sampler allows, decided
    /// here because here the sampler is known:
    /// [`UnsampledParent::Follow`](crate::settings::UnsampledParent::Follow) when
    /// [`Config::unsampled_parent`] says no span under an unsampled parent could record, and
    /// [`AttributeTiming::WhenRecording`](crate::settings::AttributeTiming::WhenRecording)
    /// unless the always-sample rules list resources (the one sampler here that reads
    /// per-message attributes). Exported spans are the same either way.
    pub fn settings(&self) -> Settings {
        use crate::settings::AttributeTiming;
        let settings = match &self.provider {
            Some(provider) => Settings::new().tracer_provider(provider),
            None => Settings::new()
                .tracer_provider(&opentelemetry::trace::noop::NoopTracerProvider::new()),
        };
        let timing = match self.config.tracing.always_sample.resources.is_empty() {
            true => AttributeTiming::WhenRecording,
            false => AttributeTiming::AtStart,
        };
        let mut settings = settings
            .metrics(self.metrics())
            .unsampled_parent(self.config.unsampled_parent())
            .attribute_timing(timing);
        settings.propagation = self.propagator();
        settings
    }

    /// The `tracing` subscriber: the log layer at `HYPERFLEET_LOG_LEVEL`, plus the
    /// OpenTelemetry bridge when tracing is enabled. For tests and custom set-ups; [`install`]
    /// makes it the global default.
    ///
    /// [`install`]: Self::install
    pub fn into_subscriber(self) -> (tracing::Dispatch, TelemetryGuard) {
        let level = match self.config.logging.level {
            LogLevel::Debug => LevelFilter::DEBUG,
            LogLevel::Info => LevelFilter::INFO,
            LogLevel::Warn => LevelFilter::WARN,
            LogLevel::Error => LevelFilter::ERROR,
        };
        let bridge = self.provider.as_ref().map(|provider| {
            tracing_opentelemetry::layer().with_tracer(provider.tracer(crate::span::SCOPE_NAME))
        });
        // The OpenTelemetry crates log their own housekeeping through `tracing`; keep their
        // warnings and errors only.
        let mut targets = Targets::new().with_default(level);
        for target in ["opentelemetry", "opentelemetry_sdk", "opentelemetry_otlp"] {
            targets = targets.with_target(target, level.min(LevelFilter::WARN));
        }
        let dispatch = tracing_subscriber::registry()
            .with(self.log_layer.with_filter(targets))
            .with(bridge)
            .into();
        let guard = TelemetryGuard {
            provider: self.provider,
            meter_provider: self.metrics.provider,
            metrics_server: self.metrics.server,
            timeout: self.shutdown_timeout,
        };
        (dispatch, guard)
    }

    /// Installs everything globally and returns the guard.
    pub fn install(self) -> Result<TelemetryGuard, TelemetryError> {
        let propagator = self.propagator();
        let provider = self.provider.clone();
        let metrics = self.metrics();
        let meter_provider = self.metrics.provider.clone();
        let (dispatch, guard) = self.into_subscriber();
        // The subscriber first: if it fails, nothing global has changed.
        dispatch
            .try_init()
            .map_err(|e| TelemetryError::SubscriberAlreadySet(e.to_string()))?;
        propagator.install_globally();
        if let Some(provider) = provider {
            opentelemetry::global::set_tracer_provider(provider);
        }
        if let Some(provider) = meter_provider {
            opentelemetry::global::set_meter_provider(provider);
        }
        Metrics::set_global(metrics);
        Ok(guard)
    }
}
