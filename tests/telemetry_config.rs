//! The standard's variables: defaults, every accepted value, and errors that name the
//! variable, the value and the allowed values.

use hyperfleet_tracing::telemetry::config::{
    Config, ExporterKind, LogFormat, LogLevel, LogOutput, MetricsExporterKind, PropagatorKind,
    Protocol, SamplerConfig,
};
use std::collections::HashMap;
use std::time::Duration;

fn config(vars: &[(&str, &str)]) -> Result<Config, hyperfleet_tracing::telemetry::ConfigError> {
    let vars: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).into(), (*v).into()))
        .collect();
    Config::from_lookup("hyperfleet-adapter-validation", |k| vars.get(k).cloned())
}

#[test]
fn defaults_follow_the_standard() {
    let c = config(&[]).unwrap();
    let t = &c.tracing;
    assert!(t.enabled);
    assert_eq!(t.service_name, "hyperfleet-adapter-validation");
    assert_eq!(t.protocol, Protocol::Grpc);
    assert_eq!(t.endpoint, "http://localhost:4317");
    assert_eq!(t.sampler, SamplerConfig::ParentBasedTraceIdRatio(1.0));
    assert_eq!(
        t.propagators,
        vec![PropagatorKind::TraceContext, PropagatorKind::Baggage]
    );
    assert_eq!(t.exporters, vec![ExporterKind::Otlp]);
    assert!(t.resource_attributes.is_empty());
    assert!(t.always_sample.errors);
    assert_eq!(t.always_sample.slow_threshold, None);
    assert_eq!(c.logging.level, LogLevel::Info);
    assert_eq!(c.logging.format, LogFormat::Json);
    assert_eq!(c.logging.output, LogOutput::Stdout);
}

#[test]
fn endpoints_with_and_without_scheme() {
    let endpoint = |vars: &[(&str, &str)]| config(vars).unwrap().tracing.endpoint;
    assert_eq!(
        endpoint(&[(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "otel-collector.observability.svc:4317"
        )]),
        "http://otel-collector.observability.svc:4317"
    );
    assert_eq!(
        endpoint(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "https://collector:4317")]),
        "https://collector:4317"
    );
    assert_eq!(
        endpoint(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")]),
        "http://localhost:4318/v1/traces"
    );
    assert_eq!(
        endpoint(&[
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318/")
        ]),
        "http://c:4318/v1/traces"
    );
    assert_eq!(
        endpoint(&[
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://c:9/custom")
        ]),
        "http://c:9/custom"
    );
}

#[test]
fn every_sampler_name() {
    let sampler = |name: &str, arg: Option<&str>| {
        let mut vars = vec![("OTEL_TRACES_SAMPLER", name)];
        vars.extend(arg.map(|a| ("OTEL_TRACES_SAMPLER_ARG", a)));
        config(&vars).unwrap().tracing.sampler
    };
    assert_eq!(sampler("always_on", None), SamplerConfig::AlwaysOn);
    assert_eq!(sampler("always_off", None), SamplerConfig::AlwaysOff);
    assert_eq!(
        sampler("traceidratio", Some("0.1")),
        SamplerConfig::TraceIdRatio(0.1)
    );
    assert_eq!(
        sampler("parentbased_always_on", None),
        SamplerConfig::ParentBasedAlwaysOn
    );
    assert_eq!(
        sampler("parentbased_always_off", None),
        SamplerConfig::ParentBasedAlwaysOff
    );
    assert_eq!(
        sampler("parentbased_traceidratio", Some("0.01")),
        SamplerConfig::ParentBasedTraceIdRatio(0.01)
    );
    assert_eq!(
        sampler("parentbased_traceidratio", None),
        SamplerConfig::ParentBasedTraceIdRatio(1.0)
    );
}

#[test]
fn switches_and_which_wins() {
    let enabled = |vars: &[(&str, &str)]| config(vars).unwrap().tracing.enabled;
    assert!(!enabled(&[("TRACING_ENABLED", "false")]));
    assert!(!enabled(&[("HYPERFLEET_TRACING_ENABLED", "false")]));
    assert!(
        enabled(&[
            ("TRACING_ENABLED", "false"),
            ("HYPERFLEET_TRACING_ENABLED", "true")
        ]),
        "the newer name wins"
    );
    assert!(!enabled(&[
        ("TRACING_ENABLED", "true"),
        ("HYPERFLEET_TRACING_ENABLED", "false")
    ]));
    assert!(!enabled(&[("OTEL_SDK_DISABLED", "true")]));
    assert!(!enabled(&[
        ("OTEL_SDK_DISABLED", "TRUE"),
        ("TRACING_ENABLED", "true")
    ]));
}

#[test]
fn lists_and_none() {
    let c = config(&[
        ("OTEL_PROPAGATORS", "none"),
        ("OTEL_TRACES_EXPORTER", "none"),
    ])
    .unwrap();
    assert!(c.tracing.propagators.is_empty());
    assert!(c.tracing.exporters.is_empty());
    let c = config(&[
        ("OTEL_PROPAGATORS", "baggage"),
        ("OTEL_TRACES_EXPORTER", "console,otlp"),
    ])
    .unwrap();
    assert_eq!(c.tracing.propagators, vec![PropagatorKind::Baggage]);
    assert_eq!(
        c.tracing.exporters,
        vec![ExporterKind::Console, ExporterKind::Otlp]
    );
}

#[test]
fn resource_attributes_are_percent_decoded_and_service_name_resolved() {
    let c = config(&[(
        "OTEL_RESOURCE_ATTRIBUTES",
        "service.version=v1.2.3,deployment.environment=production, k8s.namespace.name=hyper%2Cfleet%20x,service.name=from-resource",
    )])
    .unwrap();
    assert_eq!(
        c.tracing.resource_attributes,
        vec![
            ("service.version".to_owned(), "v1.2.3".to_owned()),
            ("deployment.environment".to_owned(), "production".to_owned()),
            ("k8s.namespace.name".to_owned(), "hyper,fleet x".to_owned()),
            ("service.name".to_owned(), "from-resource".to_owned()),
        ]
    );
    assert_eq!(c.tracing.service_name, "from-resource");
    let c = config(&[
        ("OTEL_RESOURCE_ATTRIBUTES", "service.name=from-resource"),
        ("OTEL_SERVICE_NAME", "explicit"),
    ])
    .unwrap();
    assert_eq!(c.tracing.service_name, "explicit", "OTEL_SERVICE_NAME wins");
}

#[test]
fn always_sample_and_logging_variables() {
    let c = config(&[
        ("HYPERFLEET_TRACING_ALWAYS_SAMPLE_ERRORS", "false"),
        ("HYPERFLEET_TRACING_SLOW_THRESHOLD_MS", "250"),
        ("HYPERFLEET_TRACING_ALWAYS_SAMPLE_RESOURCES", "c1, c2,"),
        ("HYPERFLEET_LOG_LEVEL", "WARN"),
        ("HYPERFLEET_LOG_FORMAT", "text"),
        ("HYPERFLEET_LOG_OUTPUT", "stderr"),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "1500"),
    ])
    .unwrap();
    let rules = &c.tracing.always_sample;
    assert!(!rules.errors);
    assert_eq!(rules.slow_threshold, Some(Duration::from_millis(250)));
    assert_eq!(rules.resources, vec!["c1".to_owned(), "c2".to_owned()]);
    assert_eq!(c.tracing.export_timeout, Duration::from_millis(1500));
    assert_eq!(c.logging.level, LogLevel::Warn);
    assert_eq!(c.logging.format, LogFormat::Text);
    assert_eq!(c.logging.output, LogOutput::Stderr);
}

#[test]
fn invalid_values_are_errors_that_say_what_is_allowed() {
    for (variable, value, allowed_mentions) in [
        (
            "OTEL_TRACES_SAMPLER",
            "jaeger_remote",
            "parentbased_traceidratio",
        ),
        ("OTEL_TRACES_SAMPLER_ARG", "1.5", "0.0 to 1.0"),
        ("OTEL_TRACES_SAMPLER_ARG", "-0.1", "0.0 to 1.0"),
        ("OTEL_TRACES_SAMPLER_ARG", "half", "0.0 to 1.0"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json", "http/protobuf"),
        (
            "OTEL_PROPAGATORS",
            "tracecontext,b3",
            "tracecontext, baggage, none",
        ),
        ("OTEL_TRACES_EXPORTER", "zipkin", "otlp, console, none"),
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "grpc://collector:4317",
            "http://",
        ),
        ("OTEL_RESOURCE_ATTRIBUTES", "novalue", "key=value"),
        ("OTEL_RESOURCE_ATTRIBUTES", "k=%FF", "key=value"),
        ("TRACING_ENABLED", "maybe", "true, false"),
        ("HYPERFLEET_TRACING_ENABLED", "2", "true, false"),
        ("OTEL_SDK_DISABLED", "nope", "true, false"),
        ("HYPERFLEET_TRACING_SLOW_THRESHOLD_MS", "1s", "milliseconds"),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "ten", "milliseconds"),
        (
            "HYPERFLEET_LOG_LEVEL",
            "verbose",
            "debug, info, warn, error",
        ),
        ("HYPERFLEET_LOG_FORMAT", "xml", "text, json"),
        ("HYPERFLEET_LOG_OUTPUT", "file", "stdout, stderr"),
        (
            "OTEL_METRICS_EXPORTER",
            "statsd",
            "otlp, prometheus, console, none",
        ),
        ("OTEL_EXPORTER_PROMETHEUS_PORT", "70000", "0 to 65535"),
        ("OTEL_METRIC_EXPORT_INTERVAL", "1m", "milliseconds"),
        (
            "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
            "http/json",
            "http/protobuf",
        ),
    ] {
        let mut vars = vec![(variable, value)];
        if variable == "OTEL_TRACES_SAMPLER_ARG" {
            vars.push(("OTEL_TRACES_SAMPLER", "traceidratio"));
        }
        let error = config(&vars).expect_err(&format!("{variable}={value} accepted"));
        assert_eq!(error.variable, variable);
        let text = error.to_string();
        assert!(
            text.contains(variable) && text.contains(value) && text.contains(allowed_mentions),
            "{text}"
        );
    }
}

#[test]
fn every_value_an_error_lists_is_accepted() {
    for variable in [
        "TRACING_ENABLED",
        "HYPERFLEET_TRACING_ENABLED",
        "OTEL_SDK_DISABLED",
        "HYPERFLEET_TRACING_ALWAYS_SAMPLE_ERRORS",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
        "OTEL_TRACES_SAMPLER",
        "OTEL_PROPAGATORS",
        "OTEL_TRACES_EXPORTER",
        "OTEL_METRICS_EXPORTER",
        "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
        "HYPERFLEET_LOG_LEVEL",
        "HYPERFLEET_LOG_FORMAT",
        "HYPERFLEET_LOG_OUTPUT",
    ] {
        let error = config(&[(variable, "not-a-value")]).expect_err(variable);
        let listed: Vec<&str> = error.allowed.split(", ").collect();
        assert!(listed.len() >= 2, "{variable}: {}", error.allowed);
        for value in listed {
            assert!(
                config(&[(variable, value)]).is_ok(),
                "{variable}={value} is listed as allowed but refused"
            );
            let upper = value.to_ascii_uppercase();
            assert!(
                config(&[(variable, &upper)]).is_ok(),
                "{variable}={upper}: enumerations are case-insensitive"
            );
        }
    }
    let error = config(&[("TRACING_ENABLED", "maybe")]).unwrap_err();
    assert_eq!(error.allowed, "true, false, 1, 0, yes, no, on, off");
}

#[test]
fn metrics_variables_defaults_and_which_wins() {
    let m = config(&[]).unwrap().metrics;
    assert!(m.enabled);
    assert_eq!(m.exporters, vec![MetricsExporterKind::Otlp]);
    assert_eq!(
        (m.prometheus_host.as_str(), m.prometheus_port),
        ("localhost", 9090)
    );
    assert_eq!(m.protocol, Protocol::Grpc);
    assert_eq!(m.endpoint, "http://localhost:4317");
    assert_eq!(m.export_interval, Duration::from_secs(60));
    assert_eq!(m.export_timeout, Duration::from_secs(10));

    let m = config(&[
        ("OTEL_METRICS_EXPORTER", "prometheus,otlp,console"),
        ("OTEL_EXPORTER_PROMETHEUS_HOST", "0.0.0.0"),
        ("OTEL_EXPORTER_PROMETHEUS_PORT", "9464"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "http/protobuf"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318"),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "3000"),
        ("OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", "1500"),
        ("OTEL_METRIC_EXPORT_INTERVAL", "15000"),
    ])
    .unwrap()
    .metrics;
    assert_eq!(
        m.exporters,
        vec![
            MetricsExporterKind::Prometheus,
            MetricsExporterKind::Otlp,
            MetricsExporterKind::Console
        ]
    );
    assert_eq!(
        (m.prometheus_host.as_str(), m.prometheus_port),
        ("0.0.0.0", 9464)
    );
    assert_eq!(m.protocol, Protocol::HttpProtobuf);
    assert_eq!(m.endpoint, "http://collector:4318/v1/metrics");
    assert_eq!(m.export_timeout, Duration::from_millis(1500));
    assert_eq!(m.export_interval, Duration::from_secs(15));

    let c = config(&[
        (
            "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
            "https://metrics.example:443/v1/metrics",
        ),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4317"),
    ])
    .unwrap();
    assert_eq!(c.metrics.endpoint, "https://metrics.example:443/v1/metrics");
    assert_eq!(c.tracing.endpoint, "http://collector:4317");

    // Metrics are not tracing: only the SDK switch turns them off.
    assert!(
        config(&[("TRACING_ENABLED", "false")])
            .unwrap()
            .metrics
            .enabled
    );
    assert!(
        config(&[("HYPERFLEET_TRACING_ENABLED", "false")])
            .unwrap()
            .metrics
            .enabled
    );
    assert!(
        !config(&[("OTEL_SDK_DISABLED", "true")])
            .unwrap()
            .metrics
            .enabled
    );
    assert!(
        config(&[("OTEL_METRICS_EXPORTER", "none")])
            .unwrap()
            .metrics
            .exporters
            .is_empty()
    );
}

#[test]
fn unsampled_parents_are_followed_only_where_no_sampler_or_rule_could_keep_their_children() {
    use hyperfleet_tracing::settings::UnsampledParent::{AskSampler, Follow};
    let unsampled = |vars: &[(&str, &str)]| config(vars).unwrap().unsampled_parent();
    let no_errors = ("HYPERFLEET_TRACING_ALWAYS_SAMPLE_ERRORS", "false");
    // The errors rule is on by default: it records dropped spans to keep the failed ones.
    assert_eq!(unsampled(&[]), AskSampler);
    assert_eq!(unsampled(&[no_errors]), Follow);
    let ratio = ("OTEL_TRACES_SAMPLER", "traceidratio");
    assert_eq!(unsampled(&[no_errors, ratio]), AskSampler);
    let always_on = ("OTEL_TRACES_SAMPLER", "parentbased_always_on");
    assert_eq!(unsampled(&[no_errors, always_on]), Follow);
    let resources = ("HYPERFLEET_TRACING_ALWAYS_SAMPLE_RESOURCES", "c1");
    assert_eq!(unsampled(&[no_errors, resources]), AskSampler);
    let slow = ("HYPERFLEET_TRACING_SLOW_THRESHOLD_MS", "5000");
    assert_eq!(unsampled(&[no_errors, slow]), AskSampler);
}
