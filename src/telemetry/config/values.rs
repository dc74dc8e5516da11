//! Reading values: enumerations by their accepted spellings, booleans, durations, lists, and
//! the error that names the variable, the value and what is allowed.

use super::*;

pub(super) const LOG_LEVELS: Table<LogLevel> = &[
    ("debug", LogLevel::Debug),
    ("info", LogLevel::Info),
    ("warn", LogLevel::Warn),
    ("error", LogLevel::Error),
];
pub(super) const LOG_FORMATS: Table<LogFormat> =
    &[("text", LogFormat::Text), ("json", LogFormat::Json)];
pub(super) const LOG_OUTPUTS: Table<LogOutput> =
    &[("stdout", LogOutput::Stdout), ("stderr", LogOutput::Stderr)];
pub(super) const PROTOCOLS: Table<Protocol> = &[
    ("grpc", Protocol::Grpc),
    ("http/protobuf", Protocol::HttpProtobuf),
];
pub(super) const EXPORTERS: Table<ExporterKind> = &[
    ("otlp", ExporterKind::Otlp),
    ("console", ExporterKind::Console),
];
pub(super) const METRICS_EXPORTERS: Table<MetricsExporterKind> = &[
    ("otlp", MetricsExporterKind::Otlp),
    ("prometheus", MetricsExporterKind::Prometheus),
    ("console", MetricsExporterKind::Console),
];
pub(super) const PROPAGATORS: Table<PropagatorKind> = &[
    ("tracecontext", PropagatorKind::TraceContext),
    ("baggage", PropagatorKind::Baggage),
];

/// The accepted spellings of an enumerated value, each with what it means. Values are read
/// ignoring ASCII case, as the OpenTelemetry specification asks of enumerations.
pub(super) type Table<T> = &'static [(&'static str, T)];

/// Booleans as the OpenTelemetry specification and common practice spell them.
pub(super) const BOOLEANS: Table<bool> = &[
    ("true", true),
    ("false", false),
    ("1", true),
    ("0", false),
    ("yes", true),
    ("no", false),
    ("on", true),
    ("off", false),
];

pub(super) fn lookup<T: Copy>(table: Table<T>, value: &str) -> Option<T> {
    table
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(value))
        .map(|(_, meaning)| *meaning)
}

/// Every spelling `table` accepts, and `extra` after them: exactly what the error lists.
pub(super) fn accepted<T>(table: Table<T>, extra: &[&str]) -> String {
    let names: Vec<&str> = table
        .iter()
        .map(|(name, _)| *name)
        .chain(extra.iter().copied())
        .collect();
    names.join(", ")
}

/// `variable` read through `table`; `default` when unset.
pub(super) fn enumeration<T: Copy>(
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

pub(super) fn boolean(
    get: &dyn Fn(&str) -> Option<String>,
    variable: &'static str,
    default: bool,
) -> Result<bool, ConfigError> {
    enumeration(get, variable, BOOLEANS, default)
}

/// A whole number of milliseconds; `None` when unset.
pub(super) fn millis(
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
pub(super) fn list<T: Copy + PartialEq>(
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

pub(super) fn invalid(
    variable: &'static str,
    value: &str,
    allowed: impl Into<String>,
) -> ConfigError {
    ConfigError {
        variable,
        value: value.to_owned(),
        allowed: allowed.into(),
    }
}
