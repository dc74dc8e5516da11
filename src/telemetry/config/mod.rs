//! The standard's environment variables, read and checked.
//!
//! Every variable is read through a lookup function, so tests can pass a map instead of
//! changing the process environment. An invalid value is an error that names the variable,
//! the value and the allowed values; nothing falls back silently.

mod read;
mod values;

use crate::span::unsampled::UnsampledParent;
use read::{log_config, metrics_config, tracing_config};
use std::time::Duration;

/// How long an OTLP export may take by default (the OpenTelemetry specification's 10 s).
const DEFAULT_EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// The names of the environment variables read, for code and docs alike.
pub mod vars {
    /// The service name (default: the component's).
    pub const OTEL_SERVICE_NAME: &str = "OTEL_SERVICE_NAME";
    /// The OTLP collector for every signal.
    pub const OTEL_EXPORTER_OTLP_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
    /// The OTLP collector for traces, used as is.
    pub const OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT";
    /// `grpc` or `http/protobuf`.
    pub const OTEL_EXPORTER_OTLP_PROTOCOL: &str = "OTEL_EXPORTER_OTLP_PROTOCOL";
    /// Export timeout in milliseconds, for every signal.
    pub const OTEL_EXPORTER_OTLP_TIMEOUT: &str = "OTEL_EXPORTER_OTLP_TIMEOUT";
    /// Export timeout in milliseconds, for traces.
    pub const OTEL_EXPORTER_OTLP_TRACES_TIMEOUT: &str = "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT";
    /// The head sampler.
    pub const OTEL_TRACES_SAMPLER: &str = "OTEL_TRACES_SAMPLER";
    /// The head sampler's ratio.
    pub const OTEL_TRACES_SAMPLER_ARG: &str = "OTEL_TRACES_SAMPLER_ARG";
    /// The context propagators.
    pub const OTEL_PROPAGATORS: &str = "OTEL_PROPAGATORS";
    /// Resource attributes, `k=v,…`.
    pub const OTEL_RESOURCE_ATTRIBUTES: &str = "OTEL_RESOURCE_ATTRIBUTES";
    /// The span exporters.
    pub const OTEL_TRACES_EXPORTER: &str = "OTEL_TRACES_EXPORTER";
    /// `true` turns the SDK off.
    pub const OTEL_SDK_DISABLED: &str = "OTEL_SDK_DISABLED";
    /// The standard's switch.
    pub const TRACING_ENABLED: &str = "TRACING_ENABLED";
    /// The newer upstream switch; wins over [`TRACING_ENABLED`] when both are set.
    pub const HYPERFLEET_TRACING_ENABLED: &str = "HYPERFLEET_TRACING_ENABLED";
    /// Export dropped spans that end in error.
    pub const HYPERFLEET_TRACING_ALWAYS_SAMPLE_ERRORS: &str =
        "HYPERFLEET_TRACING_ALWAYS_SAMPLE_ERRORS";
    /// Export dropped spans slower than this many milliseconds.
    pub const HYPERFLEET_TRACING_SLOW_THRESHOLD_MS: &str = "HYPERFLEET_TRACING_SLOW_THRESHOLD_MS";
    /// Cluster and resource ids always sampled.
    pub const HYPERFLEET_TRACING_ALWAYS_SAMPLE_RESOURCES: &str =
        "HYPERFLEET_TRACING_ALWAYS_SAMPLE_RESOURCES";
    /// Lowest log level written.
    pub const HYPERFLEET_LOG_LEVEL: &str = "HYPERFLEET_LOG_LEVEL";
    /// `json` or `text`.
    pub const HYPERFLEET_LOG_FORMAT: &str = "HYPERFLEET_LOG_FORMAT";
    /// `stdout` or `stderr`.
    pub const HYPERFLEET_LOG_OUTPUT: &str = "HYPERFLEET_LOG_OUTPUT";
    /// The metric exporters.
    pub const OTEL_METRICS_EXPORTER: &str = "OTEL_METRICS_EXPORTER";
    /// Interface the Prometheus exporter listens on.
    pub const OTEL_EXPORTER_PROMETHEUS_HOST: &str = "OTEL_EXPORTER_PROMETHEUS_HOST";
    /// Port the Prometheus exporter listens on.
    pub const OTEL_EXPORTER_PROMETHEUS_PORT: &str = "OTEL_EXPORTER_PROMETHEUS_PORT";
    /// Milliseconds between two periodic metric exports.
    pub const OTEL_METRIC_EXPORT_INTERVAL: &str = "OTEL_METRIC_EXPORT_INTERVAL";
    /// The OTLP collector for metrics, used as is.
    pub const OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT";
    /// `grpc` or `http/protobuf`, for metrics.
    pub const OTEL_EXPORTER_OTLP_METRICS_PROTOCOL: &str = "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL";
    /// Export timeout in milliseconds, for metrics.
    pub const OTEL_EXPORTER_OTLP_METRICS_TIMEOUT: &str = "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT";
    /// Headers of every OTLP export: `key=value` pairs separated by commas.
    pub const OTEL_EXPORTER_OTLP_HEADERS: &str = "OTEL_EXPORTER_OTLP_HEADERS";
    /// Headers of the OTLP metric exports; its keys win over the general variable's.
    pub const OTEL_EXPORTER_OTLP_METRICS_HEADERS: &str = "OTEL_EXPORTER_OTLP_METRICS_HEADERS";
}

/// The Prometheus exporter's port by default: the HyperFleet metrics standard's.
pub const DEFAULT_PROMETHEUS_PORT: u16 = 9090;

/// Time between periodic metric exports by default (the OpenTelemetry specification's).
const DEFAULT_METRIC_EXPORT_INTERVAL: Duration = Duration::from_secs(60);

/// A configuration value the standard does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {variable}={value:?}: allowed values are {allowed}")]
pub struct ConfigError {
    /// The environment variable.
    pub variable: &'static str,
    /// The value found.
    pub value: String,
    /// What would have been accepted.
    pub allowed: String,
}

/// OTLP transport protocol (`OTEL_EXPORTER_OTLP_PROTOCOL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Protocol {
    /// OTLP over gRPC (default; port 4317).
    Grpc,
    /// OTLP over HTTP with protobuf bodies (port 4318, path `/v1/traces`).
    HttpProtobuf,
}

/// The head sampler (`OTEL_TRACES_SAMPLER` with `OTEL_TRACES_SAMPLER_ARG`).
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum SamplerConfig {
    /// `always_on`
    AlwaysOn,
    /// `always_off`
    AlwaysOff,
    /// `traceidratio`, with the ratio
    TraceIdRatio(f64),
    /// `parentbased_always_on`
    ParentBasedAlwaysOn,
    /// `parentbased_always_off`
    ParentBasedAlwaysOff,
    /// `parentbased_traceidratio`, with the ratio (the standard's default, 1.0)
    ParentBasedTraceIdRatio(f64),
}

/// A context propagator named in `OTEL_PROPAGATORS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PropagatorKind {
    /// W3C Trace Context (`traceparent`, `tracestate`).
    TraceContext,
    /// W3C Baggage (`baggage`).
    Baggage,
}

/// A span exporter named in `OTEL_TRACES_EXPORTER`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExporterKind {
    /// OTLP to `OTEL_EXPORTER_OTLP_ENDPOINT`.
    Otlp,
    /// Human-readable spans on standard output.
    Console,
}

/// A metric exporter named in `OTEL_METRICS_EXPORTER`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MetricsExporterKind {
    /// OTLP, every `OTEL_METRIC_EXPORT_INTERVAL`.
    Otlp,
    /// `/metrics` in the OpenMetrics text format, with exemplars.
    Prometheus,
    /// Human-readable metrics on standard output, every `OTEL_METRIC_EXPORT_INTERVAL`.
    Console,
}

/// Metrics configuration, from `OTEL_METRICS_EXPORTER` and the exporters' variables.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsConfig {
    /// Off only with `OTEL_SDK_DISABLED=true`: `TRACING_ENABLED` is about traces.
    pub enabled: bool,
    /// `OTEL_METRICS_EXPORTER` (default `otlp`; empty when `none`).
    pub exporters: Vec<MetricsExporterKind>,
    /// `OTEL_EXPORTER_PROMETHEUS_HOST` (default `localhost`; `0.0.0.0` in a container that
    /// Prometheus scrapes from outside).
    pub prometheus_host: String,
    /// `OTEL_EXPORTER_PROMETHEUS_PORT` (default 9090; 0 picks a free port).
    pub prometheus_port: u16,
    /// `OTEL_EXPORTER_OTLP_METRICS_PROTOCOL`, else `OTEL_EXPORTER_OTLP_PROTOCOL`.
    pub protocol: Protocol,
    /// `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT` as is, else `OTEL_EXPORTER_OTLP_ENDPOINT` (plus
    /// `/v1/metrics` over HTTP).
    pub endpoint: String,
    /// `OTEL_EXPORTER_OTLP_METRICS_TIMEOUT`, else `OTEL_EXPORTER_OTLP_TIMEOUT` (default 10 s).
    pub export_timeout: Duration,
    /// `OTEL_METRIC_EXPORT_INTERVAL` in milliseconds (default 60 s).
    pub export_interval: Duration,
    /// `OTEL_EXPORTER_OTLP_HEADERS`, then `OTEL_EXPORTER_OTLP_METRICS_HEADERS`.
    pub headers: OtlpHeaders,
}

/// Headers sent with every OTLP export, in order, lower-case names. `Debug` shows the names
/// only: the values are often credentials.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct OtlpHeaders(Vec<(String, String)>);

impl OtlpHeaders {
    /// Each header's name and value.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Sets `name` to `value`, replacing an earlier value.
    fn set(&mut self, name: String, value: String) {
        self.0.retain(|(k, _)| *k != name);
        self.0.push((name, value));
    }
}

impl std::fmt::Debug for OtlpHeaders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.0.iter().map(|(k, _)| (k, "<redacted>")))
            .finish()
    }
}

/// The always-sample rules (`HYPERFLEET_TRACING_*`, see [`super::sampling`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AlwaysSampleConfig {
    /// Export spans the head sampler dropped if they end in error (or HTTP status ≥ 500).
    pub errors: bool,
    /// Export spans the head sampler dropped if they last longer than this.
    pub slow_threshold: Option<Duration>,
    /// Sample spans whose `hyperfleet.cluster_id` or `hyperfleet.resource_id` is listed.
    pub resources: Vec<String>,
}

impl AlwaysSampleConfig {
    /// Whether dropped spans must be recorded so their end can be judged.
    pub fn records_dropped_spans(&self) -> bool {
        self.errors || self.slow_threshold.is_some()
    }
}

/// Tracing configuration, as the standard's environment variables describe it.
#[derive(Debug, Clone, PartialEq)]
pub struct TracingConfig {
    /// `TRACING_ENABLED` / `HYPERFLEET_TRACING_ENABLED` / `OTEL_SDK_DISABLED` combined.
    pub enabled: bool,
    /// `OTEL_SERVICE_NAME`, or the component's name.
    pub service_name: String,
    /// `OTEL_TRACES_EXPORTER` (default `otlp`; empty when `none`).
    pub exporters: Vec<ExporterKind>,
    /// `OTEL_EXPORTER_OTLP_PROTOCOL` (default `grpc`).
    pub protocol: Protocol,
    /// The URL spans are sent to: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` as is, else
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` (plus `/v1/traces` over HTTP), `http://` added when it has no
    /// scheme. Default `http://localhost:4317` (gRPC) or `http://localhost:4318/v1/traces`.
    pub endpoint: String,
    /// `OTEL_EXPORTER_OTLP_TIMEOUT` / `OTEL_EXPORTER_OTLP_TRACES_TIMEOUT` in milliseconds
    /// (default 10 s).
    pub export_timeout: Duration,
    /// `OTEL_TRACES_SAMPLER` + `OTEL_TRACES_SAMPLER_ARG`.
    pub sampler: SamplerConfig,
    /// `OTEL_PROPAGATORS` (default `tracecontext,baggage`; empty for `none`).
    pub propagators: Vec<PropagatorKind>,
    /// `OTEL_RESOURCE_ATTRIBUTES`, percent-decoded, in order.
    pub resource_attributes: Vec<(String, String)>,
    /// The always-sample rules.
    pub always_sample: AlwaysSampleConfig,
}

/// Log level (`HYPERFLEET_LOG_LEVEL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub enum LogLevel {
    /// `debug`
    Debug,
    /// `info` (default)
    Info,
    /// `warn`
    Warn,
    /// `error`
    Error,
}

/// Log line format (`HYPERFLEET_LOG_FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LogFormat {
    /// One JSON object per line (default).
    Json,
    /// `timestamp LEVEL message key=value …`
    Text,
}

/// Where log lines go (`HYPERFLEET_LOG_OUTPUT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LogOutput {
    /// Standard output (default).
    Stdout,
    /// Standard error.
    Stderr,
}

/// Logging configuration from `HYPERFLEET_LOG_*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogConfig {
    /// Lowest level written.
    pub level: LogLevel,
    /// Line format.
    pub format: LogFormat,
    /// Destination.
    pub output: LogOutput,
}

/// Tracing and logging configuration together.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Tracing.
    pub tracing: TracingConfig,
    /// Logging.
    pub logging: LogConfig,
    /// Metrics.
    pub metrics: MetricsConfig,
}

impl Config {
    /// Reads the process environment; `default_service_name` applies when
    /// `OTEL_SERVICE_NAME` is unset.
    pub fn from_env(default_service_name: &str) -> Result<Self, ConfigError> {
        Self::from_lookup(default_service_name, |key| std::env::var(key).ok())
    }

    /// What publishers and subscribers may do under an unsampled parent with the provider
    /// this configuration sets up: [`UnsampledParent::Follow`] when the sampler is parent-based
    /// and no always-sample rule could keep a child of an unsampled parent (errors, slow
    /// operations, listed resources), else [`UnsampledParent::AskSampler`].
    pub fn unsampled_parent(&self) -> UnsampledParent {
        let tracing = &self.tracing;
        let parent_based = matches!(
            tracing.sampler,
            SamplerConfig::ParentBasedAlwaysOn
                | SamplerConfig::ParentBasedAlwaysOff
                | SamplerConfig::ParentBasedTraceIdRatio(_)
        );
        let rules = &tracing.always_sample;
        let rules_keep_children = rules.records_dropped_spans() || !rules.resources.is_empty();
        match parent_based && !rules_keep_children {
            true => UnsampledParent::Follow,
            false => UnsampledParent::AskSampler,
        }
    }

    /// Reads variables through `lookup` (`None` = unset).
    pub fn from_lookup(
        default_service_name: &str,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let get = |key: &str| {
            lookup(key)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        Ok(Self {
            tracing: tracing_config(default_service_name, &get)?,
            logging: log_config(&get)?,
            metrics: metrics_config(&get)?,
        })
    }
}
