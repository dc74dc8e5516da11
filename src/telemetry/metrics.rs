//! The metric exporters of `OTEL_METRICS_EXPORTER`: an SDK meter provider with periodic OTLP
//! (with exemplars) and console readers, and a Prometheus registry served on `/metrics` from a thread of its
//! own, so that a busy or stalled application runtime does not stall scrapes.

use super::TelemetryError;
use super::config::{Config, MetricsExporterKind};
use super::otlp_metrics::OtlpMetricExporter;
use crate::metrics::{Exemplars, Metrics};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use prometheus_client::registry::Registry;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

/// The content type of the OpenMetrics text format.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The type a scraper names in `Accept` when it reads OpenMetrics (Prometheus does).
const OPENMETRICS_TYPE: &str = "application/openmetrics-text";

/// What the metric exporters need kept running.
#[derive(Default)]
pub(super) struct MetricsExport {
    pub(super) metrics: Metrics,
    pub(super) provider: Option<SdkMeterProvider>,
    pub(super) server: Option<MetricsServer>,
}

/// Sets up every exporter `config.metrics` names; the HyperFleet metrics are labelled
/// `component` and `version`.
pub(super) fn export(
    config: &Config,
    resource: Resource,
    component: &str,
    version: &str,
) -> Result<MetricsExport, TelemetryError> {
    let settings = &config.metrics;
    if !settings.enabled || settings.exporters.is_empty() {
        return Ok(MetricsExport::default());
    }
    let mut builder = Metrics::builder().component(component).version(version);
    let mut provider = SdkMeterProvider::builder().with_resource(resource);
    let mut readers = 0;
    let mut server = None;
    let exemplars = Exemplars::default();
    for exporter in &settings.exporters {
        match exporter {
            MetricsExporterKind::Otlp => {
                let exporter = OtlpMetricExporter::new(settings, exemplars.clone())?;
                provider = provider.with_reader(periodic(exporter, settings.export_interval));
                readers += 1;
            }
            MetricsExporterKind::Console => {
                let exporter = opentelemetry_stdout::MetricExporter::default();
                provider = provider.with_reader(periodic(exporter, settings.export_interval));
                readers += 1;
            }
            MetricsExporterKind::Prometheus => {
                let mut registry = Registry::default();
                builder = builder.prometheus(&mut registry);
                let address = format!("{}:{}", settings.prometheus_host, settings.prometheus_port);
                server = Some(MetricsServer::start(&address, registry)?);
            }
        }
    }
    let provider = (readers > 0).then(|| provider.build());
    if let Some(provider) = &provider {
        builder = builder.meter_provider_with_exemplars(provider, exemplars);
    }
    Ok(MetricsExport {
        metrics: builder.build(),
        provider,
        server,
    })
}

fn periodic<E>(exporter: E, interval: Duration) -> PeriodicReader<E>
where
    E: opentelemetry_sdk::metrics::exporter::PushMetricExporter,
{
    PeriodicReader::builder(exporter)
        .with_interval(interval)
        .build()
}

/// `GET /metrics` on its own thread and single-threaded runtime.
pub(super) struct MetricsServer {
    address: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl MetricsServer {
    fn start(address: &str, registry: Registry) -> Result<Self, TelemetryError> {
        let failed = |source: std::io::Error| TelemetryError::MetricsServer {
            address: address.to_owned(),
            source,
        };
        let listener = std::net::TcpListener::bind(address).map_err(failed)?;
        listener.set_nonblocking(true).map_err(failed)?;
        let bound = listener.local_addr().map_err(failed)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .map_err(failed)?;
        let (stop, stopped) = oneshot::channel();
        let registry = Arc::new(registry);
        let thread = std::thread::Builder::new()
            .name("hyperfleet-metrics".to_owned())
            .spawn(move || runtime.block_on(serve(listener, registry, stopped)))
            .map_err(failed)?;
        Ok(Self {
            address: bound,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Where it listens.
    pub(super) fn address(&self) -> SocketAddr {
        self.address
    }

    /// Stops serving and waits for the thread, at most `timeout`.
    pub(super) fn stop(&mut self, timeout: Duration) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let (done, finished) = std::sync::mpsc::channel();
            // A detached waiter: the guard must not wait longer than its timeout.
            std::thread::spawn(move || {
                let _ = thread.join();
                let _ = done.send(());
            });
            let _ = finished.recv_timeout(timeout);
        }
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(1));
    }
}

async fn serve(
    listener: std::net::TcpListener,
    registry: Arc<Registry>,
    stopped: oneshot::Receiver<()>,
) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
        return;
    };
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move |headers: axum::http::HeaderMap| {
            let registry = registry.clone();
            async move { exposition(&registry, &headers) }
        }),
    );
    let _ = axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = stopped.await;
        })
        .await;
}

/// OpenMetrics, with exemplars, to a scraper that asks for it; the classic Prometheus text
/// format (no exemplars) to any other, as Prometheus' own clients negotiate.
fn exposition(registry: &Registry, headers: &axum::http::HeaderMap) -> axum::response::Response {
    use axum::response::IntoResponse;
    use prometheus_client::encoding::{prometheus_text, text};
    let openmetrics = headers
        .get_all(axum::http::header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains(OPENMETRICS_TYPE));
    let mut body = String::new();
    let (content_type, encoded) = if openmetrics {
        (OPENMETRICS, text::encode(&mut body, registry))
    } else {
        (
            prometheus_text::CONTENT_TYPE,
            prometheus_text::encode(&mut body, registry),
        )
    };
    match encoded {
        Ok(()) => ([(axum::http::header::CONTENT_TYPE, content_type)], body).into_response(),
        Err(_) => axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}
