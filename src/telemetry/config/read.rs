//! Reading the variables: each part of the configuration from its variables, with the
//! standard's defaults.

use super::values::*;
use super::*;

pub(super) fn tracing_config(
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
pub(super) fn service_name(
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

pub(super) fn metrics_config(
    get: &dyn Fn(&str) -> Option<String>,
) -> Result<MetricsConfig, ConfigError> {
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
pub(super) const HEADERS_ALLOWED: &str = "comma-separated key=value pairs: header names and values";

/// The general headers, then the signal's (whose keys win): `key=value` pairs separated by
/// commas, values percent-decoded and trimmed, as the OpenTelemetry specification writes them.
/// An error names the variable and the key only: values are often credentials.
pub(super) fn headers(
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
pub(super) fn export_timeout(
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
pub(super) fn endpoint(
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
pub(super) fn with_scheme(variable: &'static str, value: &str) -> Result<String, ConfigError> {
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
pub(super) enum SamplerName {
    AlwaysOn,
    AlwaysOff,
    TraceIdRatio,
    ParentBasedAlwaysOn,
    ParentBasedAlwaysOff,
    ParentBasedTraceIdRatio,
}

pub(super) const SAMPLERS: Table<SamplerName> = &[
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

pub(super) fn sampler(get: &dyn Fn(&str) -> Option<String>) -> Result<SamplerConfig, ConfigError> {
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
pub(super) fn ratio(get: &dyn Fn(&str) -> Option<String>) -> Result<f64, ConfigError> {
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
pub(super) fn resource_attributes(
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

pub(super) fn always_sample(
    get: &dyn Fn(&str) -> Option<String>,
) -> Result<AlwaysSampleConfig, ConfigError> {
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

pub(super) fn log_config(get: &dyn Fn(&str) -> Option<String>) -> Result<LogConfig, ConfigError> {
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
