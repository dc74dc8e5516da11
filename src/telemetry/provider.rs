//! The tracer provider: sampler, exporters and resource, assembled from the configuration.

use super::config::{Config, ExporterKind, Protocol, SamplerConfig};
use super::sampling::{AlwaysSampleRules, TailRulesProcessor};
use super::{AddProcessor, TelemetryError};
use opentelemetry::KeyValue;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::resource::TelemetryResourceDetector;
use opentelemetry_sdk::trace::{BatchSpanProcessor, Sampler, SdkTracerProvider, SpanExporter};

pub(super) fn tracer_provider(
    config: &Config,
    version: &str,
    extra_processors: Vec<AddProcessor>,
) -> Result<SdkTracerProvider, TelemetryError> {
    let tracing = &config.tracing;
    let head = match tracing.sampler {
        SamplerConfig::AlwaysOn => Sampler::AlwaysOn,
        SamplerConfig::AlwaysOff => Sampler::AlwaysOff,
        SamplerConfig::TraceIdRatio(r) => Sampler::TraceIdRatioBased(r),
        SamplerConfig::ParentBasedAlwaysOn => Sampler::ParentBased(Box::new(Sampler::AlwaysOn)),
        SamplerConfig::ParentBasedAlwaysOff => Sampler::ParentBased(Box::new(Sampler::AlwaysOff)),
        SamplerConfig::ParentBasedTraceIdRatio(r) => {
            Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(r)))
        }
    };
    let rules = &tracing.always_sample;
    let sampler = AlwaysSampleRules::new(
        head,
        rules.resources.iter().cloned(),
        rules.records_dropped_spans(),
    );
    let mut builder = SdkTracerProvider::builder()
        .with_sampler(sampler)
        .with_resource(resource(config, version));
    for exporter in &tracing.exporters {
        builder = match exporter {
            ExporterKind::Otlp => builder.with_span_processor(with_rules(otlp(config)?, config)),
            ExporterKind::Console => builder.with_span_processor(with_rules(
                opentelemetry_stdout::SpanExporter::default(),
                config,
            )),
        };
    }
    for add in extra_processors {
        builder = add(builder);
    }
    Ok(builder.build())
}

fn with_rules<E: SpanExporter + 'static>(
    exporter: E,
    config: &Config,
) -> TailRulesProcessor<BatchSpanProcessor> {
    let rules = &config.tracing.always_sample;
    TailRulesProcessor::new(
        BatchSpanProcessor::builder(exporter).build(),
        rules.errors,
        rules.slow_threshold,
    )
}

fn otlp(config: &Config) -> Result<opentelemetry_otlp::SpanExporter, TelemetryError> {
    let tracing = &config.tracing;
    let built = match tracing.protocol {
        Protocol::Grpc => opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(&tracing.endpoint)
            .with_timeout(tracing.export_timeout)
            .build(),
        Protocol::HttpProtobuf => opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_endpoint(&tracing.endpoint)
            .with_timeout(tracing.export_timeout)
            .build(),
    };
    built.map_err(|source| TelemetryError::Exporter {
        endpoint: tracing.endpoint.clone(),
        source,
    })
}

/// `telemetry.sdk.*`, `OTEL_RESOURCE_ATTRIBUTES` (decoded), `host.name`, `service.version`
/// and the service name. Built from empty: the SDK's own environment detector would read
/// `OTEL_RESOURCE_ATTRIBUTES` again without percent-decoding.
pub(super) fn resource(config: &Config, version: &str) -> Resource {
    let tracing = &config.tracing;
    let given = |key: &str| tracing.resource_attributes.iter().any(|(k, _)| k == key);
    let mut attributes: Vec<KeyValue> = tracing
        .resource_attributes
        .iter()
        .map(|(k, v)| KeyValue::new(k.clone(), v.clone()))
        .collect();
    if !given("host.name") {
        attributes.push(KeyValue::new(
            "host.name",
            gethostname::gethostname().to_string_lossy().into_owned(),
        ));
    }
    if !given("service.version") && version != "unknown" {
        attributes.push(KeyValue::new("service.version", version.to_owned()));
    }
    Resource::builder_empty()
        .with_detector(Box::new(TelemetryResourceDetector))
        .with_attributes(attributes)
        .with_service_name(tracing.service_name.clone())
        .build()
}
