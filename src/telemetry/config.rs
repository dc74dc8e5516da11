//! The standard's environment variables, read and checked.
//!
//! Every variable is read through a lookup function, so tests can pass a map instead of
//! changing the process environment. An invalid value is an error that names the variable,
//! the value and the allowed values; nothing falls back silently.

use crate::span::unsampled::UnsampledParent;
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

fn tracing_config(
    default_service_name: &str,
    get: &dyn Fn(&str) -> Option<String>,
) -> Result<TracingConfig, ConfigError> {
    // The newer upstream name wins when both are set: it is the more specific switch.
    let enabled = match get(vars::HYPERFLEET_TRACING_ENABLED) {
        Some(_) => boolean(get, vars::HYPERFLEET_TRACING_ENABLED, true)?,
        None => boolean(get, vars::TRACING_ENABLED, true)?,
    };
    let sdk_disabled = boolean(get, vars::OTEL_SDK_DISABLED, false)?;
    let protocol = enumeration(
        get,
        vars::OTEL_EXPORTER_OTLP_PROTOCOL,
        PROTOCOLS,
        Protocol::Grpc,
    )?;
    let export_timeout = export_timeout(get, vars::OTEL_EXPORTER_OTLP_TRACES_TIMEOUT)?;
    let resource_attributes = resource_attributes(get)?;
    Ok(TracingConfig {
        enabled: enabled && !sdk_disabled,
        service_name: service_name(get, &resource_attributes, default_service_name),
        exporters: list(get, vars::OTEL_TRACES_EXPORTER, "otlp", EXPORTERS)?,
        protocol,
        endpoint: endpoint(
            get,
            protocol,
            vars::OTEL_EXPORTER_OTLP_TRACES_ENDPOINT,
            "traces",
        )?,
        export_timeout,
        sampler: sampler(get)?,
        propagators: list(
            get,
            vars::OTEL_PROPAGATORS,
            "tracecontext,baggage",
            PROPAGATORS,
        )?,
        resource_attributes,
        always_sample: always_sample(get)?,
    })
}

/// `OTEL_SERVICE_NAME`, then `service.name` in `OTEL_RESOURCE_ATTRIBUTES`, then the
/// component's.
fn service_name(
    get: &dyn Fn(&str) -> Option<String>,
    resource_attributes: &[(String, String)],
    default_service_name: &str,
) -> String {
    get(vars::OTEL_SERVICE_NAME)
        .or_else(|| {
            resource_attributes
                .iter()
                .find(|(k, _)| k == "service.name")
                .map(|(_, v)| v.clone())
        })
        .unwrap_or_else(|| default_service_name.to_owned())
}

fn metrics_config(get: &dyn Fn(&str) -> Option<String>) -> Result<MetricsConfig, ConfigError> {
    // The signal's own protocol wins over the general one.
    let protocol = match get(vars::OTEL_EXPORTER_OTLP_METRICS_PROTOCOL) {
        Some(_) => vars::OTEL_EXPORTER_OTLP_METRICS_PROTOCOL,
        None => vars::OTEL_EXPORTER_OTLP_PROTOCOL,
    };
    let protocol = enumeration(get, protocol, PROTOCOLS, Protocol::Grpc)?;
    let port = vars::OTEL_EXPORTER_PROMETHEUS_PORT;
    let prometheus_port = match get(port) {
        None => DEFAULT_PROMETHEUS_PORT,
        Some(v) => v
            .parse::<u16>()
            .map_err(|_| invalid(port, &v, "a port number from 0 to 65535"))?,
    };
    Ok(MetricsConfig {
        enabled: !boolean(get, vars::OTEL_SDK_DISABLED, false)?,
        exporters: list(get, vars::OTEL_METRICS_EXPORTER, "otlp", METRICS_EXPORTERS)?,
        prometheus_host: get(vars::OTEL_EXPORTER_PROMETHEUS_HOST)
            .unwrap_or_else(|| "localhost".to_owned()),
        prometheus_port,
        protocol,
        endpoint: endpoint(
            get,
            protocol,
            vars::OTEL_EXPORTER_OTLP_METRICS_ENDPOINT,
            "metrics",
        )?,
        export_timeout: export_timeout(get, vars::OTEL_EXPORTER_OTLP_METRICS_TIMEOUT)?,
        export_interval: millis(get, vars::OTEL_METRIC_EXPORT_INTERVAL)?
            .unwrap_or(DEFAULT_METRIC_EXPORT_INTERVAL),
        headers: headers(get, vars::OTEL_EXPORTER_OTLP_METRICS_HEADERS)?,
    })
}

/// What the header variables take.
const HEADERS_ALLOWED: &str = "comma-separated key=value pairs: header names and values";

/// The general headers, then the signal's (whose keys win): `key=value` pairs separated by
/// commas, values percent-decoded and trimmed, as the OpenTelemetry specification writes them.
/// An error names the variable and the key only: values are often credentials.
fn headers(
    get: &dyn Fn(&str) -> Option<String>,
    signal_variable: &'static str,
) -> Result<OtlpHeaders, ConfigError> {
    let mut headers = OtlpHeaders::default();
    for variable in [vars::OTEL_EXPORTER_OTLP_HEADERS, signal_variable] {
        let Some(raw) = get(variable) else { continue };
        for (position, pair) in raw.split(',').filter(|p| !p.trim().is_empty()).enumerate() {
            // Only a valid header name is ever shown: anything else may hold a secret (a
            // pair without `=`, the tail of a value with an unencoded comma).
            let shown = |name: &str| match axum::http::HeaderName::from_bytes(name.as_bytes()) {
                Ok(_) => format!("{name}=…"),
                Err(_) => format!("entry {}", position + 1),
            };
            let Some((key, value)) = pair.split_once('=') else {
                return Err(invalid(variable, &shown(""), HEADERS_ALLOWED));
            };
            let key = key.trim().to_ascii_lowercase();
            let value = percent_encoding::percent_decode_str(value.trim()).decode_utf8_lossy();
            let valid = axum::http::HeaderName::from_bytes(key.as_bytes()).is_ok()
                && axum::http::HeaderValue::from_str(&value).is_ok();
            if !valid {
                return Err(invalid(variable, &shown(&key), HEADERS_ALLOWED));
            }
            headers.set(key, value.into_owned());
        }
    }
    Ok(headers)
}

/// The signal's own timeout variable, else the general one; the general one is not read when
/// the signal's is set.
fn export_timeout(
    get: &dyn Fn(&str) -> Option<String>,
    signal_variable: &'static str,
) -> Result<Duration, ConfigError> {
    match millis(get, signal_variable)? {
        Some(timeout) => Ok(timeout),
        None => {
            Ok(millis(get, vars::OTEL_EXPORTER_OTLP_TIMEOUT)?.unwrap_or(DEFAULT_EXPORT_TIMEOUT))
        }
    }
}

/// The URL a signal (`traces`, `metrics`) is sent to: its own variable as is, else the
/// general endpoint (plus `/v1/{signal}` over HTTP).
fn endpoint(
    get: &dyn Fn(&str) -> Option<String>,
    protocol: Protocol,
    signal_variable: &'static str,
    signal: &str,
) -> Result<String, ConfigError> {
    if let Some(url) = get(signal_variable) {
        return with_scheme(signal_variable, &url);
    }
    let default = match protocol {
        Protocol::Grpc => "localhost:4317",
        Protocol::HttpProtobuf => "localhost:4318",
    };
    let base = get(vars::OTEL_EXPORTER_OTLP_ENDPOINT).unwrap_or_else(|| default.to_owned());
    let base = with_scheme(vars::OTEL_EXPORTER_OTLP_ENDPOINT, &base)?;
    Ok(match protocol {
        Protocol::Grpc => base,
        Protocol::HttpProtobuf => format!("{}/v1/{signal}", base.trim_end_matches('/')),
    })
}

/// `host:port` becomes `http://host:port`; a URL keeps its scheme, which must be http(s).
fn with_scheme(variable: &'static str, value: &str) -> Result<String, ConfigError> {
    let allowed = "host:port or an http:// or https:// URL";
    match value.split_once("://") {
        Some(("http" | "https", rest)) if !rest.is_empty() => Ok(value.to_owned()),
        Some(_) => Err(invalid(variable, value, allowed)),
        None if value.contains(char::is_whitespace) => Err(invalid(variable, value, allowed)),
        None => Ok(format!("http://{value}")),
    }
}

/// A head sampler by name, before its ratio is known.
#[derive(Debug, Clone, Copy)]
enum SamplerName {
    AlwaysOn,
    AlwaysOff,
    TraceIdRatio,
    ParentBasedAlwaysOn,
    ParentBasedAlwaysOff,
    ParentBasedTraceIdRatio,
}

const SAMPLERS: Table<SamplerName> = &[
    ("always_on", SamplerName::AlwaysOn),
    ("always_off", SamplerName::AlwaysOff),
    ("traceidratio", SamplerName::TraceIdRatio),
    ("parentbased_always_on", SamplerName::ParentBasedAlwaysOn),
    ("parentbased_always_off", SamplerName::ParentBasedAlwaysOff),
    (
        "parentbased_traceidratio",
        SamplerName::ParentBasedTraceIdRatio,
    ),
];

fn sampler(get: &dyn Fn(&str) -> Option<String>) -> Result<SamplerConfig, ConfigError> {
    let name = enumeration(
        get,
        vars::OTEL_TRACES_SAMPLER,
        SAMPLERS,
        SamplerName::ParentBasedTraceIdRatio,
    )?;
    Ok(match name {
        SamplerName::AlwaysOn => SamplerConfig::AlwaysOn,
        SamplerName::AlwaysOff => SamplerConfig::AlwaysOff,
        SamplerName::TraceIdRatio => SamplerConfig::TraceIdRatio(ratio(get)?),
        SamplerName::ParentBasedAlwaysOn => SamplerConfig::ParentBasedAlwaysOn,
        SamplerName::ParentBasedAlwaysOff => SamplerConfig::ParentBasedAlwaysOff,
        SamplerName::ParentBasedTraceIdRatio => SamplerConfig::ParentBasedTraceIdRatio(ratio(get)?),
    })
}

/// `OTEL_TRACES_SAMPLER_ARG`, a ratio from 0 to 1 (default 1).
fn ratio(get: &dyn Fn(&str) -> Option<String>) -> Result<f64, ConfigError> {
    let variable = vars::OTEL_TRACES_SAMPLER_ARG;
    match get(variable) {
        None => Ok(1.0),
        Some(v) => v
            .parse::<f64>()
            .ok()
            .filter(|r| (0.0..=1.0).contains(r))
            .ok_or_else(|| invalid(variable, &v, "a ratio from 0.0 to 1.0")),
    }
}

/// `key=value` pairs separated by commas; keys and values percent-decoded (W3C Baggage
/// octet rules, as the OpenTelemetry resource SDK specifies).
fn resource_attributes(
    get: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<(String, String)>, ConfigError> {
    let variable = vars::OTEL_RESOURCE_ATTRIBUTES;
    let Some(raw) = get(variable) else {
        return Ok(Vec::new());
    };
    let bad = || {
        invalid(
            variable,
            &raw,
            "comma-separated key=value pairs, percent-encoded",
        )
    };
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s.trim())
            .decode_utf8()
            .map(|d| d.into_owned())
            .map_err(|_| bad())
    };
    raw.split(',')
        .filter(|pair| !pair.trim().is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').ok_or_else(bad)?;
            let key = decode(key)?;
            if key.is_empty() {
                return Err(bad());
            }
            Ok((key, decode(value)?))
        })
        .collect()
}

fn always_sample(get: &dyn Fn(&str) -> Option<String>) -> Result<AlwaysSampleConfig, ConfigError> {
    let resources = get(vars::HYPERFLEET_TRACING_ALWAYS_SAMPLE_RESOURCES)
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    Ok(AlwaysSampleConfig {
        errors: boolean(get, vars::HYPERFLEET_TRACING_ALWAYS_SAMPLE_ERRORS, true)?,
        slow_threshold: millis(get, vars::HYPERFLEET_TRACING_SLOW_THRESHOLD_MS)?,
        resources,
    })
}

const LOG_LEVELS: Table<LogLevel> = &[
    ("debug", LogLevel::Debug),
    ("info", LogLevel::Info),
    ("warn", LogLevel::Warn),
    ("error", LogLevel::Error),
];
const LOG_FORMATS: Table<LogFormat> = &[("text", LogFormat::Text), ("json", LogFormat::Json)];
const LOG_OUTPUTS: Table<LogOutput> =
    &[("stdout", LogOutput::Stdout), ("stderr", LogOutput::Stderr)];
const PROTOCOLS: Table<Protocol> = &[
    ("grpc", Protocol::Grpc),
    ("http/protobuf", Protocol::HttpProtobuf),
];
const EXPORTERS: Table<ExporterKind> = &[
    ("otlp", ExporterKind::Otlp),
    ("console", ExporterKind::Console),
];
const METRICS_EXPORTERS: Table<MetricsExporterKind> = &[
    ("otlp", MetricsExporterKind::Otlp),
    ("prometheus", MetricsExporterKind::Prometheus),
    ("console", MetricsExporterKind::Console),
];
const PROPAGATORS: Table<PropagatorKind> = &[
    ("tracecontext", PropagatorKind::TraceContext),
    ("baggage", PropagatorKind::Baggage),
];

fn log_config(get: &dyn Fn(&str) -> Option<String>) -> Result<LogConfig, ConfigError> {
    Ok(LogConfig {
        level: enumeration(get, vars::HYPERFLEET_LOG_LEVEL, LOG_LEVELS, LogLevel::Info)?,
        format: enumeration(
            get,
            vars::HYPERFLEET_LOG_FORMAT,
            LOG_FORMATS,
            LogFormat::Json,
        )?,
        output: enumeration(
            get,
            vars::HYPERFLEET_LOG_OUTPUT,
            LOG_OUTPUTS,
            LogOutput::Stdout,
        )?,
    })
}

/// The accepted spellings of an enumerated value, each with what it means. Values are read
/// ignoring ASCII case, as the OpenTelemetry specification asks of enumerations.
type Table<T> = &'static [(&'static str, T)];

/// Booleans as the OpenTelemetry specification and common practice spell them.
const BOOLEANS: Table<bool> = &[
    ("true", true),
    ("false", false),
    ("1", true),
    ("0", false),
    ("yes", true),
    ("no", false),
    ("on", true),
    ("off", false),
];

fn lookup<T: Copy>(table: Table<T>, value: &str) -> Option<T> {
    table
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(value))
        .map(|(_, meaning)| *meaning)
}

/// Every spelling `table` accepts, and `extra` after them: exactly what the error lists.
fn accepted<T>(table: Table<T>, extra: &[&str]) -> String {
    let names: Vec<&str> = table
        .iter()
        .map(|(name, _)| *name)
        .chain(extra.iter().copied())
        .collect();
    names.join(", ")
}

/// `variable` read through `table`; `default` when unset.
fn enumeration<T: Copy>(
    get: &dyn Fn(&str) -> Option<String>,
    variable: &'static str,
    table: Table<T>,
    default: T,
) -> Result<T, ConfigError> {
    match get(variable) {
        None => Ok(default),
        Some(value) => {
            lookup(table, &value).ok_or_else(|| invalid(variable, &value, accepted(table, &[])))
        }
    }
}

fn boolean(
    get: &dyn Fn(&str) -> Option<String>,
    variable: &'static str,
    default: bool,
) -> Result<bool, ConfigError> {
    enumeration(get, variable, BOOLEANS, default)
}

/// A whole number of milliseconds; `None` when unset.
fn millis(
    get: &dyn Fn(&str) -> Option<String>,
    variable: &'static str,
) -> Result<Option<Duration>, ConfigError> {
    get(variable)
        .map(|v| {
            v.parse::<u64>()
                .map(Duration::from_millis)
                .map_err(|_| invalid(variable, &v, "a whole number of milliseconds"))
        })
        .transpose()
}

/// A comma-separated list of names from `table`, where `none` alone means "empty".
fn list<T: Copy + PartialEq>(
    get: &dyn Fn(&str) -> Option<String>,
    variable: &'static str,
    default: &str,
    table: Table<T>,
) -> Result<Vec<T>, ConfigError> {
    let raw = get(variable).unwrap_or_else(|| default.to_owned());
    let names: Vec<&str> = raw
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if let [only] = names.as_slice()
        && only.eq_ignore_ascii_case("none")
    {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for name in names {
        let item = lookup(table, name)
            .ok_or_else(|| invalid(variable, &raw, accepted(table, &["none"])))?;
        if !out.contains(&item) {
            out.push(item);
        }
    }
    Ok(out)
}

fn invalid(variable: &'static str, value: &str, allowed: impl Into<String>) -> ConfigError {
    ConfigError {
        variable,
        value: value.to_owned(),
        allowed: allowed.into(),
    }
}
