//! The standard's environment variables, read and checked.
//!
//! Every variable is read through a lookup function, so tests can pass a map instead of
//! changing the process environment. An invalid value is an error that names the variable,
//! the value and the allowed values; nothing falls back silently.

use std::time::Duration;

/// A configuration value the standard does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {variable}={value:?}: allowed values are {allowed}")]
pub struct ConfigError {
    /// The environment variable.
    pub variable: &'static str,
    /// The value found.
    pub value: String,
    /// What would have been accepted.
    pub allowed: &'static str,
}

/// OTLP transport protocol (`OTEL_EXPORTER_OTLP_PROTOCOL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// OTLP over gRPC (default; port 4317).
    Grpc,
    /// OTLP over HTTP with protobuf bodies (port 4318, path `/v1/traces`).
    HttpProtobuf,
}

/// The head sampler (`OTEL_TRACES_SAMPLER` with `OTEL_TRACES_SAMPLER_ARG`).
#[derive(Debug, Clone, Copy, PartialEq)]
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
pub enum PropagatorKind {
    /// W3C Trace Context (`traceparent`, `tracestate`).
    TraceContext,
    /// W3C Baggage (`baggage`).
    Baggage,
}

/// A span exporter named in `OTEL_TRACES_EXPORTER`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExporterKind {
    /// OTLP to `OTEL_EXPORTER_OTLP_ENDPOINT`.
    Otlp,
    /// Human-readable spans on standard output.
    Console,
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
pub enum LogFormat {
    /// One JSON object per line (default).
    Json,
    /// `timestamp LEVEL message key=value …`
    Text,
}

/// Where log lines go (`HYPERFLEET_LOG_OUTPUT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
}

impl Config {
    /// Reads the process environment; `default_service_name` applies when
    /// `OTEL_SERVICE_NAME` is unset.
    pub fn from_env(default_service_name: &str) -> Result<Self, ConfigError> {
        Self::from_lookup(default_service_name, |key| std::env::var(key).ok())
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
        })
    }
}

fn tracing_config(
    default_service_name: &str,
    get: &dyn Fn(&str) -> Option<String>,
) -> Result<TracingConfig, ConfigError> {
    // The newer upstream name wins when both are set: it is the more specific switch.
    let enabled = match get("HYPERFLEET_TRACING_ENABLED") {
        Some(v) => boolean("HYPERFLEET_TRACING_ENABLED", &v)?,
        None => match get("TRACING_ENABLED") {
            Some(v) => boolean("TRACING_ENABLED", &v)?,
            None => true,
        },
    };
    let sdk_disabled = match get("OTEL_SDK_DISABLED") {
        Some(v) => boolean("OTEL_SDK_DISABLED", &v)?,
        None => false,
    };
    let protocol = match get("OTEL_EXPORTER_OTLP_PROTOCOL").as_deref() {
        None | Some("grpc") => Protocol::Grpc,
        Some("http/protobuf") => Protocol::HttpProtobuf,
        Some(other) => {
            return Err(invalid(
                "OTEL_EXPORTER_OTLP_PROTOCOL",
                other,
                "grpc, http/protobuf",
            ));
        }
    };
    let endpoint = endpoint(get, protocol)?;
    let timeout_var = [
        "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
        "OTEL_EXPORTER_OTLP_TIMEOUT",
    ]
    .into_iter()
    .find_map(|k| get(k).map(|v| (k, v)));
    let export_timeout = match timeout_var {
        Some((key, v)) => Duration::from_millis(
            v.parse::<u64>()
                .map_err(|_| invalid(key, &v, "a whole number of milliseconds"))?,
        ),
        None => Duration::from_secs(10),
    };
    let resource_attributes = resource_attributes(get)?;
    // OTEL_SERVICE_NAME, then service.name in OTEL_RESOURCE_ATTRIBUTES, then the component's.
    let service_name = get("OTEL_SERVICE_NAME")
        .or_else(|| {
            resource_attributes
                .iter()
                .find(|(k, _)| k == "service.name")
                .map(|(_, v)| v.clone())
        })
        .unwrap_or_else(|| default_service_name.to_owned());
    Ok(TracingConfig {
        enabled: enabled && !sdk_disabled,
        service_name,
        exporters: list(
            get,
            "OTEL_TRACES_EXPORTER",
            "otlp",
            "otlp, console, none",
            |v| match v {
                "otlp" => Some(ExporterKind::Otlp),
                "console" => Some(ExporterKind::Console),
                _ => None,
            },
        )?,
        protocol,
        endpoint,
        export_timeout,
        sampler: sampler(get)?,
        propagators: list(
            get,
            "OTEL_PROPAGATORS",
            "tracecontext,baggage",
            "tracecontext, baggage, none",
            |v| match v {
                "tracecontext" => Some(PropagatorKind::TraceContext),
                "baggage" => Some(PropagatorKind::Baggage),
                _ => None,
            },
        )?,
        resource_attributes,
        always_sample: always_sample(get)?,
    })
}

fn endpoint(
    get: &dyn Fn(&str) -> Option<String>,
    protocol: Protocol,
) -> Result<String, ConfigError> {
    if let Some(url) = get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
        return with_scheme("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", &url);
    }
    let default = match protocol {
        Protocol::Grpc => "localhost:4317",
        Protocol::HttpProtobuf => "localhost:4318",
    };
    let base = get("OTEL_EXPORTER_OTLP_ENDPOINT").unwrap_or_else(|| default.to_owned());
    let base = with_scheme("OTEL_EXPORTER_OTLP_ENDPOINT", &base)?;
    Ok(match protocol {
        Protocol::Grpc => base,
        Protocol::HttpProtobuf => format!("{}/v1/traces", base.trim_end_matches('/')),
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

fn sampler(get: &dyn Fn(&str) -> Option<String>) -> Result<SamplerConfig, ConfigError> {
    let name = get("OTEL_TRACES_SAMPLER").unwrap_or_else(|| "parentbased_traceidratio".to_owned());
    let ratio = || -> Result<f64, ConfigError> {
        match get("OTEL_TRACES_SAMPLER_ARG") {
            None => Ok(1.0),
            Some(v) => v
                .parse::<f64>()
                .ok()
                .filter(|r| (0.0..=1.0).contains(r))
                .ok_or_else(|| invalid("OTEL_TRACES_SAMPLER_ARG", &v, "a ratio from 0.0 to 1.0")),
        }
    };
    Ok(match name.as_str() {
        "always_on" => SamplerConfig::AlwaysOn,
        "always_off" => SamplerConfig::AlwaysOff,
        "traceidratio" => SamplerConfig::TraceIdRatio(ratio()?),
        "parentbased_always_on" => SamplerConfig::ParentBasedAlwaysOn,
        "parentbased_always_off" => SamplerConfig::ParentBasedAlwaysOff,
        "parentbased_traceidratio" => SamplerConfig::ParentBasedTraceIdRatio(ratio()?),
        other => {
            return Err(invalid(
                "OTEL_TRACES_SAMPLER",
                other,
                "always_on, always_off, traceidratio, parentbased_always_on, \
                 parentbased_always_off, parentbased_traceidratio",
            ));
        }
    })
}

/// `key=value` pairs separated by commas; keys and values percent-decoded (W3C Baggage
/// octet rules, as the OpenTelemetry resource SDK specifies).
fn resource_attributes(
    get: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<(String, String)>, ConfigError> {
    let Some(raw) = get("OTEL_RESOURCE_ATTRIBUTES") else {
        return Ok(Vec::new());
    };
    let allowed = "comma-separated key=value pairs, percent-encoded";
    raw.split(',')
        .filter(|pair| !pair.trim().is_empty())
        .map(|pair| {
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| invalid("OTEL_RESOURCE_ATTRIBUTES", &raw, allowed))?;
            let decode = |s: &str| {
                percent_encoding::percent_decode_str(s.trim())
                    .decode_utf8()
                    .map(|d| d.into_owned())
                    .map_err(|_| invalid("OTEL_RESOURCE_ATTRIBUTES", &raw, allowed))
            };
            let key = decode(key)?;
            if key.is_empty() {
                return Err(invalid("OTEL_RESOURCE_ATTRIBUTES", &raw, allowed));
            }
            Ok((key, decode(value)?))
        })
        .collect()
}

fn always_sample(get: &dyn Fn(&str) -> Option<String>) -> Result<AlwaysSampleConfig, ConfigError> {
    let errors = match get("HYPERFLEET_TRACING_ALWAYS_SAMPLE_ERRORS") {
        Some(v) => boolean("HYPERFLEET_TRACING_ALWAYS_SAMPLE_ERRORS", &v)?,
        None => true,
    };
    let slow_threshold = match get("HYPERFLEET_TRACING_SLOW_THRESHOLD_MS") {
        Some(v) => Some(Duration::from_millis(v.parse::<u64>().map_err(|_| {
            invalid(
                "HYPERFLEET_TRACING_SLOW_THRESHOLD_MS",
                &v,
                "a whole number of milliseconds",
            )
        })?)),
        None => None,
    };
    let resources = get("HYPERFLEET_TRACING_ALWAYS_SAMPLE_RESOURCES")
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    Ok(AlwaysSampleConfig {
        errors,
        slow_threshold,
        resources,
    })
}

fn log_config(get: &dyn Fn(&str) -> Option<String>) -> Result<LogConfig, ConfigError> {
    let lower = |k: &str| get(k).map(|v| v.to_ascii_lowercase());
    Ok(LogConfig {
        level: match lower("HYPERFLEET_LOG_LEVEL").as_deref() {
            None | Some("info") => LogLevel::Info,
            Some("debug") => LogLevel::Debug,
            Some("warn") => LogLevel::Warn,
            Some("error") => LogLevel::Error,
            Some(other) => {
                return Err(invalid(
                    "HYPERFLEET_LOG_LEVEL",
                    other,
                    "debug, info, warn, error",
                ));
            }
        },
        format: match lower("HYPERFLEET_LOG_FORMAT").as_deref() {
            None | Some("json") => LogFormat::Json,
            Some("text") => LogFormat::Text,
            Some(other) => return Err(invalid("HYPERFLEET_LOG_FORMAT", other, "text, json")),
        },
        output: match lower("HYPERFLEET_LOG_OUTPUT").as_deref() {
            None | Some("stdout") => LogOutput::Stdout,
            Some("stderr") => LogOutput::Stderr,
            Some(other) => return Err(invalid("HYPERFLEET_LOG_OUTPUT", other, "stdout, stderr")),
        },
    })
}

/// A comma-separated list where `none` alone means "empty".
fn list<T: PartialEq>(
    get: &dyn Fn(&str) -> Option<String>,
    variable: &'static str,
    default: &str,
    allowed: &'static str,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<Vec<T>, ConfigError> {
    let raw = get(variable).unwrap_or_else(|| default.to_owned());
    let names: Vec<String> = raw
        .split(',')
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect();
    if names == ["none"] {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for name in &names {
        let item = parse(name).ok_or_else(|| invalid(variable, &raw, allowed))?;
        if !out.contains(&item) {
            out.push(item);
        }
    }
    Ok(out)
}

fn boolean(variable: &'static str, value: &str) -> Result<bool, ConfigError> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(invalid(variable, value, "true, false")),
    }
}

fn invalid(variable: &'static str, value: &str, allowed: &'static str) -> ConfigError {
    ConfigError {
        variable,
        value: value.to_owned(),
        allowed,
    }
}
