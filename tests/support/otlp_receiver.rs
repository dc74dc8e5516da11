//! A real OTLP receiver for tests: the OTLP/gRPC trace service (tonic, the generated
//! OpenTelemetry protocol service) and OTLP/HTTP protobuf at `/v1/traces`, on loopback ports.
//! It keeps whole requests, so resource attributes can be checked. It takes metrics too
//! (gRPC and `/v1/metrics`).

use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::metrics::v1::metric::Data as MetricData;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// One received span with its resource.
#[derive(Debug, Clone)]
pub struct ReceivedSpan {
    pub resource: BTreeMap<String, String>,
    pub span: Span,
}

impl ReceivedSpan {
    pub fn attribute(&self, key: &str) -> Option<String> {
        attributes(&self.span.attributes).remove(key)
    }
    pub fn trace_id(&self) -> String {
        hex(&self.span.trace_id)
    }
    pub fn span_id(&self) -> String {
        hex(&self.span.span_id)
    }
    pub fn parent_span_id(&self) -> String {
        hex(&self.span.parent_span_id)
    }
}

#[derive(Clone, Default)]
struct Store {
    spans: Arc<Mutex<Vec<ReceivedSpan>>>,
    metrics: Arc<Mutex<Vec<ExportMetricsServiceRequest>>>,
    /// The headers (gRPC metadata) of each metrics request.
    metrics_headers: Arc<Mutex<Vec<BTreeMap<String, String>>>>,
    arrived: Arc<Notify>,
}

impl Store {
    fn keep(&self, request: ExportTraceServiceRequest) {
        let mut spans = self.spans.lock().unwrap();
        for resource_spans in request.resource_spans {
            let resource = resource_spans
                .resource
                .map(|r| attributes(&r.attributes))
                .unwrap_or_default();
            for scope_spans in resource_spans.scope_spans {
                for span in scope_spans.spans {
                    spans.push(ReceivedSpan {
                        resource: resource.clone(),
                        span,
                    });
                }
            }
        }
        self.arrived.notify_waiters();
    }

    fn keep_metrics(
        &self,
        request: ExportMetricsServiceRequest,
        headers: impl Iterator<Item = (String, String)>,
    ) {
        self.metrics_headers.lock().unwrap().push(headers.collect());
        self.metrics.lock().unwrap().push(request);
        self.arrived.notify_waiters();
    }
}

struct Grpc(Store);

#[tonic::async_trait]
impl MetricsService for Grpc {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        let headers: Vec<(String, String)> = request
            .metadata()
            .iter()
            .filter_map(|entry| match entry {
                tonic::metadata::KeyAndValueRef::Ascii(k, v) => {
                    Some((k.to_string(), v.to_str().ok()?.to_owned()))
                }
                tonic::metadata::KeyAndValueRef::Binary(..) => None,
            })
            .collect();
        self.0
            .keep_metrics(request.into_inner(), headers.into_iter());
        Ok(tonic::Response::new(ExportMetricsServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl TraceService for Grpc {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.0.keep(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

pub struct OtlpReceiver {
    pub grpc_address: String,
    pub http_address: String,
    store: Store,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl OtlpReceiver {
    /// Starts both listeners on free loopback ports.
    pub async fn start() -> Self {
        let store = Store::default();
        let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let grpc_address = grpc.local_addr().unwrap().to_string();
        let http_address = http.local_addr().unwrap().to_string();
        let service = TraceServiceServer::new(Grpc(store.clone()));
        let metrics_service = MetricsServiceServer::new(Grpc(store.clone()));
        let grpc_task = tokio::spawn(async move {
            let _ = tonic::transport::Server::builder()
                .add_service(service)
                .add_service(metrics_service)
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(grpc))
                .await;
        });
        let http_store = store.clone();
        let app = axum::Router::new().route(
            "/v1/traces",
            axum::routing::post(move |body: axum::body::Bytes| {
                let store = http_store.clone();
                async move {
                    match ExportTraceServiceRequest::decode(body) {
                        Ok(request) => {
                            store.keep(request);
                            (
                                axum::http::StatusCode::OK,
                                [("content-type", "application/x-protobuf")],
                                ExportTraceServiceResponse::default().encode_to_vec(),
                            )
                        }
                        Err(_) => (
                            axum::http::StatusCode::BAD_REQUEST,
                            [("content-type", "text/plain")],
                            b"not an ExportTraceServiceRequest".to_vec(),
                        ),
                    }
                }
            }),
        );
        let metrics_store = store.clone();
        let app = app.route(
            "/v1/metrics",
            axum::routing::post(
                move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                    let store = metrics_store.clone();
                    async move {
                        match ExportMetricsServiceRequest::decode(body) {
                            Ok(request) => {
                                let headers = headers.iter().filter_map(|(k, v)| {
                                    Some((k.to_string(), v.to_str().ok()?.to_owned()))
                                });
                                store.keep_metrics(request, headers);
                                (
                                    axum::http::StatusCode::OK,
                                    ExportMetricsServiceResponse::default().encode_to_vec(),
                                )
                            }
                            Err(_) => (axum::http::StatusCode::BAD_REQUEST, Vec::new()),
                        }
                    }
                },
            ),
        );
        let http_task = tokio::spawn(async move {
            let _ = axum::serve(http, app).await;
        });
        Self {
            grpc_address,
            http_address,
            store,
            tasks: vec![grpc_task, http_task],
        }
    }

    /// The spans received so far.
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        self.store.spans.lock().unwrap().clone()
    }

    /// Waits until at least `count` spans arrived (bounded by `timeout`).
    pub async fn wait_for(&self, count: usize, timeout: std::time::Duration) -> Vec<ReceivedSpan> {
        let wait = async {
            loop {
                let arrived = self.store.arrived.notified();
                tokio::pin!(arrived);
                arrived.as_mut().enable();
                if self.store.spans.lock().unwrap().len() >= count {
                    return;
                }
                arrived.await;
            }
        };
        let _ = tokio::time::timeout(timeout, wait).await;
        self.spans()
    }
}

/// One exported data point of a metric: its resource, attributes and value (a sum's value,
/// a histogram's count).
#[derive(Debug, Clone)]
pub struct ReceivedPoint {
    pub resource: BTreeMap<String, String>,
    pub attributes: BTreeMap<String, String>,
    pub value: f64,
    pub bounds: Vec<f64>,
    /// A histogram point's exemplars.
    pub exemplars: Vec<ReceivedExemplar>,
}

/// One exemplar of a histogram data point.
#[derive(Debug, Clone)]
pub struct ReceivedExemplar {
    pub trace_id: String,
    pub span_id: String,
    pub value: f64,
}

impl OtlpReceiver {
    /// The points of metric `name` in the latest export that has it.
    pub fn metric(&self, name: &str) -> Vec<ReceivedPoint> {
        let requests = self.store.metrics.lock().unwrap();
        for request in requests.iter().rev() {
            let mut points = Vec::new();
            for resource_metrics in &request.resource_metrics {
                let resource = resource_metrics
                    .resource
                    .as_ref()
                    .map(|r| attributes(&r.attributes))
                    .unwrap_or_default();
                let metrics = resource_metrics
                    .scope_metrics
                    .iter()
                    .flat_map(|s| &s.metrics)
                    .filter(|m| m.name == name);
                for metric in metrics {
                    match &metric.data {
                        Some(MetricData::Sum(sum)) => {
                            points.extend(sum.data_points.iter().map(|p| ReceivedPoint {
                                resource: resource.clone(),
                                attributes: attributes(&p.attributes),
                                value: match p.value {
                                    Some(opentelemetry_proto::tonic::metrics::v1::number_data_point::Value::AsInt(i)) => i as f64,
                                    Some(opentelemetry_proto::tonic::metrics::v1::number_data_point::Value::AsDouble(d)) => d,
                                    None => 0.0,
                                },
                                bounds: Vec::new(),
                                exemplars: Vec::new(),
                            }))
                        }
                        Some(MetricData::Histogram(h)) => {
                            points.extend(h.data_points.iter().map(|p| ReceivedPoint {
                                resource: resource.clone(),
                                attributes: attributes(&p.attributes),
                                value: p.count as f64,
                                bounds: p.explicit_bounds.clone(),
                                exemplars: p.exemplars.iter().map(|e| ReceivedExemplar {
                                    trace_id: hex(&e.trace_id),
                                    span_id: hex(&e.span_id),
                                    value: match e.value {
                                        Some(opentelemetry_proto::tonic::metrics::v1::exemplar::Value::AsDouble(d)) => d,
                                        Some(opentelemetry_proto::tonic::metrics::v1::exemplar::Value::AsInt(i)) => i as f64,
                                        None => f64::NAN,
                                    },
                                }).collect(),
                            }))
                        }
                        other => panic!("{name}: unexpected data {other:?}"),
                    }
                }
            }
            if !points.is_empty() {
                return points;
            }
        }
        Vec::new()
    }

    /// The headers (gRPC metadata) of every metrics request so far.
    pub fn metrics_headers(&self) -> Vec<BTreeMap<String, String>> {
        self.store.metrics_headers.lock().unwrap().clone()
    }

    /// Waits until metric `name` was exported with a total of at least `value` (bounded).
    pub async fn wait_for_metric(
        &self,
        name: &str,
        value: f64,
        timeout: std::time::Duration,
    ) -> Vec<ReceivedPoint> {
        let wait = async {
            loop {
                let arrived = self.store.arrived.notified();
                tokio::pin!(arrived);
                arrived.as_mut().enable();
                if self.metric(name).iter().map(|p| p.value).sum::<f64>() >= value {
                    return;
                }
                arrived.await;
            }
        };
        let _ = tokio::time::timeout(timeout, wait).await;
        self.metric(name)
    }
}

impl Drop for OtlpReceiver {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

pub fn attributes(list: &[KeyValue]) -> BTreeMap<String, String> {
    list.iter()
        .map(|kv| {
            let value = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(AnyValue::StringValue(s)) => s.clone(),
                Some(AnyValue::IntValue(i)) => i.to_string(),
                Some(AnyValue::BoolValue(b)) => b.to_string(),
                Some(AnyValue::DoubleValue(d)) => d.to_string(),
                other => format!("{other:?}"),
            };
            (kv.key.clone(), value)
        })
        .collect()
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
