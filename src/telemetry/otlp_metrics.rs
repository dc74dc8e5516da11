//! The OTLP metric exporter: the SDK's data points as opentelemetry-proto converts them, plus
//! the exemplars the SDK does not record (the last sampled span of each histogram bucket, see
//! `crate::metrics::Exemplars`), sent over gRPC (tonic) or HTTP (protobuf).
//!
//! A failed export is not retried: the data points are cumulative, so the next export carries
//! everything the failed one did.

use super::TelemetryError;
use super::config::{MetricsConfig, Protocol};
use crate::metrics::{Exemplar, Exemplars, series_key};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{exemplar, metric};
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::metrics::Temporality;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use std::time::{Duration, UNIX_EPOCH};
use tonic::metadata::{MetadataKey, MetadataMap, MetadataValue};
use tonic::transport::Channel;

/// Sends the bootstrap's metrics, with exemplars, to an OTLP collector.
pub(super) struct OtlpMetricExporter {
    exemplars: Exemplars,
    sender: Sender,
}

enum Sender {
    Grpc {
        client: MetricsServiceClient<Channel>,
        metadata: MetadataMap,
    },
    Http {
        client: reqwest::blocking::Client,
        url: String,
        headers: reqwest::header::HeaderMap,
    },
}

impl std::fmt::Debug for OtlpMetricExporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OtlpMetricExporter")
    }
}

impl OtlpMetricExporter {
    /// An exporter to `settings.endpoint` that attaches what `exemplars` keeps. Over gRPC it
    /// connects lazily, from within a Tokio runtime.
    pub(super) fn new(
        settings: &MetricsConfig,
        exemplars: Exemplars,
    ) -> Result<Self, TelemetryError> {
        let failed =
            |source: Box<dyn std::error::Error + Send + Sync>| TelemetryError::MetricsExporter {
                endpoint: settings.endpoint.clone(),
                source,
            };
        let sender = match settings.protocol {
            Protocol::Grpc => {
                // tonic spawns the channel's worker on the current runtime: say so rather
                // than panic without one.
                if tokio::runtime::Handle::try_current().is_err() {
                    return Err(failed(
                        "OTLP over gRPC needs a Tokio runtime: build the telemetry inside one"
                            .into(),
                    ));
                }
                let channel = Channel::from_shared(settings.endpoint.clone())
                    .map_err(|e| failed(e.into()))?
                    .timeout(settings.export_timeout)
                    .connect_lazy();
                let mut metadata = MetadataMap::new();
                for (name, value) in settings.headers.iter() {
                    let name =
                        MetadataKey::from_bytes(name.as_bytes()).map_err(|e| failed(e.into()))?;
                    let value = MetadataValue::try_from(value).map_err(|e| failed(e.into()))?;
                    metadata.insert(name, value);
                }
                Sender::Grpc {
                    client: MetricsServiceClient::new(channel),
                    metadata,
                }
            }
            Protocol::HttpProtobuf => {
                let mut headers = reqwest::header::HeaderMap::new();
                for (name, value) in settings.headers.iter() {
                    let name = reqwest::header::HeaderName::from_bytes(name.as_bytes())
                        .map_err(|e| failed(e.into()))?;
                    let value = reqwest::header::HeaderValue::from_str(value)
                        .map_err(|e| failed(e.into()))?;
                    headers.insert(name, value);
                }
                Sender::Http {
                    client: blocking_client(settings.export_timeout).map_err(failed)?,
                    url: settings.endpoint.clone(),
                    headers,
                }
            }
        };
        Ok(Self { exemplars, sender })
    }

    /// The OTLP request of `metrics`, with the exemplars of every histogram data point.
    fn request(&self, metrics: &ResourceMetrics) -> ExportMetricsServiceRequest {
        let mut request = ExportMetricsServiceRequest::from(metrics);
        let metrics = request
            .resource_metrics
            .iter_mut()
            .flat_map(|r| &mut r.scope_metrics)
            .filter(|s| {
                s.scope
                    .as_ref()
                    .is_some_and(|scope| scope.name == crate::span::SCOPE_NAME)
            })
            .flat_map(|s| &mut s.metrics);
        for metric in metrics {
            let Some(metric::Data::Histogram(histogram)) = &mut metric.data else {
                continue;
            };
            for point in &mut histogram.data_points {
                let key = series_key(
                    point
                        .attributes
                        .iter()
                        .map(|kv| (kv.key.as_str(), text(kv))),
                );
                point.exemplars = self
                    .exemplars
                    .of(&metric.name, key)
                    .iter()
                    .map(to_proto)
                    .collect();
            }
        }
        request
    }
}

impl PushMetricExporter for OtlpMetricExporter {
    async fn export(&self, metrics: &ResourceMetrics) -> OTelSdkResult {
        let request = self.request(metrics);
        match &self.sender {
            Sender::Grpc { client, metadata } => {
                let mut call = tonic::Request::new(request);
                *call.metadata_mut() = metadata.clone();
                client
                    .clone()
                    .export(call)
                    .await
                    .map(drop)
                    // The code only: a collector's message may echo credentials.
                    .map_err(|status| failure(format!("gRPC status {:?}", status.code())))
            }
            Sender::Http {
                client,
                url,
                headers,
            } => {
                use prost::Message as _;
                let response = client
                    .post(url)
                    .headers(headers.clone())
                    .header(reqwest::header::CONTENT_TYPE, "application/x-protobuf")
                    .body(request.encode_to_vec())
                    .send()
                    .map_err(|e| failure(format!("HTTP request failed: {}", e.without_url())))?;
                let status = response.status();
                if status.is_success() {
                    Ok(())
                } else {
                    Err(failure(format!("HTTP status {status}")))
                }
            }
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }

    fn temporality(&self) -> Temporality {
        Temporality::Cumulative
    }
}

fn failure(message: String) -> OTelSdkError {
    OTelSdkError::InternalFailure(format!("OTLP metric export failed: {message}"))
}

/// A blocking HTTP client, built on a thread of its own: reqwest's blocking client must not be
/// built on a Tokio runtime's thread, where the bootstrap usually runs. Exports run on the
/// periodic reader's own thread.
fn blocking_client(
    timeout: Duration,
) -> Result<reqwest::blocking::Client, Box<dyn std::error::Error + Send + Sync>> {
    std::thread::spawn(move || {
        reqwest::blocking::Client::builder()
            .timeout(timeout)
            .build()
    })
    .join()
    .map_err(|_| "the HTTP client's builder panicked")?
    .map_err(Into::into)
}

/// An attribute value as the sinks' series keys spell it.
fn text(kv: &KeyValue) -> String {
    match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        _ => String::new(),
    }
}

fn to_proto(e: &Exemplar) -> opentelemetry_proto::tonic::metrics::v1::Exemplar {
    opentelemetry_proto::tonic::metrics::v1::Exemplar {
        filtered_attributes: Vec::new(),
        time_unix_nano: e
            .time
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
            .unwrap_or(0),
        span_id: e.span_id.to_vec(),
        trace_id: e.trace_id.to_vec(),
        value: Some(exemplar::Value::AsDouble(e.value)),
    }
}
